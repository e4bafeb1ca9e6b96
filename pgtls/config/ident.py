"""pg_ident.conf: user name maps (``map=`` on cert lines), and ``pg_ident_file_mappings`` rows.

Follows PostgreSQL 16's ``parse_ident_line``, ``check_ident_usermap`` and
``check_usermap`` (``src/backend/libpq/hba.c``): each line is ``MAPNAME SYSTEM-USER
PG-USER``.  SYSTEM-USER is a literal or a ``/regex`` whose first capture replaces
``\\1`` in PG-USER; PG-USER is a literal, ``all``, ``+group`` or a ``/regex``.  The
tokenizer (quoting, ``@file``, ``include*``) is shared with pg_hba.conf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pgtls.config.authregex import AuthRegexMatchError
from pgtls.config.authtokens import AuthToken, TokenizedLine, compile_auth_regex, tokenize_file, tokenize_text
from pgtls.config.hba import RoleMembership, _check_role
from pgtls.config.lineerror import FileErrors, LineError


class IdentLineError(LineError):
    """A bad line of this file."""


class IdentError(FileErrors):
    """This file was refused."""


@dataclass(frozen=True)
class IdentLine:
    filename: str
    line_number: int
    map_name: str
    system_user: AuthToken
    pg_user: AuthToken


class _NoRoles:
    def is_member(self, user: str, group: str) -> bool:
        return False


@dataclass(frozen=True)
class IdentMaps:
    lines: tuple[IdentLine, ...] = ()
    _rows: tuple[tuple[object, ...], ...] = field(default=(), repr=False, compare=False)

    def rows(self) -> list[tuple[object, ...]]:
        """pg_ident_file_mappings rows: map_number, file_name, line_number, map_name,
        sys_name, pg_username, error."""
        return list(self._rows)


def parse_ident_line(tl: TokenizedLine) -> tuple[IdentLine | None, str | None]:
    f = tl.fields
    for i in range(3):
        if i >= len(f):
            return None, "missing entry at end of line"
        if len(f[i]) > 1:
            return None, "multiple values in ident field"
    # PostgreSQL ignores fields after the third one.
    sys_tok, err = compile_auth_regex(f[1][0])
    if err:
        return None, err
    pg_tok, err = compile_auth_regex(f[2][0])
    if err:
        return None, err
    return IdentLine(tl.file_name, tl.line_num, f[0][0].string, sys_tok, pg_tok), None


def _process(
    tlines: list[TokenizedLine],
) -> tuple[list[IdentLine], list[IdentLineError], list[tuple[object, ...]]]:
    lines: list[IdentLine] = []
    errors: list[IdentLineError] = []
    rows: list[tuple[object, ...]] = []
    n = 0
    for tl in tlines:
        line, err = (None, tl.err_msg) if tl.err_msg else parse_ident_line(tl)
        if err is not None or line is None:
            msg = err or "invalid line"
            errors.append(IdentLineError(tl.file_name, tl.line_num, msg))
            rows.append((None, tl.file_name, tl.line_num, None, None, None, msg))
            continue
        n += 1
        lines.append(line)
        rows.append(
            (n, tl.file_name, tl.line_num, line.map_name, line.system_user.string, line.pg_user.string, None)
        )
    return lines, errors, rows


def load_ident(path: Path | str) -> IdentMaps:
    """Load pg_ident.conf; raises :class:`IdentError` (every bad line) if anything is wrong."""
    name = str(Path(path).absolute())
    try:
        tlines = tokenize_file(name)
    except OSError as e:
        raise IdentError([IdentLineError(name, 0, f'could not open file "{name}": {e.strerror}')]) from None
    lines, errors, rows = _process(tlines)
    if errors:
        raise IdentError(errors)
    return IdentMaps(tuple(lines), tuple(rows))


def parse_ident_text(text: str, file_name: str = "pg_ident.conf") -> IdentMaps:
    lines, errors, rows = _process(tokenize_text(text, file_name))
    if errors:
        raise IdentError(errors)
    return IdentMaps(tuple(lines), tuple(rows))


def ident_file_mappings(path: Path | str) -> list[tuple[object, ...]]:
    """pg_ident_file_mappings rows including errors; never raises."""
    name = str(Path(path).absolute())
    try:
        tlines = tokenize_file(name)
    except OSError as e:
        return [(None, name, 0, None, None, None, f'could not open file "{name}": {e.strerror}')]
    return _process(tlines)[2]


def _check_line(
    line: IdentLine,
    map_name: str,
    pg_user: str,
    system_user: str,
    case_insensitive: bool,
    roles: RoleMembership,
    log: list[str],
) -> tuple[bool, bool]:
    """check_ident_usermap(): returns (found, error)."""
    if line.map_name != map_name:
        return False, False
    rx = line.system_user.regex
    if rx is not None:
        pg_tok = line.pg_user
        if not pg_tok.is_member_check and pg_tok.regex is None and "\\1" in pg_tok.string:
            try:
                matched, group = rx.first_group(system_user)
            except AuthRegexMatchError as e:
                log.append(f'regular expression match for "{rx.source}" failed: {e}')
                return False, True
            if not matched:
                return False, False
            if group is None:
                log.append(
                    f'regular expression "{line.system_user.string[1:]}" has no subexpressions as requested '
                    f'by backreference in "{pg_tok.string}"'
                )
                return False, True
            pg_tok = AuthToken(pg_tok.string.replace("\\1", group, 1), True)
        elif not rx.search(system_user):
            return False, False
        return _check_role(pg_user, [pg_tok], roles, case_insensitive), False
    if case_insensitive:
        if line.system_user.string.lower() != system_user.lower():
            return False, False
    elif line.system_user.string != system_user:
        return False, False
    return _check_role(pg_user, [line.pg_user], roles, case_insensitive), False


def check_usermap_log(
    maps: IdentMaps | None,
    map_name: str | None,
    pg_user: str,
    system_user: str,
    case_insensitive: bool = False,
    roles: RoleMembership | None = None,
) -> tuple[bool, list[str]]:
    """check_usermap(): (allowed, LOG lines explaining a refusal)."""
    log: list[str] = []
    if not map_name:
        same = pg_user.lower() == system_user.lower() if case_insensitive else pg_user == system_user
        if not same:
            log.append(
                f"provided user name ({pg_user}) and authenticated user name ({system_user}) do not match"
            )
        return same, log
    r = roles if roles is not None else _NoRoles()
    found = error = False
    for line in maps.lines if maps is not None else ():
        found, error = _check_line(line, map_name, pg_user, system_user, case_insensitive, r, log)
        if found or error:
            break
    if not found and not error:
        log.append(f'no match in usermap "{map_name}" for user "{pg_user}" authenticated as "{system_user}"')
    return found, log


def check_usermap(
    maps: IdentMaps | None,
    map_name: str | None,
    pg_user: str,
    system_user: str,
    case_insensitive: bool = False,
    roles: RoleMembership | None = None,
) -> bool:
    """True if ``system_user`` may connect as ``pg_user`` under ``map_name``
    (use :func:`check_usermap_log` to get the LOG lines on failure)."""
    return check_usermap_log(maps, map_name, pg_user, system_user, case_insensitive, roles)[0]
