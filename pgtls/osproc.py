"""Small facts about processes, for the server layer and the managed cluster alike."""

from __future__ import annotations

import os
import signal

# PostgreSQL's shutdown signals (pg_ctl stop -m): SIGTERM smart (wait for sessions), SIGINT fast, SIGQUIT
# immediate.  pgtls obeys and sends the same ones: to itself (pgtls stop), its workers and its cluster.
SHUTDOWN_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


# Descriptors per client connection pgtls plans for: the client's socket and, in session mode, an upstream one.
FDS_PER_CLIENT = 2
FDS_SPARE = 256  # listeners, pgtls's own connections, files, the managed cluster's pipes


def raise_descriptor_limit(max_connections: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards the hard limit so that ``max_connections`` clients fit (as
    servers do at start); returns (needed, now)."""
    import resource

    needed = max_connections * FDS_PER_CLIENT + FDS_SPARE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return needed, soft


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
