"""jsonb, which DuckDB lacks: DuckDB has one JSON type for json and jsonb, so pgtls keeps the difference.

Importing the package (any module of it) registers what the engine calls (engine/hooks.py): PostgreSQL's
column names for rewritten calls (functions.py), json or jsonb result columns (result_types.py), COMMENT ON
COLUMN keeping the jsonb mark and the marks set after DDL (ddl_marks.py).  Its modules are listed in
operators.py's docstring.
"""

from pgtls.backends.embedded.engine.hooks import HOOKS
from pgtls.backends.embedded.jsonb.ddl_marks import after_ddl, comment_hook
from pgtls.backends.embedded.jsonb.functions import column_name_hook
from pgtls.backends.embedded.jsonb.result_types import result_columns_hook

HOOKS.column_names.append(column_name_hook)
HOOKS.result_columns.append(result_columns_hook)
HOOKS.comment_statements.append(comment_hook)
HOOKS.after_ddl.append(after_ddl)
