"""libpq connection strings: ``keyword = value`` lists and ``postgresql://`` URIs, parsed as libpq does.

The upstream of a route (``upstream = '<conninfo>'`` in postgresql.conf, a line of
``pgtls_databases.conf``) is written as a libpq connection string, so it must mean exactly what it
means to psql: this follows libpq's ``conninfo_parse`` and ``conninfo_uri_parse_options`` (fe-connect.c)
— blanks around ``=``, single quotes with backslash escapes, backslash escapes in unquoted values,
the URI's user, password, comma-separated host and port lists with ``[IPv6]``, database and query
parameters, percent-decoding, ``ssl=true`` as ``sslmode=require``, the last value of a repeated
keyword winning — with libpq's error texts.  ``tests/unit/config/test_conninfo.py`` compares it with libpq
itself (``PQconninfoParse`` through psycopg) on generated input.

Nothing here connects or applies defaults: :func:`parse_conninfo` returns the keywords the string
sets, as ``PQconninfoParse`` does.
"""

from __future__ import annotations

# The keywords libpq 18 knows (PQconndefaults()).
LIBPQ_KEYWORDS = frozenset({
    "service", "user", "password", "passfile", "channel_binding", "connect_timeout", "dbname", "host",
    "hostaddr", "port", "client_encoding", "options", "application_name", "fallback_application_name",
    "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
    "sslmode", "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslcertmode", "sslpassword",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "require_auth", "min_protocol_version",
    "max_protocol_version", "ssl_min_protocol_version", "ssl_max_protocol_version", "gssencmode",
    "krbsrvname", "gsslib", "gssdelegation", "replication", "target_session_attrs", "load_balance_hosts",
    "scram_client_key", "scram_server_key", "oauth_issuer", "oauth_client_id", "oauth_client_secret",
    "oauth_scope", "sslkeylogfile",
})  # fmt: skip

URI_PREFIXES = ("postgresql://", "postgres://")
_SPACE = " \t\n\v\f\r"  # C isspace() in the C locale


class ConninfoError(ValueError):
    """A connection string libpq refuses; ``message`` is libpq's text (without its newline)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_conninfo(text: str, keywords: frozenset[str] = LIBPQ_KEYWORDS) -> dict[str, str]:
    """The keywords ``text`` sets, in the order libpq lists them is not kept: in the order written."""
    text = text.split("\0", 1)[0]  # a C string ends at its first NUL
    if text.startswith(URI_PREFIXES):
        return _parse_uri(text, keywords)
    return _parse_pairs(text, keywords)


def _store(out: dict[str, str], keywords: frozenset[str], keyword: str, value: str) -> None:
    if keyword == "requiressl":  # kept by libpq for backwards compatibility
        keyword, value = "sslmode", "require" if value.startswith("1") else "prefer"
    if keyword not in keywords:
        raise ConninfoError(f'invalid connection option "{keyword}"')
    out[keyword] = value


def _parse_pairs(text: str, keywords: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACE:
            i += 1
            continue
        start = i
        while i < n and text[i] != "=" and text[i] not in _SPACE:
            i += 1
        name = text[start:i]
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n or text[i] != "=":
            raise ConninfoError(f'missing "=" after "{name}" in connection info string')
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise ConninfoError("unterminated quoted string in connection info string")
                c = text[i]
                if c == "\\":
                    i += 1
                    if i < n:
                        value.append(text[i])
                        i += 1
                    continue
                i += 1
                if c == "'":
                    break
                value.append(c)
        else:
            while i < n:
                c = text[i]
                if c in _SPACE:
                    i += 1
                    break
                if c == "\\":
                    i += 1
                    if i < n:
                        value.append(text[i])
                        i += 1
                else:
                    value.append(c)
                    i += 1
        _store(out, keywords, name, "".join(value))
    return out


def uri_decode(text: str) -> str:
    """conninfo_uri_decode(): blanks around a value are dropped and blanks inside it refused (libpq 18),
    ``%XX`` escapes are bytes (then UTF-8), ``%00`` is forbidden."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n and text[i] == " ":
        i += 1
    while i < n and text[i] != " ":
        c = text[i]
        if c != "%":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        digits = text[i + 1 : i + 3]
        if len(digits) < 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise ConninfoError(f'invalid percent-encoded token: "{text}"')
        byte = int(digits, 16)
        if byte == 0:
            raise ConninfoError(f'forbidden value %00 in percent-encoded value: "{text}"')
        out.append(byte)
        i += 3
    while i < n and text[i] == " ":
        i += 1
    if i < n:
        raise ConninfoError(f'unexpected spaces found in "{text}", use percent-encoded spaces (%20) instead')
    return out.decode("utf-8", "surrogateescape")


def _parse_uri(uri: str, keywords: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    prefix = next(p for p in URI_PREFIXES if uri.startswith(p))
    p = len(prefix)
    n = len(uri)

    def at(k: int) -> str:
        return uri[k] if k < n else ""

    look = p
    while look < n and uri[look] not in "@/":
        look += 1
    if at(look) == "@":
        q = p
        while uri[q] not in ":@":
            q += 1
        if q > p:
            _store(out, keywords, "user", uri_decode(uri[p:q]))
        if uri[q] == ":":
            r = q + 1
            while uri[r] != "@":
                r += 1
            if r > q + 1:
                _store(out, keywords, "password", uri_decode(uri[q + 1 : r]))
            q = r
        p = q + 1
    hosts: list[str] = []
    ports: list[str] = []
    while True:
        if at(p) == "[":
            start = p + 1
            p = start
            while p < n and uri[p] != "]":
                p += 1
            if p >= n:
                raise ConninfoError(
                    'end of string reached when looking for matching "]" in IPv6 host address '
                    f'in URI: "{uri}"'
                )
            if p == start:
                raise ConninfoError(f'IPv6 host address may not be empty in URI: "{uri}"')
            host = uri[start:p]
            p += 1
            if at(p) not in ("", ":", "/", "?", ","):
                raise ConninfoError(
                    f'unexpected character "{uri[p]}" at position {p + 1} in URI '
                    f'(expected ":" or "/"): "{uri}"'
                )
        else:
            start = p
            while p < n and uri[p] not in ":/?,":
                p += 1
            host = uri[start:p]
        terminator = at(p)
        hosts.append(host)
        port = ""
        if terminator == ":":
            start = p = p + 1
            while p < n and uri[p] not in "/?,":
                p += 1
            port = uri[start:p]
            terminator = at(p)
        ports.append(port)
        if terminator != ",":
            break
        p += 1
    hostlist = ",".join(hosts)
    portlist = ",".join(ports)  # "h1,h2" gives the port list "," as in libpq
    if hostlist:
        _store(out, keywords, "host", uri_decode(hostlist))
    if portlist:
        _store(out, keywords, "port", uri_decode(portlist))
    if terminator and terminator != "?":
        start = p = p + 1
        while p < n and uri[p] != "?":
            p += 1
        if p > start:
            _store(out, keywords, "dbname", uri_decode(uri[start:p]))
        terminator = at(p)
    if terminator:
        _parse_uri_params(uri[p + 1 :], out, keywords)
    return out


def _parse_uri_params(params: str, out: dict[str, str], keywords: frozenset[str]) -> None:
    while params:
        token, _, params = params.partition("&")
        keyword, eq, value = token.partition("=")
        if not eq:
            raise ConninfoError(f'missing key/value separator "=" in URI query parameter: "{token}"')
        if "=" in value:
            raise ConninfoError(f'extra key/value separator "=" in URI query parameter: "{keyword}"')
        keyword, value = uri_decode(keyword), uri_decode(value)
        if keyword == "ssl" and value == "true":
            keyword, value = "sslmode", "require"
        try:
            _store(out, keywords, keyword, value)
        except ConninfoError:
            raise ConninfoError(f'invalid URI query parameter: "{keyword}"') from None
