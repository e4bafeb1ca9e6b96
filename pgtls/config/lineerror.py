"""A bad line of a configuration file, and a file refused for its bad lines, in PostgreSQL's shape:
the message, then ``CONTEXT:  line N of configuration file "F"`` (no context for a whole-file problem)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LineError:
    filename: str
    lineno: int
    message: str

    def format(self) -> str:
        if not self.lineno:
            return self.message
        return f'{self.message}\nCONTEXT:  line {self.lineno} of configuration file "{self.filename}"'


class FileErrors(Exception):
    """The file was refused; ``errors`` lists every bad line."""

    def __init__(self, errors: Sequence[LineError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(e.format() for e in self.errors)
