"""Property: any bytes as postgresql.conf give entries or ConfigError, never another exception or a hang."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pgtls.config.conffile import ConfigError, parse_config_file, parse_config_text
from pgtls.config.settings import load_settings, reload_settings

# Fragments that steer random text towards the interesting corners of the grammar.
_PIECES = st.sampled_from(
    [
        "port",
        "ssl",
        "=",
        " ",
        "\t",
        "\n",
        "\r\n",
        "#",
        "'",
        "''",
        "\\",
        "\\'",
        "\\n",
        "\\101",
        "\\0",
        "0x1F",
        "1.5",
        "-",
        "+",
        ".",
        "e",
        "GB",
        "min",
        "a.b",
        "a.b.c",
        "include",
        "include_if_exists",
        "include_dir",
        "'postgresql.conf'",
        "'nothere.conf'",
        "'.'",
        "''",
        "server.crt",
        "on",
        "\u00e9",
        "\x00",
        "\xff",
        "authentication_timeout",
        "ssl_min_protocol_version",
        "TLSv1.3",
        "DateStyle",
        "log_connections",
    ]
)
_TEXT = st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=40).map("".join))
_BYTES = st.one_of(st.binary(max_size=300), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))

_SLOW = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SLOW
@given(_BYTES)
def test_parse_text_never_raises(data: bytes) -> None:
    result = parse_config_text(data, "/nonexistent-dir/postgresql.conf")
    for err in result.errors:
        assert isinstance(err, ConfigError) and str(err)
    for entry in result.entries:
        assert isinstance(entry.value, str) and "\x00" not in entry.value


@_SLOW
@given(_BYTES)
def test_parse_file_raises_only_config_error(tmp_path: Path, data: bytes) -> None:
    conf = tmp_path / "postgresql.conf"
    conf.write_bytes(data)
    try:
        parse_config_file(conf)
    except ConfigError:
        pass


@_SLOW
@given(_BYTES)
def test_load_and_reload_raise_only_config_error(tmp_path: Path, data: bytes) -> None:
    conf = tmp_path / "postgresql.conf"
    conf.write_bytes(b"")
    base = load_settings(tmp_path)
    conf.write_bytes(data)
    try:
        load_settings(tmp_path)
    except ConfigError:
        pass
    new, log = reload_settings(base, tmp_path)
    assert all(isinstance(line, str) for line in log)
    assert not any(line.startswith("could not reload configuration") for line in log)  # no internal error


def test_quadratic_input_stays_fast() -> None:
    # Many backslash-escaped quotes on one line: each unterminated-string retry must not rescan the line.
    line = "x = '" + "\\'" * 200_000 + "\n"
    result = parse_config_text(line, "/x/p.conf")
    assert len(result.errors) == 1
