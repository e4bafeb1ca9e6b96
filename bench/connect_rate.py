#!/usr/bin/env python3
"""Full TLS connection rate: pgtls vs PostgreSQL direct vs PgBouncer -- ``bench/compare.py --parts connect``.

Each transaction is a whole connection (``pgbench -C``, sslmode=require, trust, ``SELECT 1``); conn/s and the
server's CPU per connection over its whole process tree.  Every option of bench/compare.py applies
(``--pgtls-backend duckdb``, ``--profile``, ``-T``, ``-c``...).

    .venv/bin/python bench/connect_rate.py [-T 10] [-c 4] [-j 2] [--servers pgtls,postgres,pgbouncer]

Results: bench/results/connect_rate.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import RESULTS, main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_json=RESULTS / "connect_rate.json", default_parts="connect"))
