"""pg_hba.conf: parsing, validation, ``pg_hba_file_rules`` rows and line matching.

Follows PostgreSQL 16's ``parse_hba_line``, ``parse_hba_auth_opt``, ``check_hba``
(``src/backend/libpq/hba.c``) and ``fill_hba_line`` (``utils/adt/hbafuncs.c``).
Every message is PostgreSQL's, logged with the CONTEXT
``line %d of configuration file "%s"``.  As in PostgreSQL, any bad line rejects the
whole file (:func:`load_hba` raises :class:`HbaError` listing every bad line); a
``hostssl`` line while ``ssl = off`` is only a warning and still loads.

Methods: pgtls implements trust, reject, password, md5, scram-sha-256 and cert.  The
other methods PostgreSQL knows are refused at load with
``authentication method "ident" is not supported by pgtls``.

Matching is pure: DNS and interface lookups needed by host names, ``samehost`` and
``samenet`` go through an injectable :class:`pgtls.config.hba_net.Resolver`.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypedDict

from pgtls.config.authtokens import AuthToken, TokenizedLine, compile_auth_regex, tokenize_file, tokenize_text
from pgtls.config.hba_net import SYSTEM_RESOLVER, HostCheck, IPAddr, Resolver, check_ip, parse_ip

# Client addresses whose parsed form is kept (clients mostly come from a few addresses; parsing one with
# ipaddress costs about as much as the rest of an hba match).  A bound, so no stream of addresses grows it.
CLIENT_ADDRESS_CACHE = 1024
_client_ip = functools.lru_cache(maxsize=CLIENT_ADDRESS_CACHE)(parse_ip)

CONN_TYPES = ("local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
SUPPORTED_METHODS = ("trust", "reject", "password", "md5", "scram-sha-256", "cert")
# Methods PostgreSQL knows but pgtls does not implement (refused at load).
UNSUPPORTED_METHODS = ("ident", "peer", "gss", "sspi", "pam", "bsd", "ldap", "radius", "oauth")
# Options of the unsupported methods, with the method list PostgreSQL names for them.
_OTHER_OPTIONS = {
    "pamservice": "pam",
    "pam_use_hostname": "pam",
    "ldapurl": "ldap",
    "ldaptls": "ldap",
    "ldapscheme": "ldap",
    "ldapserver": "ldap",
    "ldapport": "ldap",
    "ldapbinddn": "ldap",
    "ldapbindpasswd": "ldap",
    "ldapsearchattribute": "ldap",
    "ldapsearchfilter": "ldap",
    "ldapbasedn": "ldap",
    "ldapprefix": "ldap",
    "ldapsuffix": "ldap",
    "krb_realm": "gssapi and sspi",
    "include_realm": "gssapi and sspi",
    "compat_realm": "sspi",
    "upn_username": "sspi",
    "radiusservers": "radius",
    "radiusports": "radius",
    "radiussecrets": "radius",
    "radiusidentifiers": "radius",
}


class RoleMembership(Protocol):
    """What matching needs from the role store (see :class:`pgtls.auth.roles.RoleStore`)."""

    def is_member(self, user: str, group: str) -> bool: ...


@dataclass(frozen=True)
class HbaLineError:
    filename: str
    lineno: int  # 0: the error concerns the whole file
    message: str
    hint: str | None = None

    def format(self) -> str:
        out = self.message
        if self.hint:
            out += f"\nHINT:  {self.hint}"
        if self.lineno:
            out += f'\nCONTEXT:  line {self.lineno} of configuration file "{self.filename}"'
        return out


class HbaError(Exception):
    """The file was rejected; ``errors`` lists every bad line."""

    def __init__(self, errors: Sequence[HbaLineError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(e.format() for e in self.errors)


@dataclass(frozen=True)
class HbaLine:
    filename: str
    line_number: int
    raw: str
    conn_type: str
    databases: tuple[AuthToken, ...]
    users: tuple[AuthToken, ...]
    ip_cmp: str | None = None  # None (local), "mask", "all", "samehost", "samenet"
    hostname: str | None = None
    addr: IPAddr | None = None
    mask: IPAddr | None = None
    method: str = "reject"
    options: dict[str, str] = field(default_factory=dict)  # as written: clientcert, clientname, map
    clientcert: str | None = None  # "verify-ca" | "verify-full" (cert implies verify-full)
    clientname: str = "CN"
    usermap: str | None = None

    @property
    def address(self) -> str | None:
        """The address column of pg_hba_file_rules."""
        if self.ip_cmp == "mask":
            return self.hostname if self.hostname else (str(self.addr) if self.addr is not None else None)
        return self.ip_cmp

    @property
    def netmask(self) -> str | None:
        return str(self.mask) if self.ip_cmp == "mask" and self.mask is not None else None

    def option_list(self) -> list[str] | None:
        """get_hba_options(): map first, then clientcert (clientname is not shown by PG)."""
        opts = []
        if self.usermap is not None:
            opts.append(f"map={self.usermap}")
        if self.clientcert is not None:
            opts.append(f"clientcert={self.clientcert}")
        return opts or None


class _LineFailed(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class _Parsed:
    line: HbaLine | None
    error: HbaLineError | None
    warning: HbaLineError | None = None


class _LineFields(TypedDict, total=False):
    """The HbaLine fields an address or an option sets."""

    ip_cmp: str | None
    hostname: str | None
    addr: IPAddr | None
    mask: IPAddr | None
    clientcert: str | None
    clientname: str
    usermap: str | None


def _parse_address(tok: AuthToken, fields: list[list[AuthToken]], idx: int) -> tuple[_LineFields, int]:
    """The address (and possibly netmask) fields of a host line."""
    if tok.is_keyword("all"):
        return {"ip_cmp": "all"}, idx
    if tok.is_keyword("samehost"):
        return {"ip_cmp": "samehost"}, idx
    if tok.is_keyword("samenet"):
        return {"ip_cmp": "samenet"}, idx
    s = tok.string
    host, slash, bits = s.partition("/")
    addr = parse_ip(host)
    if addr is None:
        if slash:
            raise _LineFailed(f'specifying both host name and CIDR mask is invalid: "{s}"')
        return {"ip_cmp": "mask", "hostname": host}, idx
    if slash:
        mask = _cidr_mask(bits, addr.version)
        if mask is None:
            raise _LineFailed(f'invalid CIDR mask in address "{s}"')
        return {"ip_cmp": "mask", "addr": addr, "mask": mask}, idx
    idx += 1
    if idx >= len(fields):
        raise _LineFailed(
            "end-of-line before netmask specification",
            "Specify an address range in CIDR notation, or provide a separate netmask.",
        )
    if len(fields[idx]) > 1:
        raise _LineFailed("multiple values specified for netmask")
    mtok = fields[idx][0].string
    mask_addr = parse_ip(mtok)
    if mask_addr is None:
        raise _LineFailed(f'invalid IP mask "{mtok}": {_gai_error(mtok)}')
    if mask_addr.version != addr.version:
        raise _LineFailed("IP address and mask do not match")
    return {"ip_cmp": "mask", "addr": addr, "mask": mask_addr}, idx


def _gai_error(s: str) -> str:
    try:
        socket.getaddrinfo(s, None, flags=socket.AI_NUMERICHOST)
    except socket.gaierror as e:
        return str(e.strerror)
    except (UnicodeError, ValueError):
        return "Name or service not known"
    return "Unknown error"


def _cidr_mask(bits: str, version: int) -> IPAddr | None:
    """pg_sockaddr_cidr_mask(): strtol() syntax, 0..32 or 0..128."""
    s = bits.lstrip(" \t\n\r\f\v")
    body = s[1:] if s[:1] in "+-" else s
    if not bits or not body.isascii() or not body.isdigit():
        return None
    n = int(s)
    maxbits = 32 if version == 4 else 128
    if n < 0 or n > maxbits:
        return None
    value = ((1 << maxbits) - 1) ^ ((1 << (maxbits - n)) - 1)
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


def _parse_option(name: str, val: str, kw: _LineFields, conn_type: str, method: str) -> None:
    """parse_hba_auth_opt() for the options pgtls supports."""
    if name == "map":
        if method != "cert":
            raise _LineFailed(
                'authentication option "map" is only valid for authentication methods '
                "ident, peer, gssapi, sspi, and cert"
            )
        kw["usermap"] = val
    elif name == "clientcert":
        if conn_type != "hostssl":
            raise _LineFailed('clientcert can only be configured for "hostssl" rows')
        if val == "verify-full":
            kw["clientcert"] = "verify-full"
        elif val == "verify-ca":
            if method == "cert":
                raise _LineFailed('clientcert only accepts "verify-full" when using "cert" authentication')
            kw["clientcert"] = "verify-ca"
        else:
            raise _LineFailed(f'invalid value for clientcert: "{val}"')
    elif name == "clientname":
        if conn_type != "hostssl":
            raise _LineFailed('clientname can only be configured for "hostssl" rows')
        if val not in ("CN", "DN"):
            raise _LineFailed(f'invalid value for clientname: "{val}"')
        kw["clientname"] = val
    elif name in _OTHER_OPTIONS:
        raise _LineFailed(
            f'authentication option "{name}" is only valid for authentication methods {_OTHER_OPTIONS[name]}'
        )
    else:
        raise _LineFailed(f'unrecognized authentication option name: "{name}"')


def parse_hba_line(tl: TokenizedLine, *, ssl_enabled: bool = True) -> _Parsed:
    """Parse one tokenized line; never raises."""
    warning: HbaLineError | None = None

    def err(message: str, hint: str | None = None) -> _Parsed:
        return _Parsed(None, HbaLineError(tl.file_name, tl.line_num, message, hint))

    try:
        fields = tl.fields
        if len(fields[0]) > 1:
            raise _LineFailed(
                "multiple values specified for connection type",
                "Specify exactly one connection type per line.",
            )
        conn_type = fields[0][0].string
        if conn_type not in CONN_TYPES:
            raise _LineFailed(f'invalid connection type "{conn_type}"')
        if conn_type == "hostssl" and not ssl_enabled:
            warning = HbaLineError(
                tl.file_name,
                tl.line_num,
                "hostssl record cannot match because SSL is disabled",
                'Set "ssl = on" in postgresql.conf.',
            )
        if conn_type == "hostgssenc":
            warning = HbaLineError(
                tl.file_name,
                tl.line_num,
                "hostgssenc record cannot match because GSSAPI is not supported by this build",
            )
        if len(fields) < 2:
            raise _LineFailed("end-of-line before database specification")
        lists: list[tuple[AuthToken, ...]] = []
        for f in (fields[1], fields[2] if len(fields) > 2 else None):
            if f is None:
                raise _LineFailed("end-of-line before role specification")
            toks = []
            for t in f:
                ct, rx_err = compile_auth_regex(t)
                if rx_err:
                    raise _LineFailed(rx_err)
                toks.append(ct)
            lists.append(tuple(toks))
        kw: _LineFields = {}
        idx = 2
        if conn_type != "local":
            idx += 1
            if idx >= len(fields):
                raise _LineFailed("end-of-line before IP address specification")
            if len(fields[idx]) > 1:
                raise _LineFailed(
                    "multiple values specified for host address", "Specify one address range per line."
                )
            addr_kw, idx = _parse_address(fields[idx][0], fields, idx)
            kw.update(addr_kw)
        idx += 1
        if idx >= len(fields):
            raise _LineFailed("end-of-line before authentication method")
        if len(fields[idx]) > 1:
            raise _LineFailed(
                "multiple values specified for authentication type",
                "Specify exactly one authentication type per line.",
            )
        method = fields[idx][0].string
        if method not in SUPPORTED_METHODS and method not in UNSUPPORTED_METHODS:
            raise _LineFailed(f'invalid authentication method "{method}"')
        effective = "peer" if (conn_type == "local" and method == "ident") else method
        if conn_type == "local" and effective == "gss":
            raise _LineFailed("gssapi authentication is not supported on local sockets")
        if conn_type != "local" and effective == "peer":
            raise _LineFailed("peer authentication is only supported on local sockets")
        if conn_type != "hostssl" and method == "cert":
            raise _LineFailed("cert authentication is only supported on hostssl connections")
        if method in UNSUPPORTED_METHODS:
            raise _LineFailed(f'authentication method "{method}" is not supported by pgtls')
        options: dict[str, str] = {}
        for f in fields[idx + 1 :]:
            for t in f:
                name, eq, val = t.string.partition("=")
                if not eq:
                    raise _LineFailed(f"authentication option not in name=value format: {t.string}")
                _parse_option(name, val, kw, conn_type, method)
                options[name] = val
        if method == "cert":
            kw["clientcert"] = "verify-full"
        line = HbaLine(
            filename=tl.file_name,
            line_number=tl.line_num,
            raw=tl.raw_line,
            conn_type=conn_type,
            databases=lists[0],
            users=lists[1],
            method=method,
            options=options,
            **kw,
        )
        return _Parsed(line, None, warning)
    except _LineFailed as e:
        return err(e.message, e.hint)


@dataclass(frozen=True)
class HbaRules:
    lines: tuple[HbaLine, ...]
    warnings: list[str] = field(default_factory=list)
    _rows: tuple[tuple[object, ...], ...] = field(default=(), repr=False, compare=False)

    def rows(self) -> list[tuple[object, ...]]:
        """pg_hba_file_rules rows (rule_number, file_name, line_number, type, database,
        user_name, address, netmask, auth_method, options, error)."""
        return list(self._rows)


def _row(rule: int | None, tl: TokenizedLine, line: HbaLine | None, error: str | None) -> tuple[object, ...]:
    if line is None:
        return (rule, tl.file_name, tl.line_num, None, None, None, None, None, None, None, error)
    return (
        rule,
        tl.file_name,
        tl.line_num,
        line.conn_type,
        [t.string for t in line.databases],
        [t.string for t in line.users],
        line.address,
        line.netmask,
        line.method,
        line.option_list(),
        error,
    )


def _process(
    tlines: list[TokenizedLine], ssl_enabled: bool
) -> tuple[list[HbaLine], list[HbaLineError], list[HbaLineError], list[tuple[object, ...]]]:
    lines: list[HbaLine] = []
    errors: list[HbaLineError] = []
    warnings: list[HbaLineError] = []
    rows: list[tuple[object, ...]] = []
    rule = 0
    for tl in tlines:
        if tl.err_msg is not None:
            errors.append(HbaLineError(tl.file_name, tl.line_num, tl.err_msg))
            rows.append(_row(None, tl, None, tl.err_msg))
            continue
        p = parse_hba_line(tl, ssl_enabled=ssl_enabled)
        if p.error is not None:
            errors.append(p.error)
            rows.append(_row(None, tl, None, p.error.message))
            continue
        assert p.line is not None
        lines.append(p.line)
        if p.warning is not None:
            warnings.append(p.warning)
            rows.append(_row(None, tl, p.line, p.warning.message))
        else:
            rule += 1
            rows.append(_row(rule, tl, p.line, None))
    return lines, errors, warnings, rows


def _finish(name: str, tlines: list[TokenizedLine], ssl_enabled: bool, log: list[str]) -> HbaRules:
    lines, errors, warnings, rows = _process(tlines, ssl_enabled)
    if not errors and not lines:
        errors.append(HbaLineError(name, 0, f'configuration file "{name}" contains no entries'))
    if errors:
        raise HbaError(errors)
    return HbaRules(tuple(lines), log + [w.format() for w in warnings], tuple(rows))


def load_hba(path: Path | str, *, ssl_enabled: bool = True) -> HbaRules:
    """Load pg_hba.conf; raises :class:`HbaError` if any line is bad (nothing is loaded)."""
    log: list[str] = []
    name = str(Path(path).absolute())
    try:
        tlines = tokenize_file(name, log)
    except OSError as e:
        raise HbaError([HbaLineError(name, 0, f'could not open file "{name}": {e.strerror}')]) from None
    return _finish(name, tlines, ssl_enabled, log)


def parse_hba_text(text: str, file_name: str = "pg_hba.conf", *, ssl_enabled: bool = True) -> HbaRules:
    """Like :func:`load_hba` for contents held in memory (tests, fuzzing)."""
    log: list[str] = []
    return _finish(file_name, tokenize_text(text, file_name, log), ssl_enabled, log)


def hba_file_rules(path: Path | str, *, ssl_enabled: bool = True) -> list[tuple[object, ...]]:
    """pg_hba_file_rules for a file on disk, including rows for bad lines; never raises.

    If the file itself cannot be opened PostgreSQL raises an error; here a single row
    with line_number 0 carries that message.
    """
    name = str(Path(path).absolute())
    try:
        tlines = tokenize_file(name)
    except OSError as e:
        return [
            (
                None,
                name,
                0,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                f'could not open file "{name}": {e.strerror}',
            )
        ]
    return _process(tlines, ssl_enabled)[3]


# --- matching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnFacts:
    """What the hba match needs to know about a connection.

    ``replication`` means a physical-replication walsender (``replication=true``); such a
    connection only matches the ``replication`` database keyword.
    """

    local: bool
    addr: str | None
    ssl: bool
    gss: bool
    user: str
    database: str
    replication: bool = False


@dataclass(frozen=True)
class MatchResult:
    line: HbaLine | None
    # errdetail_log of PostgreSQL's HOSTNAME_LOOKUP_DETAIL, for the "no pg_hba.conf entry" log line.
    hostname_detail: str | None = None


def _check_role(
    user: str, tokens: Sequence[AuthToken], roles: RoleMembership, case_insensitive: bool = False
) -> bool:
    for t in tokens:
        if t.is_member_check:
            if roles.is_member(user, t.string[1:]):
                return True
        elif t.is_keyword("all"):
            return True
        elif t.regex is not None:
            if t.regex.search(user):
                return True
        elif case_insensitive:
            if t.string.lower() == user.lower():
                return True
        elif t.string == user:
            return True
    return False


def _check_db(conn: ConnFacts, tokens: Sequence[AuthToken], roles: RoleMembership) -> bool:
    for t in tokens:
        if conn.replication:
            if t.is_keyword("replication"):
                return True
        elif t.is_keyword("all"):
            return True
        elif t.is_keyword("sameuser"):
            if conn.database == conn.user:
                return True
        elif t.is_keyword("samegroup") or t.is_keyword("samerole"):
            if roles.is_member(conn.user, conn.database):
                return True
        elif t.is_keyword("replication"):
            continue
        elif t.regex is not None:
            if t.regex.search(conn.database):
                return True
        elif t.string == conn.database:
            return True
    return False


def match_detail(
    rules: HbaRules, conn: ConnFacts, roles: RoleMembership, resolver: Resolver = SYSTEM_RESOLVER
) -> MatchResult:
    """check_hba(): the first matching line, plus the host-name lookup detail for logs."""
    client = None if conn.local or conn.addr is None else _client_ip(conn.addr.split("%", 1)[0])
    hostcheck = HostCheck(client, resolver)
    for hba in rules.lines:
        if hba.conn_type == "local":
            if not conn.local:
                continue
        else:
            if conn.local:
                continue
            if conn.ssl and hba.conn_type == "hostnossl":
                continue
            if not conn.ssl and hba.conn_type == "hostssl":
                continue
            if hba.conn_type == "hostgssenc" or (conn.gss and hba.conn_type == "hostnogssenc"):
                continue
            if hba.ip_cmp == "mask":
                if hba.hostname is not None:
                    if not hostcheck.matches(hba.hostname):
                        continue
                elif (
                    client is None
                    or hba.addr is None
                    or hba.mask is None
                    or not check_ip(client, hba.addr, hba.mask)
                ):
                    continue
            elif hba.ip_cmp in ("samehost", "samenet"):
                if client is None or not hostcheck.same_host_or_net(hba.ip_cmp):
                    continue
        if not _check_db(conn, hba.databases, roles):
            continue
        if not _check_role(conn.user, hba.users, roles):
            continue
        return MatchResult(hba, hostcheck.detail())
    return MatchResult(None, hostcheck.detail())


def match(
    rules: HbaRules, conn: ConnFacts, roles: RoleMembership, resolver: Resolver = SYSTEM_RESOLVER
) -> HbaLine | None:
    """The first line matching ``conn`` (None: implicit reject)."""
    return match_detail(rules, conn, roles, resolver).line
