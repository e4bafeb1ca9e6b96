"""Session configuration parameters (GUCs): SET / SHOW / RESET and ParameterStatus.

Values come, in order of precedence, from the session's own SETs, the startup
packet's options, the server settings object (``.show(name)``, ``.names()``)
and the PostgreSQL defaults below.  Names are case-insensitive; SHOW reports a
parameter under its canonical spelling as PostgreSQL does.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from typing import Protocol

from pgtls.backends.base import SessionInfo
from pgtls.errors import PgError
from pgtls.protocol.limits import NAMEDATALEN

SERVER_VERSION = "17.0"


class SettingsLike(Protocol):
    def show(self, name: str) -> str: ...

    def names(self) -> Iterable[str]: ...


# Parameters PostgreSQL 17 reports with ParameterStatus (GUC_REPORT), in its order.
REPORTED: tuple[str, ...] = (
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "scram_iterations",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
)

DEFAULTS: dict[str, str] = {
    "application_name": "",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
    "client_min_messages": "notice",
    "DateStyle": "ISO, MDY",
    "default_transaction_isolation": "read committed",
    "default_transaction_read_only": "off",
    "extra_float_digits": "1",
    "idle_in_transaction_session_timeout": "0",
    "in_hot_standby": "off",
    "integer_datetimes": "on",
    "IntervalStyle": "postgres",
    "is_superuser": "on",
    "lc_collate": "C",
    "lc_ctype": "C",
    "lc_messages": "C",
    "lc_monetary": "C",
    "lc_numeric": "C",
    "lc_time": "C",
    "lock_timeout": "0",
    "max_identifier_length": str(NAMEDATALEN - 1),
    "scram_iterations": "4096",
    "search_path": '"$user", public',
    "server_encoding": "UTF8",
    "server_version": SERVER_VERSION,
    "server_version_num": "170000",
    "session_authorization": "",
    "standard_conforming_strings": "on",
    "statement_timeout": "0",
    "TimeZone": "UTC",
    "transaction_isolation": "serializable",
    "transaction_read_only": "off",
}

_ENCODINGS = {"utf8", "utf-8", "unicode"}


def _canonical(names: Iterable[str]) -> dict[str, str]:
    return {n.lower(): n for n in names}


def settings_token(settings: object | None) -> object | None:
    """An object that changes whenever the server's parameter values may have changed.

    The server hands its own facade (``.show`` over ``.snapshot.settings``, an immutable
    snapshot replaced on reload); for any other settings object, the object itself."""
    snap = getattr(settings, "snapshot", None)
    return getattr(snap, "settings", settings) if snap is not None else settings


class GucDefaults:
    """What every session of one settings snapshot starts from: canonical names and base values.

    Computed once per snapshot (the server's 100-odd parameters), not per session."""

    def __init__(self, settings: object | None) -> None:
        self.settings = settings
        self.token = settings_token(settings)
        names = list(DEFAULTS)
        if settings is not None and hasattr(settings, "names"):
            try:
                names += [str(n) for n in settings.names()]
            except Exception:  # a settings object still being written elsewhere: defaults only
                pass
        canon = _canonical(names)
        from pgtls.config.guc import ALIASES

        for alias in ALIASES:  # old names PostgreSQL still accepts (ssl_ecdh_curve -> ssl_groups)
            canon.setdefault(alias.lower(), alias)
        for n in DEFAULTS:  # our spelling (DateStyle, TimeZone) wins for the shared names
            canon[n.lower()] = n
        self.canon = canon
        self.base: dict[str, str] = {
            key.lower(): _from_settings(settings, key, value) for key, value in DEFAULTS.items()
        }
        self._all: list[tuple[str, str]] | None = None

    def all(self) -> list[tuple[str, str]]:
        """(canonical name, value) of every parameter, as a session with no SETs would show them."""
        if self._all is None:
            names = sorted(set(self.canon.values()), key=str.lower)
            self._all = [(n, self.base[n.lower()] if n.lower() in self.base else _from_settings(self.settings, n, ""))
                         for n in names]  # fmt: skip
        return self._all


def _from_settings(settings: object | None, name: str, default: str) -> str:
    if settings is None or not hasattr(settings, "show"):
        return default
    try:
        return str(settings.show(name))
    except Exception:
        return default


GucMark = tuple[dict[str, str], dict[str, str | None]]  # session values and SET LOCAL priors


class Gucs:
    """The parameter values one session sees."""

    def __init__(
        self, settings: object | None, info: SessionInfo, defaults: GucDefaults | None = None
    ) -> None:
        if defaults is None or defaults.settings is not settings:
            defaults = GucDefaults(settings)
        self._settings = settings
        self._canon = defaults.canon  # shared, never changed
        self._base: dict[str, str] = dict(defaults.base)
        self._base["session_authorization"] = info.user
        self._base["is_superuser"] = "on" if info.is_superuser else "off"
        self._base["application_name"] = info.application_name
        self.option_keys: list[str] = []  # parameters the startup packet set
        for key, value in info.options.items():
            refused = _startup_identity_change(key, value, info)
            if refused is not None:
                raise refused
            if key.lower() in self._canon or "." in key:
                self._base[key.lower()] = self.normalize(key, value)
                self.option_keys.append(key.lower())
        self._session: dict[str, str] = {}
        self._tx_snapshot: dict[str, str] | None = None  # values at BEGIN, restored by ROLLBACK
        self._local_prior: dict[str, str | None] = {}  # SET LOCAL: the value to restore at end of block

    def _from_settings(self, name: str, default: str) -> str:
        return _from_settings(self._settings, name, default)

    def canonical(self, name: str) -> str | None:
        low = name.lower()
        if low in self._canon:
            return self._canon[low]
        if "." in low and (low in self._session or low in self._base):
            return low
        return None

    def get(self, name: str) -> str:
        low = name.lower()
        if low in self._session:
            return self._session[low]
        if low in self._base:
            return self._base[low]
        canon = self.canonical(name)
        if canon is None:
            raise PgError("42704", f'unrecognized configuration parameter "{name}"')
        return self._from_settings(canon, "")

    def known(self, name: str) -> bool:
        return self.canonical(name) is not None or "." in name

    def normalize(self, name: str, value: str) -> str:
        """Validate a new value the way PostgreSQL's check hooks do for the parameters that matter."""
        low = name.lower()
        if low == "client_encoding":
            # PostgreSQL's clean_encoding_name(): only letters and digits count ('utf-8', "'UTF8'", utf_8).
            if "".join(ch for ch in value.lower() if ch.isalnum()) not in {
                e.replace("_", "") for e in _ENCODINGS
            }:
                raise PgError("22023", f'invalid value for parameter "client_encoding": "{value}"')
            return "UTF8"
        if low == "timezone":
            return check_timezone(value)
        if low == "datestyle":
            parts = {p.strip().upper() for p in value.split(",")}
            if parts - {"ISO", "MDY", "DMY", "YMD", "EURO", "US", "NONEURO", "EUROPEAN"}:
                raise PgError("22023", f'invalid value for parameter "DateStyle": "{value}"')
            order = "DMY" if parts & {"DMY", "EURO", "EUROPEAN"} else "YMD" if "YMD" in parts else "MDY"
            return f"ISO, {order}"
        if low == "intervalstyle" and value.lower() != "postgres":
            raise PgError("0A000", f'IntervalStyle "{value}" is not supported', hint='Only "postgres" is.')
        if low in (
            "server_version",
            "server_encoding",
            "integer_datetimes",
            "server_version_num",
            "is_superuser",
            "max_identifier_length",
            "lc_collate",
            "lc_ctype",
            "in_hot_standby",
        ):
            raise PgError("55P02", f'parameter "{self._canon.get(low, name)}" cannot be changed')
        if low == "standard_conforming_strings" and value.lower() not in ("on", "true", "1", "yes"):
            raise PgError("0A000", "standard_conforming_strings cannot be turned off")
        return value

    def begin(self) -> None:
        self._tx_snapshot = dict(self._session)
        self._local_prior = {}

    def end(self, commit: bool) -> list[str]:
        """End of a transaction block: undo its SETs on rollback and its SET LOCALs always."""
        if self._tx_snapshot is None:
            return []
        if commit:
            target = dict(self._session)
            for key, prior in self._local_prior.items():
                if prior is None:
                    target.pop(key, None)
                else:
                    target[key] = prior
        else:
            target = self._tx_snapshot
        changed = {k for k in set(target) | set(self._session) if target.get(k) != self._session.get(k)}
        self._session = target
        self._tx_snapshot = None
        self._local_prior = {}
        return [self._canon.get(k, k) for k in sorted(changed)]

    def mark(self) -> GucMark:
        """The values at a SAVEPOINT, for :meth:`restore`."""
        return dict(self._session), dict(self._local_prior)

    def restore(self, mark: GucMark) -> list[str]:
        """ROLLBACK TO SAVEPOINT: the values at ``mark`` again; returns the parameters that changed."""
        session, local_prior = mark
        changed = {k for k in set(session) | set(self._session) if session.get(k) != self._session.get(k)}
        self._session = dict(session)
        self._local_prior = dict(local_prior)
        return [self._canon.get(k, k) for k in sorted(changed)]

    def set(self, name: str, value: str, local: bool = False) -> str:
        """Set for the session (or, with ``local``, until the end of the transaction block)."""
        canon = self.canonical(name) or (name.lower() if "." in name else None)
        if canon is None:
            raise PgError("42704", f'unrecognized configuration parameter "{name}"')
        key = canon.lower()
        normalized = self.normalize(canon, value)
        if local and self._tx_snapshot is not None and key not in self._local_prior:
            self._local_prior[key] = self._session.get(key)
        elif not local:
            self._local_prior.pop(key, None)
        self._session[key] = normalized
        if canon.lower() == "session_authorization":
            self._session["is_superuser"] = self.get("is_superuser")
        return canon

    def reset(self, name: str) -> str:
        canon = self.canonical(name)
        if canon is None:
            raise PgError("42704", f'unrecognized configuration parameter "{name}"')
        self._session.pop(canon.lower(), None)
        return canon

    def reset_all(self) -> list[str]:
        changed = [self._canon.get(k, k) for k in self._session]
        self._session.clear()
        return changed

    def all(self) -> list[tuple[str, str]]:
        names = sorted(set(self._canon.values()) | set(self._session), key=str.lower)
        return [(n, self.get(n)) for n in names]

    def reported(self) -> list[tuple[str, str]]:
        return [(n, self.get(n)) for n in REPORTED]


def _startup_identity_change(key: str, value: str, info: SessionInfo) -> PgError | None:
    """A startup packet may not make a session another role: PostgreSQL refuses session_authorization and
    role set there unless the role may (superuser; membership for role)."""
    low = key.lower()
    if low not in ("session_authorization", "role") or info.is_superuser or value in ("", info.user, "none"):
        return None
    if low == "session_authorization":
        return PgError("42501", f'permission denied to set session authorization "{value}"', severity="FATAL")
    return PgError("42501", f'permission denied to set role "{value}"', severity="FATAL")


def check_timezone(value: str) -> str:
    v = value.strip()
    if v.upper() in ("UTC", "GMT", "Z", "ZULU", "UCT"):
        return "UTC" if v.upper() != "GMT" else "GMT"
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PgError("22023", f'invalid value for parameter "TimeZone": "{value}"') from None
    return v


def tzinfo(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo("UTC" if name.upper() in ("UTC", "GMT", "Z", "ZULU", "UCT") else name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
