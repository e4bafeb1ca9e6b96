"""Prepared statements and portals of the extended query protocol (extended.py keeps them; inline.py
answers Bind/Execute of a prepared point lookup from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pgtls.backends.embedded.engine.execute import Result
from pgtls.backends.embedded.pgtypes import typemap as T


@dataclass
class Prepared:
    sql: str
    param_oids: list[int]
    words: list[str]
    duck_type: str | None = None  # DuckDB's statement type, when DuckDB parsed it at Parse time


@dataclass
class Portal:
    stmt: Prepared
    sql: str
    formats: list[int]  # result format codes as sent by Bind (0, 1 or n of them)
    columns: list[T.Column] | None = None
    described: bool = False
    result: Result | None = None
    finished: bool = False
    extra: dict[str, object] = field(default_factory=dict)
