"""PostgreSQL types and values: type descriptions, wire encoding, bind parameters and literal input (layer 2: imports sql/ only)."""
