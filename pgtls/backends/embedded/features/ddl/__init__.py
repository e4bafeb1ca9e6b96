"""DDL forms PostgreSQL has and DuckDB lacks, one module each (docs/architecture.md).

* planner.py: :func:`plan`, what the session runs instead of a CREATE / ALTER TABLE / TRUNCATE statement
  (the session's DDL hook), dispatching to identity.py (``serial`` and identity columns of CREATE TABLE),
  alter.py (ALTER TABLE, in place or by rebuilding the table; actions.py and additions.py apply its actions
  to model.py's :class:`~.model.Table`) and truncate.py;
* foreign_keys.py: the foreign keys pgtls keeps (features/foreignkeys.py) as tables and columns are created,
  renamed and dropped; features/kept_keys.py calls it around each statement;
* create_index.py and :func:`~.foreign_keys.strip_kept_foreign_keys`: text rewrites that
  rewrite/pipeline.py applies;
* parsing.py: reading DDL text.

The names other packages use are imported here.
"""

from pgtls.backends.embedded.features.ddl.create_index import rewrite_create_index
from pgtls.backends.embedded.features.ddl.foreign_keys import (
    drop_table_plan,
    keeps_keys,
    kept_keys_after_create,
    strip_kept_foreign_keys,
)
from pgtls.backends.embedded.features.ddl.model import NOOP
from pgtls.backends.embedded.features.ddl.planner import plan

__all__ = [
    "NOOP",
    "drop_table_plan",
    "keeps_keys",
    "kept_keys_after_create",
    "plan",
    "rewrite_create_index",
    "strip_kept_foreign_keys",
]
