"""``pgtls check -D DIR`` (pgtls.certs.checkdir.run_check and the CLI's report): postgresql.conf,
pg_hba.conf and the SSL files they name, read together and judged by the rules of pgtls.certs.check.

Input: up to six parts separated by ``SEP``: extra postgresql.conf lines (after ``ssl = on`` and the CA and
CRL file settings), pg_hba.conf, server.crt, server.key, root.crt, root.crl.  An empty part takes the valid
fixture from tests/fuzz/fixtures.  Extra configuration lines that could name a file outside the scratch data
directory are dropped (see ``common.may_escape``).

Expected: ``run_check`` returns findings for every bad file and raises only ``CertError`` (postgresql.conf
itself is invalid).  A bug: any other exception, a finding without a code, file or message, or a report that
cannot be printed or serialised as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from tests.fuzz.common import instrumented, main, may_escape, parts, scratch

with instrumented(__name__):
    from pgtls.certs.check import Severity, exit_status
    from pgtls.certs.checkdir import run_check
    from pgtls.certs.cli import _format
    from pgtls.certs.pemfiles import CertError


FIXTURES = Path(__file__).resolve().parent / "fixtures"
FILES = ("pg_hba.conf", "server.crt", "server.key", "root.crt", "root.crl")
FIXED = {name: (FIXTURES / name).read_bytes() for name in FILES}
BASE_CONF = b"ssl = on\nssl_ca_file = 'root.crt'\nssl_crl_file = 'root.crl'\n"
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_one_input(data: bytes) -> None:
    conf_extra, *contents = parts(data, 1 + len(FILES))
    if may_escape(conf_extra):
        conf_extra = b""
    d = scratch()
    (d / "postgresql.conf").write_bytes(BASE_CONF + conf_extra)
    for name, content in zip(FILES, contents, strict=True):
        fd = os.open(d / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content or FIXED[name])
    try:
        findings = run_check(d, now=NOW)
    except CertError as e:
        assert str(e), "CertError without a message"
        return
    for f in findings:
        assert f.code and f.file is not None and f.message and f.fix, f"incomplete finding {f!r}"
        assert f.severity in (Severity.ERROR, Severity.WARNING)
        _format(f)
    json.dumps([f.to_dict() for f in findings])
    exit_status(findings)


if __name__ == "__main__":
    main(test_one_input)
