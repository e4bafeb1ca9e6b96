"""A missing prerequisite of a test (PostgreSQL 15, a client program: node-postgres, pgJDBC, a Java
runtime): the test is skipped in a plain pytest run, but fails where every prerequisite must be there --
under CI (``CI=true``) and under `make test`, whose prerequisites (system-deps, node-deps) install them all
(make exports MAKELEVEL to every command it runs).  So a CI run cannot go green by skipping."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest


def required() -> str | None:
    """Why a missing prerequisite must fail a test rather than skip it; None in a plain pytest run."""
    if os.environ.get("CI", "").lower() == "true":
        return "CI=true"
    if "MAKELEVEL" in os.environ:
        return "run by make, after the installers"
    return None


def missing(why: str) -> NoReturn:
    """Skip the calling test because ``why``, or fail it when prerequisites are :func:`required`."""
    because = required()
    if because:
        pytest.fail(f"{why} ({because}: every prerequisite must be installed)")
    pytest.skip(why)


def importorskip(module: str) -> ModuleType:
    """``pytest.importorskip`` for a package of the test extra (pyproject.toml): :func:`missing` when absent."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing(f"{module} is not installed ({e})")
