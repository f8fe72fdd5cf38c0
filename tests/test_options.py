"""Options are data (issue 22): every ``*Params`` field has exactly one CLI option, generated from the
field, whose help is the field's, or the field is marked Python-only."""

from __future__ import annotations

import click
import pytest

from hnm_db import options, params
from hnm_db.cli import main as cli

#: Each ``*Params`` class and the commands whose options it defines (all its CLI fields, or ``only``).
COMMANDS: dict[type, list[tuple[tuple[str, ...], tuple[str, ...] | None]]] = {
    params.MiningParams: [(("mine",), None)],
    params.SplitParams: [(("split",), None)],
    params.ClusterParams: [(("cluster",), None)],
    params.ChunkParams: [(("chunk",), None)],
    params.AuditParams: [(("audit",), None)],
    params.ExportParams: [(("export",), None)],
    params.DenoiseParams: [(("denoise",), None)],
    params.EmbedParams: [(("embed",), None)],
    params.EnsembleParams: [(("ensemble", "create"), None)],
    params.TuneParams: [(("ensemble", "tune"), None)],
    params.ModelParams: [(("models", "add"), None)],
    params.EvalParams: [(("eval",), None)],
    params.TrainParams: [(("train",), None)],
    params.TableSpec: [((("ingest", f)), None) for f in ("jsonl", "csv", "parquet")],
    params.BeirParams: [(("ingest", "beir"), None)],
    params.FilesParams: [(("ingest", "files"), None)],
    params.UrlParams: [(("ingest", "urls"), None)],
    # The Ray engine's options: where it runs on every command that has --engine, widths where they apply.
    params.RayParams: [
        (("mine",), ("address", "stage", "shards")),
        (("cluster",), ("address", "stage", "buckets")),
        (("embed",), ("address", "stage", "replicas", "buckets")),
    ],
}
CASES = [(cls, path, only) for cls, uses in COMMANDS.items() for path, only in uses]


def _case_id(case) -> str:
    return f"{case[0].__name__}-{'-'.join(case[1])}"


def test_every_params_class_is_checked():
    """A new ``*Params`` class (exported from hnm_db.params) must say here which command spells it."""
    exported = {getattr(params, n) for n in params.__all__ if n.endswith("Params") or n == "TableSpec"}
    assert exported == set(COMMANDS)


def test_every_cli_field_has_an_option_somewhere():
    for cls, uses in COMMANDS.items():
        spelled = {name for _, only in uses for name in (only or [f.name for f in options.fields(cls)])}
        for f in options.fields(cls):
            assert f.knob.python_only or f.name in spelled, f"{cls.__name__}.{f.name} has no option"


def command(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_every_field_has_one_option_with_the_fields_help_and_default(case):
    cls, path, only = case
    cmd = command(path)
    by_name: dict[str, list[click.Parameter]] = {}
    for p in cmd.params:
        by_name.setdefault(p.name, []).append(p)
    for f in options.fields(cls):
        found = by_name.get(f.name, [])
        if only is not None and f.name not in only:
            continue
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


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_no_option_given_means_the_fields_defaults(case):
    """Parsing no option at all gives the dataclass's own defaults (through the parse functions too)."""
    cls, path, only = case
    cmd = command(path)
    given = cmd.make_context(cmd.name, [], resilient_parsing=True).params
    for f in options.fields(cls):
        if only is not None and f.name not in only:
            continue
        if not f.knob.python_only and not f.required and not f.knob.argument:
            assert given[f.name] == f.default, f.name


def test_a_parse_function_error_is_a_usage_error_naming_the_option(tmp_path):
    from fixtures.cli import invoke

    result = invoke(tmp_path / "x.duckdb", "mine", "--max-score-ratio", "most")
    assert result.exit_code == 2
    assert "--max-score-ratio" in result.stderr and "'none'" in result.stderr
