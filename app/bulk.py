"""Many rows written by one statement, instead of one statement per row.

An executemany (``connection.execute(statement, [row, row, …])``) runs its statement once
per row: on SQLite each run releases Python's interpreter lock and waits to take it back
from the threads that hold it meanwhile (the dispatcher's senders), and on PostgreSQL
each run fires the statement triggers again.

- ``insert_rows``: an INSERT … RETURNING, which SQLAlchemy sends as multi-row INSERTs
  ("insertmanyvalues", a few hundred rows a statement), compiled once;
- ``insert_values``: the same as one prepared multi-row ``INSERT … VALUES (…), (…)``
  whose text is made here and kept per shape, for a few rows written while a lock is held
  (the intake's write transaction): SQLAlchemy's own multi-row INSERT costs more Python
  than SQLite takes to run it; ``PreparedInsert`` makes its values ready before the lock;
- ``update_rows``: ``WITH given(…) AS (VALUES …) UPDATE … FROM given`` (SQLite 3.33+,
  PostgreSQL). Its text is made here and kept per shape (table, columns, number of rows):
  SQLAlchemy would compile a VALUES construct anew at every call.
"""

from sqlalchemy import insert

# Rows per UPDATE statement: SQLite allows 32,766 bound values in one statement (3.32+),
# and these tables' rows have at most a dozen columns.
CHUNK = 500

_texts = {}  # statement texts and column binders, kept per shape


def _same(given):
    return given


def binders(dialect, table, names):
    """{column name: a function that turns a Python value into what the driver takes}."""
    key = ("binders", dialect.name, table.name, tuple(names))
    found = _texts.get(key)
    if found is None:
        found = _texts[key] = {name: table.c[name].type._cached_bind_processor(dialect) or _same for name in names}
    return found


def _marks(dialect):
    """(quote an identifier, the driver's parameter mark)."""
    return dialect.identifier_preparer.quote, "?" if dialect.paramstyle == "qmark" else "%s"


def insert_rows(connection, table, rows):
    """INSERT ``rows`` (dicts) into ``table`` as multi-row statements."""
    if rows:
        connection.execute(insert(table).returning(*table.primary_key.columns), rows).all()


def insert_values(connection, table, rows, returning=()):
    """INSERT ``rows`` (dicts with the same keys) into ``table``, at most CHUNK a
    statement; returns the ``returning`` columns' values of the new rows (in no promised
    order). Columns left out get their Python-side default, as in an ORM or Core INSERT."""
    return PreparedInsert(connection.dialect, table, rows, returning).run(connection)


class PreparedInsert:
    """``insert_values``' statements made ready before they run: the text and the
    driver's values of every row, so that what runs under a lock is the INSERT alone.
    ``later`` names columns whose values are known only then (the id of a row the same
    transaction writes first): ``run(connection, column=value)`` gives one value for
    every row or a list of one per row."""

    def __init__(self, dialect, table, rows, returning=(), later=()):
        self.returning, self.chunks = tuple(returning), []
        if not rows:
            return
        names = list(dict.fromkeys([*rows[0], *later]))
        defaults = {}
        for column in table.columns:
            default = column.default
            if column.name in names or default is None or not (default.is_scalar or default.is_callable):
                continue
            defaults[column.name] = default.arg if default.is_scalar else default.arg(None)
        columns = [*names, *defaults]
        self.bind = binders(dialect, table, columns)
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            shape = ("insert", dialect.name, table.name, tuple(columns), len(chunk), self.returning)
            text = _texts.get(shape)
            if text is None:
                text = _texts[shape] = _insert_text(dialect, table, columns, len(chunk), self.returning)
            values = [
                self.bind[name](row[name] if name in row else defaults.get(name)) for row in chunk for name in columns
            ]
            # Where each ``later`` column's value goes in ``values``, row by row.
            slots = {name: [row * len(columns) + columns.index(name) for row in range(len(chunk))] for name in later}
            self.chunks.append((text, values, start, slots))

    def run(self, connection, **later):
        found = []
        for text, values, start, slots in self.chunks:
            for name, positions in slots.items():
                given, bind = later[name], self.bind[name]
                for row, position in enumerate(positions):
                    values[position] = bind(given[start + row] if isinstance(given, list) else given)
            result = connection.exec_driver_sql(text, tuple(values))
            if self.returning:
                found.extend(result.all())
        return found


def _insert_text(dialect, table, columns, count, returning):
    quote, mark = _marks(dialect)
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    text = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in columns)}) VALUES {', '.join([row] * count)}"
    if returning:
        text += " RETURNING " + ", ".join(quote(n) for n in returning)
    return text


def update_rows(connection, table, keys, rows, *, where=None, **same):
    """UPDATE the rows of ``table`` matched by ``keys`` (column names), each with its own
    values: ``rows`` are dicts with the same keys, the key columns' values and the new
    values of the others; ``same``: values set on every matched row; ``where``: {column:
    value} the rows must also have (else they are left alone). Column ``onupdate``
    defaults apply as in any UPDATE. One statement per chunk of rows; returns nothing."""
    if not rows:
        return
    dialect = connection.dialect
    where = where or {}
    same = dict(same)
    for column in table.columns:
        if column.onupdate is not None and column.name not in rows[0] and column.name not in same:
            default = column.onupdate
            same[column.name] = default.arg if default.is_scalar else default.arg(None)
    names = list(rows[0])
    bind = binders(dialect, table, [*names, *same, *where])
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        shape = (dialect.name, table.name, tuple(keys), tuple(names), len(chunk), tuple(same), tuple(where))
        text = _texts.get(shape)
        if text is None:
            text = _texts[shape] = _update_text(dialect, table, keys, names, len(chunk), same, where)
        params = [bind[name](row[name]) for row in chunk for name in names]
        params += [bind[name](given) for name, given in [*same.items(), *where.items()]]
        connection.exec_driver_sql(text, tuple(params))


def _update_text(dialect, table, keys, names, count, same, where):
    quote, mark = _marks(dialect)
    postgresql = dialect.name == "postgresql"

    def given(name):
        # PostgreSQL types a VALUES column that is NULL in every row as text.
        column = f"given.{quote(name)}"
        return f"CAST({column} AS {table.c[name].type.compile(dialect)})" if postgresql else column

    row = "(" + ", ".join([mark] * len(names)) + ")"
    target = quote(table.name)
    sets = [f"{quote(n)} = {given(n)}" for n in names if n not in keys] + [f"{quote(n)} = {mark}" for n in same]
    matches = [f"{target}.{quote(n)} = given.{quote(n)}" for n in keys] + [
        f"{target}.{quote(n)} = {mark}" for n in where
    ]
    return (
        f"WITH given ({', '.join(quote(n) for n in names)}) AS (VALUES {', '.join([row] * count)}) "
        f"UPDATE {target} SET {', '.join(sets)} FROM given WHERE {' AND '.join(matches)}"
    )
