"""The entry point of a worker process: ``python -m pgtls.server.worker -D DIR``, started by the supervisor
(:mod:`pgtls.server.supervisor`) with its description in ``PGTLS_WORKER``; what a worker inherits and how it
talks to the supervisor and its peers is :mod:`pgtls.server.workerlink`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pgtls import log
from pgtls.server.eventloop import run_event_loop
from pgtls.server.server import Server, StartupError, hold_early_sighup
from pgtls.server.workerlink import WORKER_ENV, WorkerRole


def main() -> int:
    hold_early_sighup()
    role = WorkerRole.from_env(os.environ.pop(WORKER_ENV))
    data_dir = Path(sys.argv[sys.argv.index("-D") + 1])
    try:
        server = Server(data_dir, role.overrides, worker=role)

        async def run() -> int:
            return await server.serve_forever()

        return run_event_loop(run())
    except StartupError as e:
        log.emit("FATAL", e.message, detail=e.detail, hint=e.hint)
        return 1


if __name__ == "__main__":
    sys.exit(main())
