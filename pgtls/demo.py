"""`make demo`: a fresh data directory with fresh certificates, then the server in the foreground.

Behind the door stands the managed PostgreSQL.  Once the server (and the
cluster) accept connections — not before, as ``pg_ctl start -w`` waits —
it prints the psql command line that connects with sslmode=verify-full and
the client certificate made for the initial superuser.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import shutil
import socket
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pgtls-demo")
    p.add_argument("--dir", default="demo-data", help="data directory to (re)create")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    args = p.parse_args(argv)
    from pgtls.cli import serve
    from pgtls.server.initdb import init_data_dir

    data = Path(args.dir).resolve()
    if data.exists():
        shutil.rmtree(data)
    port = args.port or _free_port()
    user = getpass.getuser()
    for line in init_data_dir(data, superuser=user, tls=True, port=port):
        print(line)
    sockdir = data / "socket"
    sockdir.mkdir(mode=0o700)
    client = data / "client"
    conninfo = (
        f"host=localhost port={port} dbname=postgres user={user} sslmode=verify-full "
        f"sslrootcert={client / 'root.crt'} sslcert={client / 'postgresql.crt'} sslkey={client / 'postgresql.key'}"
    )
    print("\nStarting the server in the foreground (Ctrl-C stops it)...\n", flush=True)

    def ready() -> None:
        print(
            f"\nThe server accepts connections. Connect with:\n\n    psql {shlex.quote(conninfo)}\n",
            flush=True,
        )

    overrides = {"unix_socket_directories": str(sockdir), "log_connections": "on"}
    return serve(data, overrides, on_ready=ready)


if __name__ == "__main__":
    raise SystemExit(main())
