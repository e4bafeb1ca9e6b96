"""PostgreSQL's limits that pgtls keeps too, each defined once here (the C names and headers in the comments;
``tests/unit/test_import_layers.py`` puts this module below everything that uses it)."""

NAMEDATALEN = (
    64  # pg_config_manual.h: names (roles, databases, channels, pg_stat_ssl's DNs) are at most 63 bytes
)
MAX_STARTUP_PACKET_LENGTH = 10000  # pqcomm.h: a startup packet's payload after its length word
PQ_LARGE_MESSAGE_LIMIT = 1 << 30  # pqcomm.h: the longest Query, FunctionCall, Bind, Parse or CopyData
PQ_SMALL_MESSAGE_LIMIT = 10000  # pqcomm.h: the longest message of every other type
