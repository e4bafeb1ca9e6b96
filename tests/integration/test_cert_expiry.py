"""ssl_expiry_warning_days: a WARNING at start and reload for a loaded certificate close to its end."""

from __future__ import annotations

import datetime as dt

from pgtls.certs import x509build as xb
from tests.pgtlsserver import PgtlsServer


def test_expiring_certificate_warns_at_start_and_reload(tmp_path):
    ca = xb.make_ca(xb.cn("short-lived CA"))
    now = dt.datetime.now(dt.UTC)
    leaf = xb.make_leaf(xb.cn("localhost"), ca, san=("localhost",), not_after=now + dt.timedelta(days=10))
    xb.write_certs(tmp_path / "server.crt", [leaf.cert])
    xb.write_key(tmp_path / "server.key", leaf.key)  # type: ignore[arg-type]
    s = PgtlsServer().init()
    try:
        s.copy_in(str(tmp_path / "server.crt"), "server.crt", 0o644)
        s.copy_in(str(tmp_path / "server.key"), "server.key", 0o600)
        s.conf(ssl="on", ssl_expiry_warning_days="30")
        s.start()
        log = s.log()
        assert 'WARNING:  server certificate "CN=localhost" in file "server.crt" expires in 9 days' in log, (
            log
        )
        assert "HINT:  Replace it and reload" in log
        s.conf(ssl_expiry_warning_days="5")
        s.reload()
        assert s.log().count('in file "server.crt" expires in') == 1  # not again with 5 days
        s.conf(ssl_expiry_warning_days="11")
        s.reload()
        assert s.log().count('in file "server.crt" expires in') == 2
    finally:
        s.cleanup()
