"""`python -m pgtls` is the `pgtls` command."""

from pgtls.cli import main

raise SystemExit(main())
