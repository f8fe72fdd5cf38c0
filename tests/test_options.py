"""Options are data (issue 22): every ``*Params`` field has exactly one CLI option, generated from the
field, whose help is the field's, or the field is marked Python-only."""

from __future__ import annotations

import click
import pytest

from hnm_db import options
from hnm_db.cli import main as cli
from hnm_db.mining.cluster import ClusterParams
from hnm_db.mining.params import MiningParams
from hnm_db.sources.chunk import ChunkParams
from hnm_db.sources.split import SplitParams

#: Each ``*Params`` class and the command whose options it defines.
COMMANDS = {
    MiningParams: ("mine",),
    SplitParams: ("split",),
    ClusterParams: ("cluster",),
    ChunkParams: ("chunk",),
}


def command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize("cls", list(COMMANDS), ids=lambda c: c.__name__)
def test_every_field_has_one_option_with_the_fields_help_and_default(cls):
    cmd = command(COMMANDS[cls])
    by_name: dict[str, list[click.Parameter]] = {}
    for p in cmd.params:
        by_name.setdefault(p.name, []).append(p)
    for f in options.fields(cls):
        found = by_name.get(f.name, [])
        if f.knob.python_only:
            assert not found, f"{cls.__name__}.{f.name} is Python-only but has an option"
            continue
        assert len(found) == 1, f"{cls.__name__}.{f.name}: {len(found)} options"
        (opt,) = found
        if f.knob.argument:
            assert isinstance(opt, click.Argument) and opt.required == f.required  # click args have no help
            continue
        assert isinstance(opt, click.Option) and opt.help == f.knob.help
        assert f.flag in opt.opts
        if f.required:
            assert opt.required
        elif f.knob.parse is None:
            assert opt.default == f.default


@pytest.mark.parametrize("cls", list(COMMANDS), ids=lambda c: c.__name__)
def test_no_option_given_means_the_fields_defaults(cls):
    """Parsing no option at all gives the dataclass's own defaults (through the parse functions too)."""
    cmd = command(COMMANDS[cls])
    given = cmd.make_context(cmd.name, [], resilient_parsing=True).params
    for f in options.fields(cls):
        if not f.knob.python_only and not f.required and not f.knob.argument:
            assert given[f.name] == f.default, f.name


def test_a_parse_function_error_is_a_usage_error_naming_the_option(tmp_path):
    from fixtures.cli import invoke

    result = invoke(tmp_path / "x.duckdb", "mine", "--max-score-ratio", "most")
    assert result.exit_code == 2
    assert "--max-score-ratio" in result.stderr and "'none'" in result.stderr
