"""Settings: the immutable snapshot of every parameter, built at start and at each reload.

Follows PostgreSQL's ``guc.c`` (``parse_int``/``parse_real``/``parse_bool``,
``convert_to_base_unit``, ``ShowGUCOption``) and ``ProcessConfigFileInternal``:

* start (:func:`load_settings`): ``-c`` overrides are applied first (they outrank
  the file), then ``postgresql.conf`` and ``postgresql.auto.conf``; duplicate
  names: the last line wins and earlier ones are not even validated; the first
  problem raises :class:`ConfigError`.
* reload (:func:`reload_settings`): never raises. A syntax error or an unknown
  name means *no changes were applied*; a bad value, or a changed
  postmaster-context value (the old one stays), means *unaffected changes were
  applied*; each change is logged as ``parameter "x" changed to "y"``.

Values are typed: ``bool``, ``int`` (in the parameter's base unit), ``float``,
``str`` (enums in their canonical spelling).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pgtls.config.conffile import ConfigEntry, ConfigError, ParseResult, read_config_file
from pgtls.config.guc import (
    GUCS,
    INT_MAX,
    INT_MIN,
    GucDef,
    Value,
    is_custom_name,
    lookup,
    parse_bool,
    placeholder,
)
from pgtls.errors import CANT_CHANGE_RUNTIME_PARAM, INVALID_PARAMETER_VALUE, UNDEFINED_OBJECT, PgError

__all__ = [
    "ConfigError",
    "LogMessage",
    "Settings",
    "format_value",
    "load_settings",
    "parse_value",
    "reload_settings",
    "reload_settings_detailed",
]

AUTO_CONF_FILENAME = "postgresql.auto.conf"

# --- units (guc.c's memory_unit_conversion_table / time_unit_conversion_table) ---

_KB = 1024.0
_MEMORY_UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    "B": (("TB", _KB**4), ("GB", _KB**3), ("MB", _KB**2), ("kB", _KB), ("B", 1.0)),
    "kB": (("TB", _KB**3), ("GB", _KB**2), ("MB", _KB), ("kB", 1.0), ("B", 1.0 / _KB)),
    "MB": (("TB", _KB**2), ("GB", _KB), ("MB", 1.0), ("kB", 1.0 / _KB), ("B", 1.0 / _KB**2)),
    "8kB": (("TB", _KB**3 / 8), ("GB", _KB**2 / 8), ("MB", _KB / 8), ("kB", 1.0 / 8), ("B", 1.0 / 8192)),
}
_TIME_UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    "ms": (("d", 86400000.0), ("h", 3600000.0), ("min", 60000.0), ("s", 1000.0), ("ms", 1.0), ("us", 1e-3)),
    "s": (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0), ("ms", 1e-3), ("us", 1e-6)),
    "min": (("d", 1440.0), ("h", 60.0), ("min", 1.0), ("s", 1 / 60), ("ms", 1 / 60000), ("us", 1 / 60000000)),
}
_UNITS = {**_MEMORY_UNITS, **_TIME_UNITS}
_MEMORY_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".'
_TIME_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".'
_MAX_UNIT_LEN = 3
_C_SPACE = " \t\n\v\f\r"
_LONG_MAX = 2**63 - 1

_STRTOD = re.compile(
    r"[-+]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][-+]?[0-9]+)?"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    r"|inf(?:inity)?|nan)",
    re.IGNORECASE,
)
_STRTOL = re.compile(r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|(0[0-7]*)|([1-9][0-9]*))")


def _strtod(s: str, start: int) -> tuple[float, int, bool] | None:
    """C strtod at ``start``: (value, end, erange) or None if no conversion."""
    m = _STRTOD.match(s, start)
    if m is None:
        return None
    text = m.group()
    body = text.lstrip("+-")
    if body[:2].lower() == "0x":
        value = float.fromhex(text if "p" in body.lower() else text + "p0")
    else:
        value = float(text)
    erange = math.isinf(value) and "inf" not in body.lower()
    return value, m.end(), erange


def _convert_to_base_unit(value: float, unit: str, base_unit: str) -> float | None:
    """convert_to_base_unit: ``unit`` is the rest of the string after the number."""
    unitstr = ""
    i = 0
    while i < len(unit) and unit[i] not in _C_SPACE and len(unitstr) < _MAX_UNIT_LEN:
        unitstr += unit[i]
        i += 1
    if unit[i:].strip(_C_SPACE):
        return None  # unit too long, or garbage after it
    table = _UNITS[base_unit]
    for idx, (name, multiplier) in enumerate(table):
        if name == unitstr:
            cvalue = value * multiplier
            # "30.1GB": round to a multiple of the next smaller unit, if there is one
            if idx + 1 < len(table):
                smaller = table[idx + 1][1]
                cvalue = round(cvalue / smaller) * smaller
            return cvalue
    return None


def _parse_number(raw: str, gucdef: GucDef, integer: bool) -> tuple[float | None, str | None]:
    """parse_int / parse_real: (value, hint); value None when invalid."""
    start = len(raw) - len(raw.lstrip(_C_SPACE))
    val: float
    end: int
    parsed = None
    if integer:
        m = _STRTOL.match(raw, start)
        if m is not None:
            sign = -1 if m.group(1) == "-" else 1
            if m.group(2) is not None:
                ival = int(m.group(2), 16)
            elif m.group(3) is not None:
                ival = int(m.group(3), 8)
            else:
                ival = int(m.group(4))
            ival *= sign
            end = m.end()
            # strtol stops at '.', 'e' or on overflow: re-parse as a float (so "1.5min" works)
            if end < len(raw) and raw[end] in ".eE" or not -_LONG_MAX - 1 <= ival <= _LONG_MAX:
                parsed = _strtod(raw, start)
            else:
                parsed = (float(ival), end, False)
    else:
        parsed = _strtod(raw, start)
    if parsed is None:
        return None, None
    val, end, erange = parsed
    if erange or math.isnan(val):
        return None, None
    rest = raw[end:].lstrip(_C_SPACE)
    if rest:
        if gucdef.unit is None:
            return None, None
        converted = _convert_to_base_unit(val, rest, gucdef.unit)
        if converted is None:
            return None, _MEMORY_HINT if gucdef.unit in _MEMORY_UNITS else _TIME_HINT
        val = converted
    if integer:
        if math.isinf(val):
            return None, "Value exceeds integer range."
        val = float(round(val))
        if val > INT_MAX or val < INT_MIN:
            return None, "Value exceeds integer range."
    return val, None


def _invalid(name: str, raw: str, hint: str | None = None) -> PgError:
    return PgError(INVALID_PARAMETER_VALUE, f'invalid value for parameter "{name}": "{raw}"', hint=hint)


def parse_value(gucdef: GucDef, raw: str, *, name: str | None = None) -> Value:
    """Parse and validate ``raw`` for ``gucdef`` (PostgreSQL's parse_and_validate_value).

    Raises PgError 22023 with PostgreSQL's message; ``name`` is the spelling used
    in messages (default: the parameter's own name).
    """
    name = name or gucdef.name
    if gucdef.type == "bool":
        b = parse_bool(raw)
        if b is None:
            raise PgError(INVALID_PARAMETER_VALUE, f'parameter "{name}" requires a Boolean value')
        return b
    if gucdef.type in ("int", "real"):
        integer = gucdef.type == "int"
        val, hint = _parse_number(raw, gucdef, integer)
        if val is None:
            raise _invalid(name, raw, hint)
        assert gucdef.min is not None and gucdef.max is not None
        unit = f" {gucdef.unit}" if gucdef.unit else ""
        if integer:
            ival = int(val)
            if not gucdef.min <= ival <= gucdef.max:
                raise PgError(
                    INVALID_PARAMETER_VALUE,
                    f"{ival}{unit} is outside the valid range for parameter "
                    f'"{name}" ({int(gucdef.min)} .. {int(gucdef.max)})',
                )
            return ival
        if not gucdef.min <= val <= gucdef.max:
            raise PgError(
                INVALID_PARAMETER_VALUE,
                f"{val:g}{unit} is outside the valid range for parameter "
                f'"{name}" ({gucdef.min:g} .. {gucdef.max:g})',
            )
        return val
    if gucdef.type == "enum":
        for option in gucdef.enum_values:
            if option.lower() == raw.lower():
                return option
        raise _invalid(name, raw, "Available values: " + ", ".join(gucdef.enum_values) + ".")
    if gucdef.check is not None:
        return gucdef.check(name, raw)
    return raw


def _int_from_base_unit(value: int, base_unit: str) -> str:
    for unit, multiplier in _UNITS[base_unit]:
        if multiplier <= 1.0 or value % int(multiplier) == 0:
            return f"{round(value / multiplier)}{unit}"
    raise AssertionError(base_unit)  # pragma: no cover - the last entry always fits


def _real_from_base_unit(value: float, base_unit: str) -> str:
    shown, unit = value, base_unit
    for unit, multiplier in _UNITS[base_unit]:  # noqa: B007 - the last unit is the fallback
        shown = value / multiplier
        if shown > 0 and abs(round(shown) / shown - 1.0) <= 1e-8:
            break
    return f"{shown:g}{unit}"


def format_value(gucdef: GucDef, value: Value) -> str:
    """The value as SHOW prints it (ShowGUCOption with units)."""
    if gucdef.type == "bool":
        return "on" if value else "off"
    if gucdef.type == "int":
        assert isinstance(value, int)
        if gucdef.octal:
            return f"{value:04o}"
        if gucdef.unit and gucdef.show_units and value > 0:
            return _int_from_base_unit(value, gucdef.unit)
        return str(value)
    if gucdef.type == "real":
        assert isinstance(value, float | int)
        if gucdef.unit and value > 0:
            return _real_from_base_unit(float(value), gucdef.unit)
        return f"{value:g}"
    return str(value)


# --- the snapshot ---

_ORIGIN_DEFAULT = "default"
_ORIGIN_FILE = "file"
_ORIGIN_OVERRIDE = "override"  # -c on the command line (PGC_S_ARGV): outranks the file


def _unrecognized(name: str) -> PgError:
    return PgError(UNDEFINED_OBJECT, f'unrecognized configuration parameter "{name}"')


@dataclass(frozen=True)
class Settings:
    """An immutable snapshot of every parameter; look-ups are case-insensitive and alias-aware."""

    data_dir: Path
    config_file: Path
    _values: Mapping[str, Value]
    _origins: Mapping[str, str] = field(default_factory=dict)
    _sources: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    _custom: Mapping[str, GucDef] = field(default_factory=dict)

    def definition(self, name: str) -> GucDef:
        """The parameter's definition; PgError 42704 if there is none."""
        gucdef = lookup(name) or self._custom.get(name.lower())
        if gucdef is None:
            raise _unrecognized(name)
        return gucdef

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (lookup(name) is not None or name.lower() in self._custom)

    def __getitem__(self, name: str) -> Value:
        try:
            return self._values[name]  # the canonical lower-case key: the common case, on hot paths
        except KeyError:
            return self._values[self.definition(name).key]

    def show(self, name: str) -> str:
        gucdef = self.definition(name)
        return format_value(gucdef, self._values[gucdef.key])

    def names(self) -> list[str]:
        """Display names for SHOW ALL, in PostgreSQL's order (case-insensitive); placeholders excluded."""
        return sorted((d.name for d in GUCS.values()), key=str.lower)

    def path(self, name: str) -> Path | None:
        """A file parameter's value resolved against the data directory; None when empty."""
        value = self[name]
        if not isinstance(value, str) or value == "":
            return None
        return self.data_dir / value  # an absolute value replaces the data directory

    def source(self, name: str) -> tuple[str, int] | None:
        """(file, line) of the setting in effect, or None (default, -c, or set by the server)."""
        return self._sources.get(self.definition(name).key)

    def origin(self, name: str) -> str:
        """'default', 'file' or 'override' (-c)."""
        return self._origins.get(self.definition(name).key, _ORIGIN_DEFAULT)

    def with_values(self, **changes: Value) -> Settings:
        """A copy with some values replaced; strings are parsed, typed values validated (PgError 22023).

        No context check: deciding whether SET may change a parameter is the caller's job.
        """
        values = dict(self._values)
        for name, new in changes.items():
            gucdef = self.definition(name)
            values[gucdef.key] = _coerce(gucdef, new, name)
        return Settings(
            self.data_dir,
            self.config_file,
            MappingProxyType(values),
            self._origins,
            self._sources,
            self._custom,
        )


def _coerce(gucdef: GucDef, value: Value, name: str) -> Value:
    if isinstance(value, str) and gucdef.type != "string":
        return parse_value(gucdef, value, name=name)
    if gucdef.type == "bool":
        if not isinstance(value, bool):
            raise PgError(INVALID_PARAMETER_VALUE, f'parameter "{name}" requires a Boolean value')
        return value
    if gucdef.type in ("int", "real") and not isinstance(value, bool) and isinstance(value, int | float):
        return parse_value(gucdef, repr(value) if gucdef.type == "real" else str(int(value)), name=name)
    if gucdef.type == "string":
        return parse_value(gucdef, str(value), name=name)
    raise _invalid(name, str(value))


# --- building snapshots (ProcessConfigFileInternal) ---


@dataclass(frozen=True)
class LogMessage:
    """One server log line a reload produced (severity LOG), with PostgreSQL's optional fields."""

    message: str
    detail: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        return self.message


def _from_pg(err: PgError, entry: ConfigEntry | None, config_file: str) -> ConfigError:
    return ConfigError(
        err.message,
        entry.filename if entry else None,
        entry.lineno if entry else None,
        sqlstate=err.sqlstate,
        detail=err.detail,
        hint=err.hint,
        config_file=config_file if entry else None,
    )


class _Builder:
    """Mutable state while one snapshot is built."""

    def __init__(self, base: Settings | None, data_dir: Path, config_file: Path) -> None:
        self.values: dict[str, Value] = (
            dict(base._values) if base else {k: d.default for k, d in GUCS.items()}
        )
        self.origins: dict[str, str] = dict(base._origins) if base else {}
        self.sources: dict[str, tuple[str, int]] = dict(base._sources) if base else {}
        self.custom: dict[str, GucDef] = dict(base._custom) if base else {}
        self.data_dir = data_dir
        self.config_file = config_file

    def define(self, name: str) -> GucDef | None:
        gucdef = lookup(name) or self.custom.get(name.lower())
        if gucdef is None and is_custom_name(name):
            gucdef = self.custom[name.lower()] = placeholder(name)
            self.values[gucdef.key] = gucdef.default
        return gucdef

    def freeze(self) -> Settings:
        return Settings(
            self.data_dir,
            self.config_file,
            MappingProxyType(self.values),
            MappingProxyType(self.origins),
            MappingProxyType(self.sources),
            MappingProxyType(self.custom),
        )


def _normalize_override(name: str) -> str:
    # postgres -c a-b=c: ParseLongOption turns '-' into '_'
    return name.replace("-", "_")


def _read_files(config_file: Path, data_dir: Path) -> tuple[ParseResult, str]:
    """The main file, then postgresql.auto.conf if present; (result, file to blame for parse errors)."""
    result = read_config_file(config_file)
    blame = str(config_file)
    if result.ok:
        _read_auto_conf(data_dir, result)
        if not result.ok:
            blame = str(data_dir / AUTO_CONF_FILENAME)
    return result, blame


def _read_auto_conf(data_dir: Path, result: ParseResult) -> None:
    # pgtls has no ALTER SYSTEM, so a missing postgresql.auto.conf is normal: no "skipping" LOG line.
    auto = data_dir / AUTO_CONF_FILENAME
    if auto.exists():
        read_config_file(auto, strict=False, result=result)


def _live_entries(
    entries: list[ConfigEntry], builder: _Builder
) -> tuple[list[ConfigEntry], list[ConfigEntry]]:
    """(entries to apply, unknown-name entries); of duplicates only the last is kept."""
    last: dict[str, int] = {}
    unknown: list[ConfigEntry] = []
    for i, entry in enumerate(entries):
        gucdef = builder.define(entry.name)
        if gucdef is None:
            unknown.append(entry)
        else:
            last[gucdef.key] = i
    keep = set(last.values())
    return [e for i, e in enumerate(entries) if i in keep], unknown


def _finish(builder: _Builder, configdir: Path) -> None:
    """Server-set paths (SelectConfigFiles): data_directory, config_file, hba_file, ident_file."""
    builder.values["config_file"] = str(builder.config_file)
    builder.values["data_directory"] = str(builder.data_dir)
    for name, default in (("hba_file", "pg_hba.conf"), ("ident_file", "pg_ident.conf")):
        if builder.values[name] == "":
            builder.values[name] = str(configdir / default)


def load_settings(
    data_dir: Path,
    overrides: Mapping[str, str] = MappingProxyType({}),
    *,
    config_file: Path | None = None,
) -> Settings:
    """The snapshot at server start; raises ConfigError for the first problem (start-up refuses).

    ``data_dir`` plays ``postgres -D``; ``config_file`` defaults to ``-c config_file`` or
    ``<data_dir>/postgresql.conf``.  A ``data_directory`` set in the file moves the data
    directory (``postgresql.auto.conf`` and relative file paths are then read from there).
    """
    configdir = Path(os.path.abspath(data_dir))
    overrides = {_normalize_override(k): v for k, v in overrides.items()}
    if config_file is None:
        given = next((v for k, v in overrides.items() if k.lower() == "config_file"), None)
        config_file = Path(given) if given else configdir / "postgresql.conf"
    config_file = Path(os.path.abspath(config_file))
    builder = _Builder(None, configdir, config_file)

    for name, raw in overrides.items():
        gucdef = builder.define(name)
        if gucdef is None:
            raise ConfigError(f'unrecognized configuration parameter "{name}"', sqlstate=UNDEFINED_OBJECT)
        if gucdef.context == "internal":
            raise ConfigError(f'parameter "{name}" cannot be changed', sqlstate=CANT_CHANGE_RUNTIME_PARAM)
        try:
            builder.values[gucdef.key] = parse_value(gucdef, raw, name=name)
        except PgError as e:
            raise _from_pg(e, None, str(config_file)) from None
        builder.origins[gucdef.key] = _ORIGIN_OVERRIDE

    result = read_config_file(config_file)
    if result.errors:
        err = result.errors[0]
        err.config_file = str(config_file)
        raise err
    entries = list(result.entries)
    # data_directory from the main file decides where postgresql.auto.conf lives (SelectConfigFiles).
    if builder.origins.get("data_directory") == _ORIGIN_OVERRIDE:
        builder.data_dir = Path(os.path.abspath(str(builder.values["data_directory"])))
    else:
        for entry in entries:
            if entry.name.lower() == "data_directory" and entry.value:
                builder.data_dir = Path(os.path.abspath(entry.value))
    _read_auto_conf(builder.data_dir, result)
    if result.errors:
        err = result.errors[0]
        err.config_file = str(builder.data_dir / AUTO_CONF_FILENAME)
        raise err

    live, unknown = _live_entries(result.entries, builder)
    if unknown:
        e0 = unknown[0]
        raise ConfigError(
            f'unrecognized configuration parameter "{e0.name}" in file "{e0.filename}" line {e0.lineno}',
            e0.filename,
            e0.lineno,
            sqlstate=UNDEFINED_OBJECT,
            located=True,
            config_file=str(config_file),
        )
    for entry in live:
        gucdef = builder.define(entry.name)
        assert gucdef is not None
        if gucdef.key in ("config_file", "data_directory"):
            continue  # set by the server (PGC_S_OVERRIDE outranks the file)
        if gucdef.context == "internal":
            raise ConfigError(
                f'parameter "{entry.name}" cannot be changed',
                entry.filename,
                entry.lineno,
                sqlstate=CANT_CHANGE_RUNTIME_PARAM,
                config_file=str(config_file),
            )
        try:
            value = parse_value(gucdef, entry.value, name=entry.name)
        except PgError as e:
            raise _from_pg(e, entry, str(config_file)) from None
        if builder.origins.get(gucdef.key) == _ORIGIN_OVERRIDE:
            continue  # validated, but -c wins
        builder.values[gucdef.key] = value
        builder.origins[gucdef.key] = _ORIGIN_FILE
        builder.sources[gucdef.key] = (entry.filename, entry.lineno)
    _finish(builder, configdir)
    return builder.freeze()


def reload_settings_detailed(
    current: Settings,
    data_dir: Path,
    overrides: Mapping[str, str] = MappingProxyType({}),
) -> tuple[Settings, list[LogMessage]]:
    """:func:`reload_settings` with DETAIL/HINT kept (each LogMessage is one LOG line plus its fields)."""
    log: list[LogMessage] = []
    config_file = current.config_file
    result, blame = _read_files(config_file, current.data_dir)
    log.extend(LogMessage(line) for line in result.log)
    if result.errors:
        log.extend(LogMessage(e.message, e.detail, e.hint) for e in result.errors)
        log.append(LogMessage(f'configuration file "{blame}" contains errors; no changes were applied'))
        return current, log

    builder = _Builder(current, current.data_dir, config_file)
    live, unknown = _live_entries(result.entries, builder)
    if unknown:
        for e in unknown:
            log.append(
                LogMessage(
                    f'unrecognized configuration parameter "{e.name}" in file "{e.filename}" line {e.lineno}'
                )
            )
        log.append(
            LogMessage(
                f'configuration file "{unknown[-1].filename}" contains errors; no changes were applied'
            )
        )
        return current, log

    error = False
    in_file = {d.key for d in (builder.define(e.name) for e in live) if d is not None}
    # Parameters that were set in the file and no longer are: back to the default.
    for key, origin in sorted(current._origins.items()):  # guc_variables order: by name
        if origin != _ORIGIN_FILE or key in in_file:
            continue
        gucdef = builder.define(key)
        assert gucdef is not None
        if gucdef.context in ("internal", "postmaster"):
            log.append(
                LogMessage(f'parameter "{gucdef.name}" cannot be changed without restarting the server')
            )
            error = True
            continue
        builder.values[key] = gucdef.default
        builder.origins.pop(key, None)
        builder.sources.pop(key, None)
        log.append(LogMessage(f'parameter "{gucdef.name}" removed from configuration file, reset to default'))

    overridden = {k for k, o in current._origins.items() if o == _ORIGIN_OVERRIDE}
    for name in overrides:
        gucdef = builder.define(_normalize_override(name))
        if gucdef is not None:
            overridden.add(gucdef.key)
    for entry in live:
        gucdef = builder.define(entry.name)
        assert gucdef is not None
        if gucdef.key in ("config_file", "data_directory"):
            continue  # set by the server; cannot change without a restart anyway
        if gucdef.context == "internal":
            log.append(LogMessage(f'parameter "{entry.name}" cannot be changed'))
            error, blame = True, entry.filename
            continue
        try:
            value = parse_value(gucdef, entry.value, name=entry.name)
        except PgError as e:
            log.append(LogMessage(e.message, e.detail, e.hint))
            error, blame = True, entry.filename
            continue
        old = builder.values[gucdef.key]
        if gucdef.context == "postmaster":
            if value != old:
                log.append(
                    LogMessage(f'parameter "{entry.name}" cannot be changed without restarting the server')
                )
                error, blame = True, entry.filename
            elif gucdef.key not in overridden:
                builder.origins[gucdef.key] = _ORIGIN_FILE
                builder.sources[gucdef.key] = (entry.filename, entry.lineno)
            continue
        if gucdef.key in overridden:
            continue  # -c outranks the file
        if format_value(gucdef, value) != format_value(gucdef, old):
            log.append(LogMessage(f'parameter "{entry.name}" changed to "{entry.value}"'))
        builder.values[gucdef.key] = value
        builder.origins[gucdef.key] = _ORIGIN_FILE
        builder.sources[gucdef.key] = (entry.filename, entry.lineno)
    if error:
        log.append(
            LogMessage(f'configuration file "{blame}" contains errors; unaffected changes were applied')
        )
    return builder.freeze(), log


def reload_settings(
    current: Settings,
    data_dir: Path,
    overrides: Mapping[str, str] = MappingProxyType({}),
) -> tuple[Settings, list[str]]:
    """The snapshot after SIGHUP and the LOG lines PostgreSQL would write; never raises.

    On any error the affected parameters keep their old values (see the module docstring).
    ``data_dir`` is accepted for symmetry with :func:`load_settings`; the data directory
    cannot change without a restart, so ``current.data_dir`` is what is read.
    """
    try:
        new, log = reload_settings_detailed(current, data_dir, overrides)
    except Exception as e:  # never raise at reload: keep the old snapshot
        return current, [f"could not reload configuration: {e}"]
    return new, [m.message for m in log]
