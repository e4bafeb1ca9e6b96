"""Coverage-guided fuzzing of pgtls's parsers with atheris (see docs/fuzzing.md)."""
