#!/usr/bin/env python3
"""Select-only TPS and COPY over TLS: pgtls vs PostgreSQL direct vs PgBouncer --
``bench/compare.py --parts select,copy``.

``pgbench -n -S -M simple|extended|prepared`` on ``pgbench -i -s 10`` data (8 clients, persistent
connections), then ``COPY ... TO STDOUT`` of ~200 MB through psql (median of 3).  Every option of
bench/compare.py applies (``--pgtls-backend duckdb``, ``--modes``, ``--copy-mb``...).

    .venv/bin/python bench/query_rate.py [--select-time 10] [--modes simple,extended,prepared] [--parts copy]

Results: bench/results/query_rate.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import RESULTS, main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], default_json=RESULTS / "query_rate.json", default_parts="select,copy"))
