"""numeric(p, s) with p above DuckDB's 38 digits: PostgreSQL accepts it (Prisma's default Decimal is
DECIMAL(65,30)); pgtls cannot store it and says so with 0A000 and a hint, not DuckDB's 42000."""

from __future__ import annotations

from pathlib import Path

from pgtls.backends.base import SessionInfo
from pgtls.backends.embedded import EmbeddedBackend, create_database
from tests.pgwire_util import SessionDriver, SimpleRegistry


def test_numeric_precision_above_38_is_a_clear_0a000(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    create_database(tmp_path, "postgres")
    be = EmbeddedBackend(tmp_path)
    d = SessionDriver(be.open_session(SessionInfo(1, "postgres", "postgres", None, None), SimpleRegistry()))
    try:
        for sql in ('CREATE TABLE "User" (balance DECIMAL(65,30))', "SELECT 1::numeric(50,2)"):
            err = d.error(sql)
            assert err["C"] == "0A000", err
            assert err["M"] == "numeric precision above 38 is not supported"
            assert "38" in err["H"] and "P" in err
        assert d.value("SELECT 1.5::numeric(38,30)") == "1.500000000000000000000000000000"
    finally:
        d.session.close()
        be.close()
