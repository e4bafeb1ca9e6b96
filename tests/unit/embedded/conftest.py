"""Fixtures of the embedded backend's unit tests (tests/unit/embedded/): a backend over a
fresh data directory with a ``postgres`` database, a session registry, and one open session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pgtls.backends.embedded import EmbeddedBackend, create_database
from tests.pgwire_util import FakeSettings, SessionDriver, SimpleRegistry, open_driver


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[EmbeddedBackend]:
    create_database(tmp_path, "postgres")
    be = EmbeddedBackend(tmp_path, FakeSettings())
    yield be
    be.close()


@pytest.fixture
def registry() -> SimpleRegistry:
    return SimpleRegistry()


@pytest.fixture
def db(backend: EmbeddedBackend, registry: SimpleRegistry) -> Iterator[SessionDriver]:
    d = open_driver(backend, registry)
    yield d
    d.session.close()
