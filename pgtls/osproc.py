"""Small facts about processes, for the server layer and the managed cluster alike."""

from __future__ import annotations

import os
import signal

# PostgreSQL's shutdown signals (pg_ctl stop -m): SIGTERM smart (wait for sessions), SIGINT fast, SIGQUIT
# immediate.  pgtls obeys and sends the same ones: to itself (pgtls stop), its workers and its cluster.
SHUTDOWN_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
