"""The options of a COPY statement (``WITH (FORMAT csv, DELIMITER ',', ...)`` and the old syntax), as
copy_protocol.py parses them and copy_out.py uses them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CopyOptions:
    csv: bool = False
    delimiter: str = "\t"
    null: str = "\\N"
    header: bool = False
    quote: str = '"'
    escape: str = '"'
    force_quote: list[str] = field(default_factory=list)
    force_quote_all: bool = False  # FORCE_QUOTE *
    binary: bool = False
    given: set[str] = field(default_factory=set)  # the options the statement named
