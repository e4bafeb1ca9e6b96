"""The GUC table, value parsing, SHOW formatting, start and reload (texts checked against PostgreSQL 15)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pgtls.config.conffile import ConfigError
from pgtls.config.guc import GUCS, log_connections_aspects, lookup, parse_bool
from pgtls.config.settings import Settings, format_value, load_settings, parse_value, reload_settings
from pgtls.errors import PgError
from tests import pgserver, prereq


def guc(name: str):
    d = lookup(name)
    assert d is not None, name
    return d


def show(name: str, raw: str) -> str:
    d = guc(name)
    return format_value(d, parse_value(d, raw))


def pg_error(name: str, raw: str) -> PgError:
    with pytest.raises(PgError) as info:
        parse_value(guc(name), raw)
    return info.value


# --- the table ---

SSL_GUCS = {
    "ssl": (False, "sighup"),
    "ssl_cert_file": ("server.crt", "sighup"),
    "ssl_key_file": ("server.key", "sighup"),
    "ssl_ca_file": ("", "sighup"),
    "ssl_crl_file": ("", "sighup"),
    "ssl_crl_dir": ("", "sighup"),
    "ssl_ciphers": ("HIGH:MEDIUM:+3DES:!aNULL", "sighup"),
    "ssl_prefer_server_ciphers": (True, "sighup"),
    "ssl_groups": ("X25519:prime256v1", "sighup"),
    "ssl_tls13_ciphers": ("", "sighup"),
    "ssl_min_protocol_version": ("TLSv1.2", "sighup"),
    "ssl_max_protocol_version": ("", "sighup"),
    "ssl_dh_params_file": ("", "sighup"),
    "ssl_passphrase_command": ("", "sighup"),
    "ssl_passphrase_command_supports_reload": (False, "sighup"),
    "ssl_library": ("OpenSSL", "internal"),
    "ssl_renegotiation_limit": (0, "user"),
}


@pytest.mark.parametrize("name", sorted(SSL_GUCS))
def test_ssl_gucs_have_postgresqls_defaults_and_contexts(name: str) -> None:
    d = guc(name)
    assert (d.default, d.context) == SSL_GUCS[name]


def test_other_defaults() -> None:
    assert guc("port").default == 5432 and guc("port").context == "postmaster"
    assert guc("listen_addresses").default == "localhost"
    assert guc("unix_socket_directories").default == "/tmp"
    assert guc("unix_socket_permissions").default == 0o777
    t = guc("authentication_timeout")
    assert (t.default, t.unit, t.context, t.min, t.max) == (60, "s", "sighup", 1, 600)
    assert guc("password_encryption").default == "scram-sha-256"
    assert guc("trace_connection_negotiation").context == "postmaster"
    assert guc("server_version").default == "17.0" and guc("server_version_num").default == 170000
    assert guc("ssl_min_protocol_version").enum_values == ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert guc("ssl_max_protocol_version").enum_values[0] == ""
    assert guc("ssl_ciphers").superuser_only


def test_lookup_is_case_insensitive_and_knows_aliases() -> None:
    assert guc("DATESTYLE").name == "DateStyle"
    assert guc("ssl_ecdh_curve") is guc("ssl_groups")
    assert lookup("nope") is None


def test_definitions_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        guc("port").default = 1  # type: ignore[misc]


def test_defaults_are_valid_values() -> None:
    for d in GUCS.values():
        assert parse_value(d, format_value(d, d.default)) == d.default, d.name


# --- values ---


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("on", True),
        ("off", False),
        ("ON", True),
        ("true", True),
        ("t", True),
        ("TR", True),
        ("false", False),
        ("f", False),
        ("yes", True),
        ("y", True),
        ("no", False),
        ("n", False),
        ("1", True),
        ("0", False),
        ("of", False),
        ("o", None),
        ("", None),
        ("truex", None),
        ("onn", None),
        ("2", None),
        (" on", None),
        ("10", None),
    ],
)
def test_parse_bool(raw: str, expected: bool | None) -> None:
    assert parse_bool(raw) is expected


@pytest.mark.parametrize(
    "name, raw, value",
    [
        ("port", "5433", 5433),
        ("port", " 5433 ", 5433),
        ("port", "0x1F41", 8001),
        ("port", "017", 15),
        ("port", "5.4e3", 5400),
        ("port", "5432.5", 5432),
        ("port", "5433.5", 5434),
        ("authentication_timeout", "90", 90),
        ("authentication_timeout", "90s", 90),
        ("authentication_timeout", "90 s", 90),
        ("authentication_timeout", "1.5min", 90),
        ("authentication_timeout", "2min", 120),
        ("authentication_timeout", "1000ms", 1),
        ("authentication_timeout", "1499ms", 1),
        ("authentication_timeout", "1500ms", 2),
        ("statement_timeout", "1d", 86400000),
        ("statement_timeout", "1.5s", 1500),
        ("statement_timeout", "2500us", 2),
        ("statement_timeout", "3500us", 4),
        ("shared_buffers", "128MB", 16384),
        ("shared_buffers", "1GB", 131072),
        ("shared_buffers", "1.5GB", 196608),
        ("work_mem", "4MB", 4096),
        ("work_mem", "1TB", 1073741824),
        ("max_wal_size", "1GB", 1024),
        ("unix_socket_permissions", "0770", 0o770),
        ("vacuum_cost_delay", "0.5ms", 0.5),
        ("vacuum_cost_delay", "2", 2.0),
        ("checkpoint_completion_target", "0.5", 0.5),
        ("random_page_cost", "1.1", 1.1),
        ("ssl_min_protocol_version", "tlsv1.3", "TLSv1.3"),
        ("ssl_max_protocol_version", "", ""),
        ("password_encryption", "MD5", "md5"),
        ("default_transaction_isolation", "SERIALIZABLE", "serializable"),
        ("ssl", "yes", True),
        ("ssl_ciphers", "HIGH", "HIGH"),
        ("DateStyle", "iso, mdy", "ISO, MDY"),
        ("DateStyle", "German,DMY", "German, DMY"),
        ("DateStyle", "SQL", "SQL, MDY"),
        ("DateStyle", "euro", "ISO, DMY"),
        ("client_encoding", "utf-8", "UTF8"),
        ("client_encoding", "unicode", "UTF8"),
        ("log_connections", "on", "on"),
        ("log_connections", "TRUE", "on"),
        ("log_connections", "0", "off"),
        ("log_connections", "all", "all"),
        ("log_connections", "", ""),
        ("log_connections", "receipt, authentication", "receipt,authentication"),
    ],
)
def test_parse_value(name: str, raw: str, value: object) -> None:
    assert parse_value(guc(name), raw) == value


@pytest.mark.parametrize(
    "name, raw, message, hint",
    [
        ("port", "abc", 'invalid value for parameter "port": "abc"', None),
        ("port", "", 'invalid value for parameter "port": ""', None),
        ("port", "5432s", 'invalid value for parameter "port": "5432s"', None),
        ("port", "nan", 'invalid value for parameter "port": "nan"', None),
        ("port", "0", '0 is outside the valid range for parameter "port" (1 .. 65535)', None),
        (
            "port",
            "99999999999",
            'invalid value for parameter "port": "99999999999"',
            "Value exceeds integer range.",
        ),
        ("port", "1e100", 'invalid value for parameter "port": "1e100"', "Value exceeds integer range."),
        (
            "authentication_timeout",
            "700",
            '700 s is outside the valid range for parameter "authentication_timeout" (1 .. 600)',
            None,
        ),
        (
            "authentication_timeout",
            "1h",
            '3600 s is outside the valid range for parameter "authentication_timeout" (1 .. 600)',
            None,
        ),
        (
            "authentication_timeout",
            "1 xs",
            'invalid value for parameter "authentication_timeout": "1 xs"',
            'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".',
        ),
        (
            "authentication_timeout",
            "1 MIN",
            'invalid value for parameter "authentication_timeout": "1 MIN"',
            'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".',
        ),
        (
            "authentication_timeout",
            "1 s x",
            'invalid value for parameter "authentication_timeout": "1 s x"',
            'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".',
        ),
        (
            "shared_buffers",
            "10",
            '10 8kB is outside the valid range for parameter "shared_buffers" (16 .. 1073741823)',
            None,
        ),
        (
            "shared_buffers",
            "1kb",
            'invalid value for parameter "shared_buffers": "1kb"',
            'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".',
        ),
        (
            "checkpoint_completion_target",
            "2",
            '2 is outside the valid range for parameter "checkpoint_completion_target" (0 .. 1)',
            None,
        ),
        (
            "vacuum_cost_delay",
            "1s",
            '1000 ms is outside the valid range for parameter "vacuum_cost_delay" (0 .. 100)',
            None,
        ),
        (
            "ssl_renegotiation_limit",
            "1",
            '1 is outside the valid range for parameter "ssl_renegotiation_limit" (0 .. 0)',
            None,
        ),
        ("ssl", "maybe", 'parameter "ssl" requires a Boolean value', None),
        (
            "ssl_min_protocol_version",
            "",
            'invalid value for parameter "ssl_min_protocol_version": ""',
            "Available values: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.",
        ),
        (
            "ssl_max_protocol_version",
            "x",
            'invalid value for parameter "ssl_max_protocol_version": "x"',
            "Available values: , TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.",
        ),
        (
            "password_encryption",
            "on",
            'invalid value for parameter "password_encryption": "on"',
            "Available values: md5, scram-sha-256.",
        ),
        ("client_encoding", "klingon", 'invalid value for parameter "client_encoding": "klingon"', None),
    ],
)
def test_invalid_values(name: str, raw: str, message: str, hint: str | None) -> None:
    e = pg_error(name, raw)
    assert (e.sqlstate, e.message, e.hint) == ("22023", message, hint)


def test_string_hook_details() -> None:
    assert pg_error("DateStyle", "ISO, fish").detail == 'Unrecognized key word: "fish".'
    assert pg_error("DateStyle", "ISO, SQL").detail == 'Conflicting "datestyle" specifications.'
    assert pg_error("log_connections", "receipt,bogus").detail == 'Invalid option "bogus".'


def test_messages_use_the_name_as_written() -> None:
    with pytest.raises(PgError, match='^parameter "SSL" requires'):
        parse_value(guc("ssl"), "x", name="SSL")


@pytest.mark.parametrize(
    "value, aspects",
    [
        ("on", {"receipt", "authentication", "authorization"}),
        ("off", set()),
        ("", set()),
        ("all", {"receipt", "authentication", "authorization", "setup_durations"}),
        ("receipt,setup_durations", {"receipt", "setup_durations"}),
    ],
)
def test_log_connections_aspects(value: str, aspects: set[str]) -> None:
    assert log_connections_aspects(value) == aspects


# --- SHOW formatting ---


@pytest.mark.parametrize(
    "name, raw, shown",
    [
        ("authentication_timeout", "90s", "90s"),
        ("authentication_timeout", "120s", "2min"),
        ("authentication_timeout", "60", "1min"),
        ("authentication_timeout", "600", "10min"),
        ("statement_timeout", "0", "0"),
        ("statement_timeout", "3600000", "1h"),
        ("statement_timeout", "86400000", "1d"),
        ("statement_timeout", "1500", "1500ms"),
        ("statement_timeout", "90min", "90min"),
        ("log_min_duration_statement", "-1", "-1"),
        ("shared_buffers", "16384", "128MB"),
        ("shared_buffers", "16", "128kB"),
        ("shared_buffers", "17", "136kB"),
        ("shared_buffers", "131072", "1GB"),
        ("work_mem", "4096", "4MB"),
        ("work_mem", "1000", "1000kB"),
        ("max_wal_size", "1024", "1GB"),
        ("max_wal_size", "80", "80MB"),
        ("unix_socket_permissions", "0777", "0777"),
        ("unix_socket_permissions", "0", "0000"),
        ("vacuum_cost_delay", "2", "2ms"),
        ("vacuum_cost_delay", "0.5", "500us"),
        ("vacuum_cost_delay", "0", "0"),
        ("checkpoint_completion_target", "0.9", "0.9"),
        ("random_page_cost", "1e10", "1e+10"),
        ("ssl", "1", "on"),
        ("ssl", "of", "off"),
        ("ssl_min_protocol_version", "tlsv1.2", "TLSv1.2"),
        ("port", "5432", "5432"),
        ("tcp_keepalives_idle", "2h", "7200"),
    ],
)
def test_show_formatting(name: str, raw: str, shown: str) -> None:
    assert show(name, raw) == shown


# --- start ---


def make_data_dir(tmp_path: Path, conf: str) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "postgresql.conf").write_text(conf)
    return data


def test_load_defaults(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "")
    s = load_settings(data)
    assert s["ssl"] is False and s["port"] == 5432 and s["authentication_timeout"] == 60
    assert s.show("authentication_timeout") == "1min" and s.show("ssl") == "off"
    assert s.show("ssl_min_protocol_version") == "TLSv1.2" and s.show("ssl_library") == "OpenSSL"
    assert s.data_dir == data and s.config_file == data / "postgresql.conf"
    assert s["hba_file"] == str(data / "pg_hba.conf") and s["ident_file"] == str(data / "pg_ident.conf")
    assert s["data_directory"] == str(data) and s["config_file"] == str(data / "postgresql.conf")
    assert s.source("port") is None and s.origin("port") == "default"


def test_load_from_file(tmp_path: Path) -> None:
    data = make_data_dir(
        tmp_path,
        "PORT = 5433\nssl = on\nssl = off\nauthentication_timeout = 90\n"
        "ssl_ecdh_curve = 'prime256v1'\nDateStyle = 'iso, dmy'\nmyext.knob = 3\n",
    )
    s = load_settings(data)
    conf = str(data / "postgresql.conf")
    assert s["port"] == 5433 and s.source("Port") == (conf, 1) and s.origin("port") == "file"
    assert s["ssl"] is False and s.source("ssl") == (conf, 3)  # last setting wins
    assert s.show("authentication_timeout") == "90s"
    assert s["ssl_groups"] == "prime256v1" and s["ssl_ecdh_curve"] == "prime256v1"
    assert s.show("datestyle") == "ISO, DMY"
    assert s["myext.knob"] == "3" and "myext.knob" in s and "myext.other" not in s
    assert "myext.knob" not in s.names() and "DateStyle" in s.names()


def test_names_are_sorted_case_insensitively(tmp_path: Path) -> None:
    names = load_settings(make_data_dir(tmp_path, "")).names()
    assert names == sorted(names, key=str.lower) and len(names) == len(GUCS)


def test_only_the_last_duplicate_is_validated(tmp_path: Path) -> None:
    s = load_settings(make_data_dir(tmp_path, "port = abc\nport = 5434\n"))
    assert s["port"] == 5434


def test_include_files_take_part(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "include_dir 'conf.d'\nport = 1\n")
    (data / "conf.d").mkdir()
    (data / "conf.d" / "ssl.conf").write_text("ssl = on\nport = 2\n")
    s = load_settings(data)
    assert s["ssl"] is True and s["port"] == 1
    assert s.source("ssl") == (str(data / "conf.d" / "ssl.conf"), 1)


def test_auto_conf_is_read_after_the_main_file(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "port = 1\n")
    (data / "postgresql.auto.conf").write_text("port = 2\n")
    assert load_settings(data)["port"] == 2


def test_explicit_config_file(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "port = 1\n")
    other = tmp_path / "other.conf"
    other.write_text("port = 3\n")
    assert load_settings(data, config_file=other)["port"] == 3
    assert load_settings(data, {"config_file": str(other)})["port"] == 3


def test_data_directory_in_the_file_moves_the_data_dir(tmp_path: Path) -> None:
    real = tmp_path / "pgdata"
    real.mkdir()
    data = make_data_dir(tmp_path, f"data_directory = '{real}'\nssl_cert_file = 'x.crt'\n")
    s = load_settings(data)
    assert s.data_dir == real and s["data_directory"] == str(real)
    assert s.path("ssl_cert_file") == real / "x.crt"
    assert s["hba_file"] == str(data / "pg_hba.conf")  # hba_file defaults to the config directory


def test_paths(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl_key_file = '/etc/ssl/k.pem'\n")
    s = load_settings(data)
    assert s.path("ssl_cert_file") == data / "server.crt"
    assert s.path("ssl_key_file") == Path("/etc/ssl/k.pem")
    assert s.path("ssl_ca_file") is None


@pytest.mark.parametrize(
    "conf, message",
    [
        ("\n\nfoo = 1\n", 'unrecognized configuration parameter "foo" in file "{conf}" line 3'),
        ("port = abc\n", 'invalid value for parameter "port": "abc" in file "{conf}" line 1'),
        ("ssl = maybe\n", 'parameter "ssl" requires a Boolean value in file "{conf}" line 1'),
        ("server_version = '1'\n", 'parameter "server_version" cannot be changed in file "{conf}" line 1'),
        ("port = 'abc\n", 'syntax error in file "{conf}" line 1, near token "\'"'),
        (
            "include 'x.conf'\n",
            'could not open configuration file "{dir}/x.conf": No such file or directory in file "{conf}" line 1',
        ),
    ],
)
def test_start_errors_are_fatal(tmp_path: Path, conf: str, message: str) -> None:
    data = make_data_dir(tmp_path, conf)
    path = data / "postgresql.conf"
    with pytest.raises(ConfigError) as info:
        load_settings(data)
    assert str(info.value) == message.format(conf=path, dir=data)
    assert info.value.fatal_message == f'configuration file "{path}" contains errors'


def test_bad_enum_value_carries_the_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(make_data_dir(tmp_path, "ssl_min_protocol_version = 'TLSv9'\n"))
    e = info.value
    assert e.message == 'invalid value for parameter "ssl_min_protocol_version": "TLSv9"'
    assert e.hint == "Available values: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3." and e.sqlstate == "22023"
    assert e.lineno == 1


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^could not open configuration file .*No such file or directory$"):
        load_settings(tmp_path)


def test_overrides_beat_the_file(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "port = 5433\nssl = on\n")
    s = load_settings(data, {"port": "6000", "ssl-prefer-server-ciphers": "off"})
    assert s["port"] == 6000 and s.origin("port") == "override" and s.source("port") is None
    assert s["ssl"] is True and s["ssl_prefer_server_ciphers"] is False


def test_override_errors(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_settings(data, {"foo": "1"})
    assert (str(info.value), info.value.sqlstate) == ('unrecognized configuration parameter "foo"', "42704")
    assert info.value.fatal_message is None
    with pytest.raises(ConfigError, match='^invalid value for parameter "port": "abc"$'):
        load_settings(data, {"port": "abc"})
    with pytest.raises(ConfigError, match='^parameter "ssl_library" cannot be changed$'):
        load_settings(data, {"ssl_library": "x"})


def test_a_bad_file_value_is_fatal_even_when_overridden(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="requires a Boolean value"):
        load_settings(make_data_dir(tmp_path, "ssl = maybe\n"), {"ssl": "on"})


# --- the snapshot ---


def test_settings_is_immutable(tmp_path: Path) -> None:
    s = load_settings(make_data_dir(tmp_path, ""))
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.data_dir = tmp_path  # type: ignore[misc]
    with pytest.raises(TypeError):
        s._values["port"] = 1  # type: ignore[index]


def test_unknown_names(tmp_path: Path) -> None:
    s = load_settings(make_data_dir(tmp_path, ""))
    for call in (s.show, s.__getitem__, s.source):
        with pytest.raises(PgError) as info:
            call("nope")
        assert (info.value.sqlstate, info.value.message) == (
            "42704",
            'unrecognized configuration parameter "nope"',
        )
    assert "nope" not in s and "PORT" in s


def test_with_values(tmp_path: Path) -> None:
    s = load_settings(make_data_dir(tmp_path, ""))
    t = s.with_values(DateStyle="sql, dmy", statement_timeout="2s", ssl=True, work_mem=1024)
    assert t.show("DateStyle") == "SQL, DMY" and t["statement_timeout"] == 2000 and t["ssl"] is True
    assert t.show("work_mem") == "1MB" and s["ssl"] is False
    with pytest.raises(PgError, match="outside the valid range"):
        s.with_values(port=0)
    with pytest.raises(PgError, match="requires a Boolean value"):
        s.with_values(ssl="maybe")
    with pytest.raises(PgError, match="unrecognized configuration parameter"):
        s.with_values(nope="1")


# --- reload ---


def reload(
    data: Path, s: Settings, conf: str, overrides: dict[str, str] | None = None
) -> tuple[Settings, list[str]]:
    (data / "postgresql.conf").write_text(conf)
    return reload_settings(s, data, overrides or {})


def test_reload_applies_and_logs_changes(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl = off\nauthentication_timeout = 60\n")
    s = load_settings(data)
    new, log = reload(data, s, "ssl = on\nauthentication_timeout = 90s\nlog_hostname = off\n")
    assert log == ['parameter "ssl" changed to "on"', 'parameter "authentication_timeout" changed to "90s"']
    assert new["ssl"] is True and new["authentication_timeout"] == 90 and s["ssl"] is False


def test_reload_keeps_a_changed_postmaster_parameter(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "port = 5432\nssl = off\n")
    s = load_settings(data)
    new, log = reload(data, s, "port = 5433\nssl = on\n")
    conf = data / "postgresql.conf"
    assert log == [
        'parameter "port" cannot be changed without restarting the server',
        'parameter "ssl" changed to "on"',
        f'configuration file "{conf}" contains errors; unaffected changes were applied',
    ]
    assert new["port"] == 5432 and new["ssl"] is True


def test_reload_same_postmaster_value_is_quiet(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "port = 5433\n")
    s = load_settings(data)
    assert reload(data, s, "port = '5433'  # same value\n")[1] == []


def test_reload_bad_value_keeps_the_old_one(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl_min_protocol_version = 'TLSv1.3'\n")
    s = load_settings(data)
    new, log = reload(data, s, "ssl_min_protocol_version = 'TLSv9'\nlog_hostname = on\n")
    assert log == [
        'invalid value for parameter "ssl_min_protocol_version": "TLSv9"',
        'parameter "log_hostname" changed to "on"',
        f'configuration file "{data / "postgresql.conf"}" contains errors; unaffected changes were applied',
    ]
    assert new["ssl_min_protocol_version"] == "TLSv1.3" and new["log_hostname"] is True


def test_reload_unknown_name_applies_nothing(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl = off\n")
    s = load_settings(data)
    new, log = reload(data, s, "ssl = on\nzzz = 1\n")
    conf = data / "postgresql.conf"
    assert log == [
        f'unrecognized configuration parameter "zzz" in file "{conf}" line 2',
        f'configuration file "{conf}" contains errors; no changes were applied',
    ]
    assert new is s


def test_reload_syntax_error_applies_nothing(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl = off\n")
    (data / "b.conf").write_text("x = = 1\n")
    s = load_settings(data)
    new, log = reload(data, s, "ssl = on\ninclude 'b.conf'\n")
    assert log == [
        f'syntax error in file "{data / "b.conf"}" line 1, near token "="',
        f'configuration file "{data / "postgresql.conf"}" contains errors; no changes were applied',
    ]
    assert new is s


def test_reload_missing_file(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "")
    s = load_settings(data)
    (data / "postgresql.conf").unlink()
    new, log = reload_settings(s, data)
    assert new is s and log[-1].endswith("contains errors; no changes were applied")
    assert log[0].startswith("could not open configuration file")


def test_reload_missing_include_if_exists_is_logged(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "")
    s = load_settings(data)
    assert reload(data, s, "include_if_exists 'x.conf'\n")[1] == [
        f'skipping missing configuration file "{data / "x.conf"}"'
    ]


def test_reload_removed_settings(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl = on\nport = 5432\n")
    s = load_settings(data)
    new, log = reload(data, s, "")
    assert log == [
        'parameter "port" cannot be changed without restarting the server',
        'parameter "ssl" removed from configuration file, reset to default',
        f'configuration file "{data / "postgresql.conf"}" contains errors; unaffected changes were applied',
    ]
    assert new["ssl"] is False and new.source("ssl") is None and new["port"] == 5432


def test_reload_with_overrides(tmp_path: Path) -> None:
    # PostgreSQL complains about a -c'd postmaster parameter whose file value differs, at every reload.
    data = make_data_dir(tmp_path, "max_connections = 100\nauthentication_timeout = 60\n")
    over = {"max_connections": "50", "authentication_timeout": "30"}
    s = load_settings(data, over)
    new, log = reload(
        data, s, "max_connections = 100\nauthentication_timeout = 45\nlog_hostname = on\n", over
    )
    assert log == [
        'parameter "max_connections" cannot be changed without restarting the server',
        'parameter "log_hostname" changed to "on"',
        f'configuration file "{data / "postgresql.conf"}" contains errors; unaffected changes were applied',
    ]
    assert new["max_connections"] == 50 and new["authentication_timeout"] == 30


def test_reload_unchanged_is_silent_and_updates_sources(tmp_path: Path) -> None:
    data = make_data_dir(tmp_path, "ssl = on\n")
    s = load_settings(data)
    new, log = reload(data, s, "\n\nssl = true\n")
    assert log == [] and new.source("ssl") == (str(data / "postgresql.conf"), 3)


# --- differential: SHOW on a real PostgreSQL 15 ---

SHOW_CASES = [
    ("authentication_timeout", "90s"),
    ("authentication_timeout", "120s"),
    ("authentication_timeout", "60"),
    ("statement_timeout", "1500"),
    ("statement_timeout", "3600000"),
    ("statement_timeout", "90min"),
    ("shared_buffers", "'1.5GB'"),
    ("shared_buffers", "17"),
    ("work_mem", "'1000kB'"),
    ("max_wal_size", "2048"),
    ("unix_socket_permissions", "0770"),
    ("vacuum_cost_delay", "0.5"),
    ("checkpoint_completion_target", "0.5"),
    ("ssl_min_protocol_version", "'tlsv1.3'"),
    ("ssl_max_protocol_version", "''"),
    ("ssl_prefer_server_ciphers", "of"),
    ("DateStyle", "'sql, dmy'"),
    ("password_encryption", "MD5"),
    ("log_min_duration_statement", "-1"),
    ("tcp_keepalives_idle", "'2h'"),
]


@pytest.mark.pg
@pytest.mark.skipif(not pgserver.have_postgres() and not prereq.required(), reason="no PostgreSQL binary")
def test_show_matches_postgresql(tmp_path: Path) -> None:
    conf = "".join(f"{name} = {raw}\n" for name, raw in SHOW_CASES)
    with pgserver.RealPostgres() as pg:
        with open(pg.datadir / "postgresql.conf", "a") as f:
            f.write(conf)
        pg.restart()
        query = "; ".join(f"SHOW {name}" for name, _ in SHOW_CASES)
        # over TCP: on a Unix socket the tcp_keepalives_* settings show 0
        out = pg.psql("-A", "-t", "-c", query, host="127.0.0.1").splitlines()
        # Unit defaults must also agree.
        defaults = [
            "ssl_ciphers",
            "ssl_cert_file",
            "ssl_renegotiation_limit",
            "superuser_reserved_connections",
            "password_encryption",
            "max_identifier_length",
        ]
        out_defaults = pg.psql(
            "-A", "-t", "-c", "; ".join(f"SHOW {n}" for n in defaults), host="127.0.0.1"
        ).splitlines()
    data = make_data_dir(tmp_path, conf)
    s = load_settings(data)
    assert [s.show(name) for name, _ in SHOW_CASES] == out
    assert [s.show(n) for n in defaults] == out_defaults
