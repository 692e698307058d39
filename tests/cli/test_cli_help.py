"""Every command's ``--help`` is plain text: no reST or Sphinx markup from the docstrings."""

from __future__ import annotations

import re

import click
import pytest
import typer
from typer.testing import CliRunner

from cellcensus._cli import app

MARKUP = re.compile(r"``|:(?:func|class|mod|meth|attr|obj|data):`")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


def test_every_command_is_listed() -> None:
    names = {c[-1] for c in COMMANDS if c}
    assert {"build", "compare", "demo", "publish", "query", "sync", "synth", "validate"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "cellcensus")
def test_help_is_plain_text(command: tuple[str, ...]) -> None:
    res = CliRunner().invoke(app, [*command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output
    assert not MARKUP.search(res.output), res.output
