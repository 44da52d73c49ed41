"""Shared bits of the command line: JSON output on stdout, errors on stderr."""

import json

import click

from app.clock import parse_rfc3339

# Ids a database integer can hold: a bigger number is a usage error, not an OverflowError.
ID = click.IntRange(1, 2**63 - 1)


def emit(data, as_json, human):
    """Print ``data`` as JSON (only JSON on stdout) or as ``human(data)`` lines."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(human(data))


def fail(message):
    raise click.ClickException(message)


def parse_time_option(value):
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
