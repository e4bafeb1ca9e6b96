"""Moved to :mod:`pgtls.log` (the bottom layer: the backends log too).  This name is the same module object,
kept only while pgtls/backends/embedded still imports ``pgtls.server.log``; delete it once that import is
``from pgtls import log`` (issue 16)."""

import sys

from pgtls import log

sys.modules[__name__] = log
