"""postgresql.conf syntax: tokens, quoting, errors and includes (texts checked against PostgreSQL 15)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgtls.config.conffile import (
    CONF_FILE_MAX_DEPTH,
    ConfigEntry,
    ConfigError,
    parse_config_file,
    parse_config_text,
    read_config_file,
)


def entries(text: str | bytes, filename: str = "/x/postgresql.conf") -> list[tuple[str, str, int]]:
    result = parse_config_text(text, filename)
    assert result.errors == [], [str(e) for e in result.errors]
    return [(e.name, e.value, e.lineno) for e in result.entries]


def errors(text: str | bytes, filename: str = "/x/postgresql.conf") -> list[str]:
    return [str(e) for e in parse_config_text(text, filename).errors]


# --- syntax ---


@pytest.mark.parametrize(
    "line, value",
    [
        ("port = 5433", "5433"),
        ("port 5433", "5433"),
        ("port=5433", "5433"),
        ("  port\t=\t5433   ", "5433"),
        ("port = 5433 # comment", "5433"),
        ("port = 5433# comment", "5433"),
        ("port = -1", "-1"),
        ("port = +1", "+1"),
        ("port = 0x1F41", "0x1F41"),
        ("timeout = 90s", "90s"),
        ("timeout = 1min", "1min"),
        ("x = 1.5", "1.5"),
        ("x = .5e-3", ".5e-3"),
        ("x = -.", "-."),
        ("x = on", "on"),
        ("x = scram-sha-256", "scram-sha-256"),
        ("x = a/b:c-d.e", "a/b:c-d.e"),
        ("x = a.b.c", "a.b.c"),
        ("x = ''", ""),
        ("x = 'it''s'", "it's"),
        ("x = 'a\\'b'", "a'b"),
        ("x = 'tab\\there'", "tab\there"),
        ("x = '\\b\\f\\n\\r\\t'", "\b\f\n\r\t"),
        ("x = '\\101\\60\\7'", "A0\x07"),
        ("x = '\\q\\\\'", "q\\"),
        ("x = 'ab\\0cd'", "ab"),  # an octal NUL ends the C string
        ("x = '# not a comment'", "# not a comment"),
        ("x = 'caf\u00e9'", "caf\u00e9"),
        ("x = '\\303\\251'", "\u00e9"),  # octal escapes are bytes
        ("x = caf\u00e9", "caf\u00e9"),  # high-bit bytes are letters
    ],
)
def test_value_forms(line: str, value: str) -> None:
    assert entries(line + "\n")[0][1] == value


def test_names_keep_their_spelling_and_may_be_qualified() -> None:
    assert entries("DateStyle = 'iso, mdy'\nmyext.Setting = 1\n") == [
        ("DateStyle", "iso, mdy", 1),
        ("myext.Setting", "1", 2),
    ]


def test_blank_and_comment_lines_and_line_numbers() -> None:
    text = "# header\n\n   \t\n# port = 1\nport = 5433\n\nssl = on\r\nlisten_addresses='*'"
    assert entries(text) == [("port", "5433", 5), ("ssl", "on", 7), ("listen_addresses", "*", 8)]


def test_every_occurrence_is_kept_in_order() -> None:
    assert [v for _, v, _ in entries("port = 1\nport = 2\nPORT = 3\n")] == ["1", "2", "3"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ssl_cert_file = server.crt\n", 'line 1, near token "server.crt"'),  # QUALIFIED_ID is no value
        ("shared_buffers = 1.5GB\n", 'line 1, near token "GB"'),
        ("port = 1e3\n", 'line 1, near token "3"'),
        ("port = 5433 5434\n", 'line 1, near token "5434"'),
        ("= 3\n", 'line 1, near token "="'),
        ("port = 'abc\n", 'line 1, near token "\'"'),
        ("port = 'abc\\'\n", 'line 1, near token "\'"'),
        ("5432 = port\n", 'line 1, near token "5432"'),
        ("port = = 1\n", 'line 1, near token "="'),
        ("port ! 1\n", 'line 1, near token "!"'),
        ("\n\nport =\n", "line 3, near end of line"),
        ("port\n", "line 1, near end of line"),
        ("port =", "line 0, near end of line"),  # PostgreSQL's own off-by-one at EOF
        ("a = 1\nport = # c", "line 1, near end of line"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    assert errors(text) == [f'syntax error in file "/x/postgresql.conf" {message}']


def test_parsing_resumes_after_a_syntax_error() -> None:
    result = parse_config_text("a = 1 2\nb = 2\nc = ! 3\nd 4\n", "/x/p.conf")
    assert [e.name for e in result.entries] == ["b", "d"]
    assert [e.lineno for e in result.errors] == [1, 3]
    err = result.errors[0]
    assert (err.filename, err.lineno, err.sqlstate, err.located) == ("/x/p.conf", 1, "42601", True)


def test_too_many_syntax_errors_abandon_the_file() -> None:
    result = parse_config_text("!\n" * 150 + "port = 1\n", "/x/p.conf")
    assert len(result.errors) == 101
    assert (
        str(result.errors[-1])
        == 'too many syntax errors found, abandoning file "/x/p.conf" in file "/x/p.conf" line 100'
    )
    assert result.entries == []


def test_invalid_utf8_is_reported_with_its_line() -> None:
    assert errors(b"a = 1\nb = 'caf\xe9'\n") == [
        'invalid byte sequence for encoding "UTF8": 0xe9 0x27 0x0a in file "/x/postgresql.conf" line 2'
    ]
    assert errors("b = '\\351'\n") == [
        'invalid byte sequence for encoding "UTF8": 0xe9 in file "/x/postgresql.conf" line 1'
    ]
    assert errors(b"a = 1\x00\n") == [
        'invalid byte sequence for encoding "UTF8": 0x00 in file "/x/postgresql.conf" line 1'
    ]


def test_config_error_str_and_fields() -> None:
    e = ConfigError(
        'invalid value for parameter "port": "abc"', "/x/p.conf", 3, sqlstate="22023", config_file="/x/p.conf"
    )
    assert e.message == 'invalid value for parameter "port": "abc"'
    assert str(e) == 'invalid value for parameter "port": "abc" in file "/x/p.conf" line 3'
    assert e.fatal_message == 'configuration file "/x/p.conf" contains errors'
    assert (
        str(ConfigError('unrecognized configuration parameter "foo"'))
        == 'unrecognized configuration parameter "foo"'
    )


# --- files and includes ---


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_parse_config_file_returns_entries(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 5433\nssl = on\n")
    assert parse_config_file(conf) == [
        ConfigEntry("port", "5433", str(conf), 1),
        ConfigEntry("ssl", "on", str(conf), 2),
    ]


def test_missing_main_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_file(tmp_path / "nope.conf")
    assert (
        str(info.value)
        == f'could not open configuration file "{tmp_path}/nope.conf": No such file or directory'
    )
    assert info.value.sqlstate == "58P01"


def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 1\ninclude 'conf.d/extra.conf'\nssl = on\n")
    extra = write(tmp_path / "conf.d" / "extra.conf", "port = 2\ninclude = 'more.conf'\n")
    more = write(tmp_path / "conf.d" / "more.conf", "port = 3\n")
    got = [(e.name, e.value, e.filename, e.lineno) for e in parse_config_file(conf)]
    assert got == [
        ("port", "1", str(conf), 1),
        ("port", "2", str(extra), 1),
        ("port", "3", str(more), 1),
        ("ssl", "on", str(conf), 3),
    ]


def test_include_directive_names_are_case_insensitive(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "INCLUDE 'b.conf'\n")
    write(tmp_path / "b.conf", "port = 2\n")
    assert [e.value for e in parse_config_file(conf)] == ["2"]


def test_include_absolute_path(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere" / "x.conf", "port = 9\n")
    conf = write(tmp_path / "data" / "postgresql.conf", f"include '{other}'\n")
    assert [e.filename for e in parse_config_file(conf)] == [str(other)]


def test_missing_include_is_an_error_naming_the_directive(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 1\n\ninclude 'nothere.conf'\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    e = info.value
    assert (
        e.message == f'could not open configuration file "{tmp_path}/nothere.conf": No such file or directory'
    )
    assert (e.filename, e.lineno) == (str(conf), 3)


def test_missing_include_if_exists_is_only_logged(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include_if_exists 'nothere.conf'\nport = 1\n")
    log: list[str] = []
    assert [e.value for e in parse_config_file(conf, log=log)] == ["1"]
    assert log == [f'skipping missing configuration file "{tmp_path}/nothere.conf"']


def test_include_if_exists_reads_an_existing_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include_if_exists 'here.conf'\n")
    write(tmp_path / "here.conf", "port = 7\n")
    assert [e.value for e in parse_config_file(conf)] == ["7"]


def test_include_dir_reads_conf_files_in_name_order_skipping_dotfiles(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include_dir 'conf.d'\nport = 99\n")
    d = tmp_path / "conf.d"
    write(d / "20-b.conf", "port = 2\n")
    write(d / "10-a.conf", "port = 1\n")
    write(d / "B.conf", "port = 3\n")  # byte order: digits, then upper case, then lower case
    write(d / ".hidden.conf", "port = 666\n")
    write(d / "notes.txt", "port = 667\n")
    write(d / ".conf", "port = 668\n")
    (d / "sub.conf").mkdir()
    assert [e.value for e in parse_config_file(conf)] == ["1", "2", "3", "99"]


def test_include_dir_empty_and_missing(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include_dir ''\n")
    with pytest.raises(ConfigError, match=r'^empty configuration directory name: ""'):
        parse_config_file(conf)
    conf = write(tmp_path / "postgresql.conf", "include_dir 'nodir'\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    assert (
        info.value.message
        == f'could not open configuration directory "{tmp_path}/nodir": No such file or directory'
    )


def test_empty_include_file_name(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include ' '\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    assert info.value.message == 'empty configuration file name: " "'


def test_direct_recursion(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include 'postgresql.conf'\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    assert info.value.message == f'configuration file recursion in "{conf}"'


def test_indirect_recursion_hits_the_depth_limit(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include 'a.conf'\n")
    write(tmp_path / "a.conf", "include 'b.conf'\n")
    write(tmp_path / "b.conf", "include 'a.conf'\n")
    result = read_config_file(conf)
    assert [e.message for e in result.errors] == [
        'could not open configuration file "a.conf": maximum nesting depth exceeded'
    ]


def test_depth_limit_is_ten(tmp_path: Path) -> None:
    # postgresql.conf is depth 0; files 1..10 are allowed, the 11th is refused.
    def chain(n: int) -> Path:
        for i in range(n):
            write(tmp_path / f"f{i}.conf", f"include 'f{i + 1}.conf'\n")
        write(tmp_path / f"f{n}.conf", "port = 5\n")
        return write(tmp_path / "postgresql.conf", "include 'f1.conf'\n")

    assert [e.value for e in parse_config_file(chain(CONF_FILE_MAX_DEPTH))] == ["5"]
    with pytest.raises(ConfigError, match="maximum nesting depth exceeded"):
        parse_config_file(chain(CONF_FILE_MAX_DEPTH + 1))


def test_include_of_a_directory(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include '.'\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    assert info.value.message == f'input in flex scanner failed at file "{tmp_path}" line 1'


def test_syntax_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "port = 1\ninclude 'b.conf'\n")
    b = write(tmp_path / "b.conf", "\nssl = = on\n")
    with pytest.raises(ConfigError) as info:
        parse_config_file(conf)
    assert str(info.value) == f'syntax error in file "{b}" line 2, near token "="'


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_include(tmp_path: Path) -> None:
    conf = write(tmp_path / "postgresql.conf", "include 'b.conf'\n")
    b = write(tmp_path / "b.conf", "port = 1\n")
    b.chmod(0)
    with pytest.raises(ConfigError, match="Permission denied"):
        parse_config_file(conf)
