"""The embedded backend: PostgreSQL sessions over DuckDB files in the data directory."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from pgtls.backends.base import Registry, SessionInfo
from pgtls.backends.embedded.catalog import shared as catalog
from pgtls.backends.embedded.engine.databases import IDLE_CLOSE_SECONDS, DatabaseFiles
from pgtls.backends.embedded.fastpath import lookup
from pgtls.backends.embedded.features.advisory import LockTable
from pgtls.backends.embedded.features.notify import Hub
from pgtls.backends.embedded.features.settings import GucDefaults, settings_token
from pgtls.backends.embedded.jsonb import edit as jsonb_edit
from pgtls.backends.embedded.jsonb.containment import contains_text
from pgtls.backends.embedded.session.core import EmbeddedSession
from pgtls.backends.embedded.sql.lexer import quote_literal

if TYPE_CHECKING:
    from pgtls.auth.roles import RoleStore


class EmbeddedBackend:
    """``Backend`` implementation; ``settings`` is the server's settings object (``.show``, ``.names``;
    the server also offers ``.roles``, its RoleStore)."""

    def __init__(self, data_dir: Path, settings: object | None = None, idle_close: float = IDLE_CLOSE_SECONDS,
                 debug_log: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.data_dir = Path(data_dir)
        self.settings = settings
        self._lock = threading.Lock()
        self._defaults: GucDefaults | None = None
        self._catalog_dir: str | None = None
        self._catalog_path: Path | None = None
        self.catalog_values: dict[str, str] = {}  # lower name -> value in the catalog's pgtls_settings
        self.catalog_timezone = "UTC"
        self._diff: tuple[object, dict[str, str]] | None = None
        self._roles: RoleStore | None = None
        self.files = DatabaseFiles(self.data_dir, prepare=self._prepare_file, idle_close=idle_close)
        self.hub = Hub()  # LISTEN/NOTIFY between sessions
        self.locks = LockTable()  # advisory locks between sessions
        self.lookups = lookup.PointLookups(self.files.acquire, self.files.release, self._lookup_rows,
                                           debug=debug_log)  # fmt: skip

    # --- shared, per settings snapshot --------------------------------------------------------
    def defaults(self) -> GucDefaults:
        d = self._defaults
        if d is None or d.token is not settings_token(self.settings):
            d = self._defaults = GucDefaults(self.settings)
        return d

    def default_overrides(self, defaults: GucDefaults) -> dict[str, str]:
        """Parameters whose current default differs from the catalog's (after a reload), lower name -> value."""
        cached = self._diff
        if cached is not None and cached[0] is defaults:
            return cached[1]
        diff = {n.lower(): v for n, v in defaults.all() if self.catalog_values.get(n.lower()) != v}
        for k in ("session_authorization", "is_superuser", "application_name"):
            diff.pop(k, None)  # per session anyway (pgtls_session)
        self._diff = (defaults, diff)
        return diff

    def _catalog(self) -> Path:
        with self._lock:
            if self._catalog_path is None:
                defaults = self.defaults()
                rows = [(n, v) for n, v in defaults.all()]
                base = dict(rows)
                for k in ("session_authorization", "application_name"):
                    base[k] = ""
                rows = [(n, base[n]) for n, _ in rows]
                self._catalog_dir = tempfile.mkdtemp(prefix="pgtls-catalog-")
                path = Path(self._catalog_dir) / "catalog.duckdb"
                catalog.build_catalog(path, defaults.base.get("server_version", "17.0"), rows)
                self.catalog_values = {n.lower(): v for n, v in rows}
                self.catalog_timezone = defaults.base.get("timezone", "UTC")
                self._catalog_path = path
            return self._catalog_path

    def _prepare_file(self, con: duckdb.DuckDBPyConnection) -> None:
        """Every database file: the catalog database, and session defaults set once for all cursors."""
        path = self._catalog()
        con.execute(f"ATTACH {quote_literal(str(path))} AS {catalog.CAT} (READ_ONLY)")
        con.execute("SET GLOBAL integer_division = true")
        con.create_function("pgtls_jsonb_contains", contains_text, ["VARCHAR", "VARCHAR"], "BOOLEAN")
        jsonb_edit.register(con)  # jsonb_set, #-, jsonb - k, ...
        try:
            con.execute(f"SET GLOBAL TimeZone = {quote_literal(self.catalog_timezone)}")
        except duckdb.Error:
            pass

    # --- sessions -----------------------------------------------------------------------------
    def open_session(self, info: SessionInfo, registry: Registry) -> EmbeddedSession:
        cur = self.files.acquire(info.database)
        try:
            return EmbeddedSession(self, info, registry, cur)
        except BaseException:
            cur.close()
            self.files.release(info.database)
            raise

    def _lookup_rows(self) -> int:
        try:
            return int(self._setting(lookup.SETTING, str(lookup.DEFAULT_ROWS)))
        except ValueError:
            return lookup.DEFAULT_ROWS

    def close(self) -> None:
        self.lookups.close()
        self.files.close()
        with self._lock:
            if self._catalog_dir is not None:
                shutil.rmtree(self._catalog_dir, ignore_errors=True)
                self._catalog_dir = None
                self._catalog_path = None

    # --- roles and authentication files (pg_roles, CREATE ROLE, pg_hba_file_rules) -------------
    @property
    def roles(self) -> RoleStore:
        from pgtls.auth.roles import RoleStore

        store = getattr(self.settings, "roles", None)
        if isinstance(store, RoleStore):
            return store
        if self._roles is None:
            self._roles = RoleStore(self.data_dir)
        return self._roles

    def role_rows(
        self, info: SessionInfo, secrets: bool = False
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """Rows for pg_roles/pg_authid and pg_auth_members from the role store; password verifiers only
        with ``secrets`` (a superuser's session: a view over pg_authid must not show them to anyone else)."""
        roles = self.roles.list()
        rows: list[dict[str, Any]] = [
            {"oid": r.oid, "rolname": r.name, "rolsuper": r.superuser, "rolinherit": r.inherit,
             "rolcreaterole": r.createrole, "rolcreatedb": r.createdb, "rolcanlogin": r.login,
             "rolreplication": r.superuser, "rolconnlimit": -1, "rolpassword": r.password if secrets else None,
             "rolvaliduntil": r.valid_until, "rolbypassrls": r.superuser}
            for r in roles
        ]  # fmt: skip
        if not any(r.name == info.user for r in roles):  # a backend without a role store (tests, relay)
            oid = 10 if not any(r.oid == 10 for r in roles) else max(r.oid for r in roles) + 1
            su = info.is_superuser
            rows.append({"oid": oid, "rolname": info.user, "rolsuper": su, "rolinherit": True, "rolcreaterole": su,
                         "rolcreatedb": su, "rolcanlogin": True, "rolreplication": su, "rolconnlimit": -1,
                         "rolpassword": None, "rolvaliduntil": None, "rolbypassrls": su})  # fmt: skip
        oids = {r.name: r.oid for r in roles}
        members: list[dict[str, object]] = []
        for r in roles:
            for g in r.member_of:
                if g in oids:
                    members.append(
                        {"oid": 20000 + len(members), "roleid": oids[g], "member": r.oid, "grantor": 10}
                    )
        return rows, members

    def _setting(self, name: str, default: str) -> str:
        try:
            return str(self.settings.show(name))  # type: ignore[union-attr]
        except Exception:
            return default

    def _conf_path(self, name: str, default: str) -> Path:
        value = self._setting(name, "")
        p = Path(value) if value else self.data_dir / default
        return p if p.is_absolute() else self.data_dir / p

    def hba_rules(self) -> list[tuple[object, ...]]:
        from pgtls.config.hba import hba_file_rules

        ssl = self._setting("ssl", "off").lower() in ("on", "true", "1", "yes")
        return hba_file_rules(self._conf_path("hba_file", "pg_hba.conf"), ssl_enabled=ssl)

    def ident_mappings(self) -> list[tuple[object, ...]]:
        from pgtls.config.ident import ident_file_mappings

        return ident_file_mappings(self._conf_path("ident_file", "pg_ident.conf"))
