"""postgresql.conf: the lexer and line parser (pgtls.config.conffile) and the settings built from them
(pgtls.config.settings: value parsing, units, ranges, enums, postgresql.auto.conf).

Input: the bytes of postgresql.conf, written to a scratch data directory and loaded with ``load_settings``
as the server does at start; also parsed as text.  ``include*`` inputs that could leave the scratch
directory are skipped.

Expected: ``ConfigError`` (PostgreSQL's message, file and line).  A bug: any other exception, an error
without a message, ``load_settings`` accepting a file the parser refused, or an integer/bool/enum setting
whose SHOW text does not read back as the same value.
"""

from __future__ import annotations

from tests.fuzz.common import instrumented, main, may_escape, scratch

with instrumented(__name__):
    from pgtls.config.conffile import ConfigError, parse_config_text
    from pgtls.config.settings import load_settings, parse_value


def test_one_input(data: bytes) -> None:
    if b"include" in data.lower() and may_escape(data):
        return
    data_dir = scratch()
    conf = data_dir / "postgresql.conf"
    conf.write_bytes(data)
    result = parse_config_text(data, str(conf))
    for err in result.errors:
        assert isinstance(err, ConfigError) and err.message, f"bad error {err!r}"
        str(err)
    try:
        settings = load_settings(data_dir)
    except ConfigError as e:
        assert e.message, "ConfigError without a message"
        str(e)
        return
    assert result.ok, "load_settings accepted a file the parser refused"
    for name in settings.names():
        shown = settings.show(name)
        gucdef = settings.definition(name)
        if settings.origin(name) == "file" and gucdef.type in ("bool", "int", "enum"):
            # What SHOW prints must read back as the same value (units, octal, enum spelling).
            assert parse_value(gucdef, shown) == settings[name], f"{name}: SHOW {shown!r} does not read back"


if __name__ == "__main__":
    main(test_one_input)
