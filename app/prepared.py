"""Core statements run as the driver's SQL text, expanded once per shape.

Running a Core statement costs SQLAlchemy's cache lookup, the construction of its
parameters and, for a list parameter (``IN``), the expansion of its text, at every run:
about 100 µs here, four times what SQLite takes to run the intake's snapshot read. A
``Prepared`` statement does that work once per dialect and lengths of its list
parameters, keeps the text and the order of its parameters, and runs as one
``exec_driver_sql``: the engine's events still see every statement.

``bind`` turns parameters into what the driver takes before anything runs (the intake
does it before it takes the write lock); ``run`` executes what ``bind`` made; rows come
back with the statement's result types applied (``rows``), as a Core execution gives
them.
"""

import re
from contextlib import nullcontext
from dataclasses import dataclass

from psycopg import RawCursor
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True)
class Bound:
    """A statement's text and its parameters in the driver's form, ready to run."""

    text: str
    values: tuple | dict
    shape: object

    def run(self, connection):
        return connection.exec_driver_sql(self.text, self.values)

    def rows(self, connection):
        return self.shape.convert(self.run(connection).all())


class _AsReturned:
    """The shape of a hand-written statement whose rows need no conversion."""

    @staticmethod
    def convert(rows):
        return rows


AS_RETURNED = _AsReturned()


@dataclass(frozen=True)
class NativeBound(Bound):
    """A PostgreSQL statement with the server's own placeholders ($1, $2, …) and its
    values in order, run by psycopg's ``RawCursor``: psycopg does not convert the text.
    It converts a named-parameter text (``%(name)s``) at every run when the text is over
    4,096 characters or has more than 50 parameters (it caches only smaller ones)."""


_native_texts = {}  # named-parameter text → (native text, parameter names in order)


def native(bound):
    """``bound`` (psycopg's named parameters) as a NativeBound, its text converted once."""
    found = _native_texts.get(bound.text)
    if found is None:
        names = []

        def number(match):
            if match.group(0) == "%%":
                return "%"
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        found = _native_texts[bound.text] = (_NAMED.sub(number, bound.text), tuple(names))
    text, names = found
    return NativeBound(text, tuple(bound.values[name] for name in names), bound.shape)


_NAMED = re.compile(r"%\((\w+)\)s|%%")


def rows_together(connection, bounds):
    """The rows of several ``Bound`` statements, in order (None for a None statement).

    On PostgreSQL (psycopg) several go to the server in one pipeline: one wait for their
    answers, not one per statement; the server still runs them one after another, in this
    order. Elsewhere (SQLite is in the process: nothing to wait for) they run one by one.

    Pipelined statements go to the driver's cursor directly, so the engine's events do not
    see them; a driver error is raised as SQLAlchemy's (``DBAPIError``), as an execution
    would raise it."""
    dbapi_connection = connection.connection.dbapi_connection
    pipeline = getattr(dbapi_connection, "pipeline", None)
    if pipeline is None:
        return [None if bound is None else bound.rows(connection) for bound in bounds]
    sent = [bound for bound in bounds if bound is not None]
    cursors = []
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        # One statement needs no pipeline: a plain execution waits once just the same, and
        # psycopg's pipeline costs about a third more of the client's CPU.
        with pipeline() if len(sent) > 1 else nullcontext():
            for bound in sent:
                native_placeholders = isinstance(bound, NativeBound)
                cursors.append(RawCursor(dbapi_connection) if native_placeholders else dbapi_connection.cursor())
                cursors[-1].execute(bound.text, bound.values)
        answers = iter([bound.shape.convert(cursor.fetchall()) for bound, cursor in zip(sent, cursors, strict=True)])
    except driver_error as error:
        statement = "; ".join(bound.text for bound in sent)
        raise DBAPIError.instance(statement, None, error, driver_error) from error
    finally:
        for cursor in cursors:
            cursor.close()
    return [None if bound is None else next(answers) for bound in bounds]


class Prepared:
    def __init__(self, statement):
        self.statement = statement
        self._shapes = {}

    def bind(self, dialect, params):
        lengths = tuple(sorted((name, len(value)) for name, value in params.items() if isinstance(value, list)))
        key = (dialect.name, lengths)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _Shape(self.statement, dialect, params)
        return Bound(shape.text, shape.values(params), shape)

    def rows(self, connection, params):
        """The statement's rows for ``params``, result types applied."""
        return self.bind(connection.dialect, params).rows(connection)


class _Shape:
    """One expansion of a statement: its text, where each driver parameter comes from,
    and how values and result columns are converted."""

    def __init__(self, statement, dialect, params):
        compiled = statement.compile(dialect=dialect)
        expanded = compiled.construct_expanded_state(params)
        self.text = expanded.statement
        processors = expanded.processors or {}
        given = {}  # driver parameter name -> (given name, index in its list or None)
        for name in params:
            if isinstance(params[name], list):
                for index, part in enumerate(expanded.parameter_expansion.get(name, ())):
                    given[part] = (name, index)
            else:
                given[name] = (name, None)
        names = expanded.positiontup if compiled.positional else list(expanded.parameters)
        # Each driver parameter: (name, given name, index in its list, converter, constant);
        # a constant (the statement's own literal values, given name None) is converted once.
        self.sources = []
        for name in names:
            convert = processors.get(name)
            if name in given:
                self.sources.append((name, *given[name], convert, None))
            else:
                value = expanded.parameters[name]
                self.sources.append((name, None, None, None, value if convert is None else convert(value)))
        self.positional = compiled.positional
        results = [column.type._cached_result_processor(dialect, None) for column in compiled._result_columns]
        self.result_processors = results if any(results) else None

    def values(self, params):
        out = []
        for _name, given, index, convert, constant in self.sources:
            if given is None:
                out.append(constant)
                continue
            value = params[given] if index is None else params[given][index]
            out.append(value if convert is None else convert(value))
        if self.positional:
            return tuple(out)
        return {source[0]: value for source, value in zip(self.sources, out, strict=True)}

    def convert(self, rows):
        if self.result_processors is None:
            return rows
        processors = self.result_processors
        return [
            tuple(value if p is None else p(value) for p, value in zip(processors, row, strict=False)) for row in rows
        ]
