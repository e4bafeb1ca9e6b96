"""An unmodified application stack on the embedded backend: SQLAlchemy 2 (Core, ORM, reflection) over
psycopg 3 with sslmode=verify-full, against pgtls and, for the same script, PostgreSQL 15.

What it exercises that the driver scenario does not: the dialect's first-connect queries (version,
current_schema, standard_conforming_strings, transaction isolation, psycopg's hstore probe), ``has_table``
and ``get_table_names`` through pg_catalog, ``metadata.create_all`` with SERIAL/IDENTITY keys and foreign keys, INSERT ...
RETURNING, ORM relationships with lazy and selectin loading, ``session.begin_nested()`` (a SAVEPOINT),
rollback, and executemany.  Reflection of keys, constraints and indexes (``inspect()``'s get_pk_constraint,
get_unique_constraints, get_indexes, get_foreign_keys, get_check_constraints) gives
PostgreSQL's answers for a schema with every kind of them (catalog/constraints.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tests import prereq

sqlalchemy = prereq.importorskip("sqlalchemy")

from sqlalchemy import ForeignKey, String, create_engine, func, inspect, select, text  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload  # noqa: E402

from tests.constraint_schema import (  # noqa: E402
    MARKED_FKS,
    PG_FKS,
    SCHEMA,
    TABLES,
    USER_COMMENT,
    fk_mark,
)
from tests.pgtlsserver import PgtlsServer, tls_server  # noqa: E402


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    joined: Mapped[datetime]
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    price: Mapped[Decimal] = mapped_column(sqlalchemy.Numeric(10, 2))
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="books")


def run_app(url: str) -> dict[str, object]:
    """The application: everything it saw, to compare between servers."""
    engine = create_engine(url, pool_size=2)
    seen: dict[str, object] = {}
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        seen["tables"] = sorted(inspect(engine).get_table_names())
        # Column reflection (Alembic's autogenerate, pandas): names, nullability, autoincrement and the
        # type's kind.  (Defaults and varchar lengths differ: DuckDB keeps no length and prints its own
        # default expressions.)
        seen["columns"] = {
            t: [(c["name"], c["nullable"], c["autoincrement"], type(c["type"]).__name__.replace("VARCHAR", "TEXT"))
                for c in inspect(engine).get_columns(t)]
            for t in ("author", "book")
        }  # fmt: skip
        with Session(engine) as s:
            ada = Author(name="Ada", joined=datetime(1843, 7, 1, tzinfo=UTC).replace(tzinfo=None))
            ada.books = [
                Book(title="Notes", price=Decimal("12.50")),
                Book(title="Letters", price=Decimal("3.00")),
            ]
            s.add(ada)
            s.commit()
            seen["ids"] = [b.id for b in ada.books]
            with s.begin_nested():  # SAVEPOINT, then RELEASE
                s.add(Author(name="Grace", joined=datetime(1906, 12, 9)))
            try:
                with s.begin_nested():  # SAVEPOINT, the flush fails, ROLLBACK TO SAVEPOINT
                    s.add(Author(name="Ada", joined=datetime(2000, 1, 1)))
                    s.flush()
            except IntegrityError as e:
                seen["duplicate"] = e.orig.sqlstate if e.orig is not None else None
            s.commit()
        with Session(engine) as s:
            authors = s.scalars(
                select(Author).options(selectinload(Author.books)).order_by(Author.name)
            ).all()
            seen["authors"] = [(a.name, [(b.title, str(b.price)) for b in a.books]) for a in authors]
            seen["total"] = str(s.scalar(select(func.sum(Book.price))))
            lazy = s.scalars(select(Book).where(Book.title == "Letters")).one()
            seen["lazy_author"] = lazy.author.name
            lazy.price = Decimal("4.25")
            s.commit()
        with engine.begin() as conn:
            conn.execute(
                Book.__table__.insert(), [{"title": f"t{i}", "price": i, "author_id": 1} for i in range(20)]
            )
            seen["count"] = conn.scalar(text("SELECT count(*) FROM book"))
            seen["params"] = conn.execute(
                text("SELECT CAST(:a AS int) + 1, CAST(:b AS text)"), {"a": 41, "b": "x"}
            ).all()
        with engine.connect() as conn:
            trans = conn.begin()
            conn.execute(text("DELETE FROM book"))
            trans.rollback()
            seen["after_rollback"] = conn.scalar(text("SELECT count(*) FROM book"))
    finally:
        engine.dispose()
    return seen


def test_sqlalchemy_app_sees_the_same_as_on_postgres(certs, client_home, realpg, monkeypatch):
    monkeypatch.setenv("HOME", str(client_home))
    s = tls_server(certs, backend="duckdb")
    try:
        root = certs.path("root_ca.crt")
        ours = run_app(f"postgresql+psycopg://postgres@127.0.0.1:{s.port}/postgres"
                       f"?sslmode=verify-full&sslrootcert={root}")  # fmt: skip
    finally:
        print(f"--- pgtls server log ---\n{s.full_log()[-4000:]}")
        s.cleanup()
    theirs = run_app(f"postgresql+psycopg://postgres@127.0.0.1:{realpg.port}/postgres")
    assert ours["authors"] == [("Ada", [("Notes", "12.50"), ("Letters", "3.00")]), ("Grace", [])]
    assert ours["duplicate"] == "23505"
    assert ours == theirs


REFLECTIONS = (
    "get_pk_constraint",
    "get_unique_constraints",
    "get_indexes",
    "get_foreign_keys",
    "get_check_constraints",
)


def reflect(url: str, ddl: list[str]) -> dict[str, object]:
    """Run ``ddl``, then what the inspector says of each table."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for sql in ddl:
                conn.exec_driver_sql(sql)
        insp = inspect(engine)
        return {f"{t}.{m}": getattr(insp, m)(t) for t in TABLES for m in REFLECTIONS}
    finally:
        engine.dispose()


def test_constraint_and_index_reflection_as_on_postgres(realpg):
    """Composite and single primary keys, unique constraints, plain, unique, expression and multi-column
    indexes, CHECK constraints, DuckDB's own foreign keys, and foreign keys pgtls keeps in the child table's
    comment (DEFERRABLE, ON DELETE CASCADE / SET NULL: real ones on PostgreSQL)."""
    ours = PgtlsServer().init(backend="duckdb")
    ours.start()
    mark = fk_mark(MARKED_FKS, USER_COMMENT).replace("'", "''")
    comment = USER_COMMENT.replace("'", "''")
    try:
        seen = reflect(f"postgresql+psycopg://postgres@127.0.0.1:{ours.port}/postgres",
                       [*SCHEMA, f"COMMENT ON TABLE r_marked IS '{mark}'"])  # fmt: skip
    finally:
        print(f"--- pgtls server log ---\n{ours.full_log()[-4000:]}")
        ours.cleanup()
    expected = reflect(f"postgresql+psycopg://postgres@127.0.0.1:{realpg.port}/postgres",
                       [*SCHEMA, *PG_FKS, f"COMMENT ON TABLE r_marked IS '{comment}'"])  # fmt: skip
    assert seen["r_parent.get_pk_constraint"]["constrained_columns"] == ["a", "b"]
    assert [fk["options"] for fk in seen["r_marked.get_foreign_keys"]] == [
        {"ondelete": "CASCADE", "deferrable": True, "initially": "DEFERRED"},
        {"ondelete": "SET NULL"},
    ]
    assert seen == expected
