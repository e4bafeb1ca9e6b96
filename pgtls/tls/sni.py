"""Server-side SNI as PostgreSQL 19 defines it: ``ssl_sni`` and the hosts file (``pg_hosts.conf``).

With ``ssl_sni = on`` and a hosts file with entries, each line
``HOSTNAMES CERT KEY [CA [PASSPHRASE_COMMAND [PASSPHRASE_COMMAND_SUPPORTS_RELOAD]]]`` gives one TLS
configuration (pg_hba.conf's tokenizer: quoting, comma lists, ``@file``, include directives). HOSTNAMES is
a comma list of names, or exactly ``*`` (the default) or exactly ``/no_sni/`` (clients that send no name).
postgresql.conf's certificate, key, CA and passphrase settings are then ignored; CRLs, protocols, ciphers,
groups and DH parameters stay global (and clientname / map never change per host).

Selection at the ClientHello: a name sent → the first entry listing it (case-insensitive, whole name), else
``*``, else the fatal alert unrecognized_name; no name → ``/no_sni/``, else ``*``, else the log line ``no
hostname provided in callback, and no fallback configured`` and a handshake_failure alert.  The chosen
entry brings its chain and key, and its CA decides whether a client certificate is requested.

Messages are PostgreSQL 19's (``../shared/reference/postgresql-ssl-behaviour.md``, A10).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pgtls.config.authtokens import tokenize_file
from pgtls.tls import ffi
from pgtls.tls.context import TlsConfig, build_tls_config
from pgtls.tls.errors import TlsConfigError

_NO_CALLBACK = ffi.VERIFY_CB()  # a NULL function pointer: OpenSSL's own verification
DEFAULT_HOST = "*"
NO_SNI = "/no_sni/"
_FIELD_NAMES = ("SSL certificate", "SSL key", "SSL CA", "SSL passphrase command")


@dataclass(frozen=True)
class HostEntry:
    names: tuple[str, ...]  # lower case; or ("*",) or ("/no_sni/",)
    cert: str
    key: str
    ca: str = ""
    passphrase_command: str = ""
    passphrase_reload: bool = False
    where: tuple[str, int] = ("", 0)


class HostsFileError(Exception):
    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


def _bool(text: str) -> bool | None:
    t = text.lower()
    if t in ("on", "true", "yes", "1", "t", "y"):
        return True
    if t in ("off", "false", "no", "0", "f", "n"):
        return False
    return None


def parse_hosts_file(path: Path) -> list[HostEntry]:
    """The entries of the hosts file (missing: none); :class:`HostsFileError` with every problem."""
    try:
        lines = tokenize_file(path)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise HostsFileError([f'could not open file "{path}": {e.strerror}']) from None
    errors: list[str] = []
    entries: list[HostEntry] = []
    for line in lines:
        ctx = f'line {line.line_num} of configuration file "{line.file_name}"'
        if line.err_msg:
            errors.append(f"{line.err_msg}\nCONTEXT:  {ctx}")
            continue
        fields = line.fields
        names = [t.string for t in fields[0]] if fields else []
        special = [n for n in names if n in (DEFAULT_HOST, NO_SNI)]
        if special and len(names) > 1:
            errors.append(f"default and non-SNI entries cannot be mixed with other entries\nCONTEXT:  {ctx}")
            continue
        if len(fields) < 3:
            errors.append(f"missing entry at end of line\nCONTEXT:  {ctx}")
            continue
        if len(fields) > 6:
            errors.append(f"extra fields at end of line\nCONTEXT:  {ctx}")
            continue
        values: list[str] = []
        bad = False
        for i, f in enumerate(fields[1:5]):
            if len(f) > 1:
                errors.append(f"multiple values specified for {_FIELD_NAMES[i]}\nCONTEXT:  {ctx}")
                bad = True
                break
            values.append(f[0].string)
        if bad:
            continue
        reload = False
        if len(fields) == 6:
            flag = _bool(fields[5][0].string) if len(fields[5]) == 1 else None
            if flag is None:
                errors.append(
                    f"incorrect syntax for boolean value SSL_passphrase_cmd_reload\nCONTEXT:  {ctx}"
                )
                continue
            reload = flag
        entries.append(
            HostEntry(
                names=tuple(n if n in (DEFAULT_HOST, NO_SNI) else n.lower() for n in names),
                cert=values[0],
                key=values[1],
                ca=values[2] if len(values) > 2 else "",
                passphrase_command=values[3] if len(values) > 3 else "",
                passphrase_reload=reload,
                where=(line.file_name, line.line_num),
            )
        )
    if errors:
        raise HostsFileError(
            errors + [f'could not load "{path}": loading config from "{path}" failed due to parsing error']
        )
    seen: dict[str, tuple[str, int]] = {}
    for entry in entries:
        for n in entry.names:
            if n in seen:
                if n == DEFAULT_HOST:
                    raise HostsFileError(["multiple default hosts specified"])
                if n == NO_SNI:
                    raise HostsFileError(["multiple no_sni hosts specified"])
                raise HostsFileError([f'multiple entries for host "{n}" specified'])
            seen[n] = entry.where
    return entries


@dataclass
class SniHosts:
    """The loaded configuration of every entry, and the choice at each ClientHello."""

    entries: list[tuple[HostEntry, TlsConfig]]
    by_name: dict[str, TlsConfig] = field(default_factory=dict)
    default: TlsConfig | None = None
    no_sni: TlsConfig | None = None
    on_no_fallback: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        for entry, cfg in self.entries:
            for n in entry.names:
                if n == DEFAULT_HOST:
                    self.default = cfg
                elif n == NO_SNI:
                    self.no_sni = cfg
                else:
                    self.by_name.setdefault(n, cfg)

    def choose(self, server_name: str | None) -> TlsConfig | int:
        """The configuration for a ClientHello, or the TLS alert to end it with."""
        if server_name is not None:
            cfg = self.by_name.get(server_name.lower()) or self.default
            return cfg if cfg is not None else ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        cfg = self.no_sni or self.default
        if cfg is None:
            self.on_no_fallback()
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        return cfg

    def config_of(self, context: ssl.SSLContext) -> TlsConfig | None:
        for _, cfg in self.entries:
            if cfg.context is context:
                return cfg
        return None


def _entry_view(settings: Mapping[str, object], e: HostEntry) -> dict[str, object]:
    view = dict(settings)
    view.update(
        ssl_cert_file=e.cert,
        ssl_key_file=e.key,
        ssl_ca_file=e.ca,
        ssl_passphrase_command=e.passphrase_command,
        ssl_passphrase_command_supports_reload=e.passphrase_reload,
    )
    return view


def build_server_tls(
    settings: Mapping[str, object],
    data_dir: Path,
    *,
    is_start: bool,
    sni: bool,
    hosts_file: str,
    interactive: bool = False,
    log_no_fallback: Callable[[], None] = lambda: None,
) -> TlsConfig:
    """The server's TLS configuration: postgresql.conf's, or (SNI) one per hosts-file entry behind the first
    entry's context, which picks the entry at each ClientHello.  Raises TlsConfigError."""
    entries: list[HostEntry] = []
    if sni:
        path = Path(hosts_file) if Path(hosts_file).is_absolute() else data_dir / hosts_file
        try:
            entries = parse_hosts_file(path)
        except HostsFileError as e:
            raise TlsConfigError(
                e.messages[-1], logged_before=tuple(TlsConfigError(m) for m in e.messages[:-1])
            ) from None
    if not entries:
        return build_tls_config(settings, data_dir, is_start=is_start, interactive=interactive)
    loaded = [
        (e, build_tls_config(_entry_view(settings, e), data_dir, is_start=is_start, interactive=interactive))
        for e in entries
    ]
    hosts = SniHosts(loaded, on_no_fallback=log_no_fallback)
    first = loaded[0][1]
    lib = ffi.libs().ssl

    def pick(sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        choice = hosts.choose(server_name)
        if isinstance(choice, int):
            return choice
        if choice.context is not sslobj.context:
            sslobj.context = choice.context
        # SSL_set_SSL_CTX brings the chain and key but not the verify mode: the entry's CA decides it.
        mode = ffi.SSL_VERIFY_PEER | ffi.SSL_VERIFY_CLIENT_ONCE if choice.ca_loaded else 0
        from pgtls.tls.handshake import VERIFY_CALLBACK

        lib.SSL_set_verify(ffi.ssl_ptr(sslobj), mode, VERIFY_CALLBACK if choice.ca_loaded else _NO_CALLBACK)
        return None

    for _, cfg in loaded:
        cfg.context.sni_callback = pick
    return replace(first, sni=hosts)
