"""`make demo`: a fresh data directory with fresh certificates, then the server in the foreground.

Prints the psql command line that connects with sslmode=verify-full and the
client certificate made for the initial superuser.
"""

from __future__ import annotations

import argparse
import getpass
import shlex
import shutil
import socket
import sys
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
    from pgtls.cli import main as cli_main
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
    print("\nThe server is starting in the foreground (Ctrl-C stops it). Connect with:\n")
    print(f"    psql {shlex.quote(conninfo)}\n", flush=True)
    sys.stdout.flush()
    return cli_main(["serve", "-D", str(data), "-c", f"unix_socket_directories={sockdir}", "-c", "log_connections=on"])


if __name__ == "__main__":
    raise SystemExit(main())
