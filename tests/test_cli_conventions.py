"""CLI conventions every command shares: --quiet where users type it, faithful machine formats,
examples and help on every option, progress bars only on a terminal, the group's --db for demo."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click
import pytest
from fixtures.cli import invoke

import hnm_db
from hnm_db.cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(db_path: Path, *args: str):
    return invoke(db_path, *args)


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity (Python's accepts them; JSON has neither)."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def commands(cmd: click.Command = main, path: tuple[str, ...] = ()):
    """(path, command) for the group and every command under it."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from commands(sub, (*path, name))


# -- item 14: --quiet after the command ------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [["runs", "-q"], ["runs", "list", "--quiet"], ["audit", "-q"], ["models", "list", "-q"], ["-q", "runs"]],
)
def test_quiet_is_accepted_after_every_command(mined_db_path, args):
    result = run(mined_db_path, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_quiet_after_the_command_silences_its_notes(mined_db_path, tmp_path):
    loud = run(mined_db_path, "audit", "--plot", str(tmp_path / "a"))
    assert "wrote " in loud.stderr
    quiet = run(mined_db_path, "audit", "--plot", str(tmp_path / "b"), "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert all(any(p.name == "quiet" for p in cmd.params) for _, cmd in commands())


# -- item 15: faithful machine formats -----------------------------------------------------------------
QUERY = (
    "SELECT 1.234e-05::DOUBLE AS tiny, 0.1::DOUBLE + 0.2::DOUBLE AS sum, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, "
    """'{"k": [1, 2.5, null]}'::JSON AS doc, 'ab\\x00'::BLOB AS blob, NULL::VARCHAR AS nothing, """
    "[1.5, 'nan'::DOUBLE] AS list, TIMESTAMP '2025-01-02 03:04:05' AS at"
)


def test_csv_keeps_every_digit(mined_db_path):
    result = run(mined_db_path, "sql", QUERY, "--format", "csv")
    assert result.exit_code == 0, result.output
    import csv
    import io

    header, row = list(csv.reader(io.StringIO(result.stdout)))
    assert header == ["tiny", "sum", "nan", "inf", "doc", "blob", "nothing", "list", "at"]
    values = dict(zip(header, row, strict=True))
    assert float(values["tiny"]) == 1.234e-05 and float(values["sum"]) == 0.1 + 0.2
    assert (
        values["nan"] == "NaN"
        and values["nothing"] == ""
        and json.loads(values["doc"]) == {"k": [1, 2.5, None]}
    )


@pytest.mark.parametrize("fmt", ["json", "ndjson"])
def test_json_has_no_nan_nests_json_columns_and_encodes_blobs(mined_db_path, fmt):
    result = run(mined_db_path, "sql", QUERY, "--format", fmt)
    assert result.exit_code == 0, result.output
    rows = (
        strict_json(result.stdout) if fmt == "json" else [strict_json(x) for x in result.stdout.splitlines()]
    )
    assert rows == [
        {
            "tiny": 1.234e-05, "sum": 0.30000000000000004, "nan": None, "inf": None, "doc": {"k": [1, 2.5, None]},
            "blob": base64.b64encode(b"ab\x00").decode(), "nothing": None, "list": [1.5, None],
            "at": "2025-01-02T03:04:05",
        }
    ]  # fmt: skip


def test_json_columns_of_library_frames_are_nested_too(mined_db_path):
    result = run(mined_db_path, "runs", "show", "ens-top", "--format", "json")
    assert strict_json(result.stdout)["params"]["max_score_ratio"] == 0.95
    lines = run(mined_db_path, "runs", "--format", "ndjson").stdout.splitlines()
    assert [strict_json(x)["name"] for x in lines] == ["ens-top", "bm25-top", "random"]
    audit = strict_json(run(mined_db_path, "audit", "--format", "json").stdout)  # NULL scores of random
    assert next(r for r in audit["runs"] if r["run"] == "random")["neg_score_mean"] is None


# -- item 17: demo takes the group's --db ----------------------------------------------------------------
def test_demo_uses_the_group_db_and_refuses_two(tmp_path, tiny_model_dir, tiny_model_dir_b, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clash = run(tmp_path / "a.duckdb", "demo", "--db", str(tmp_path / "b.duckdb"))
    assert clash.exit_code == 2 and "two databases named" in clash.output
    target = tmp_path / "mine.duckdb"
    result = run(target, "-q", "demo", "--out", str(tmp_path / "out"), "-m", str(tiny_model_dir),
                 "-m", str(tiny_model_dir_b), "--chunk-tokens", "0")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"# hnm-db demo: {target}" in result.stdout and not (tmp_path / "hnm-demo.duckdb").exists()
    with hnm_db.open(target, read_only=True) as db:
        assert db.scalar("SELECT count(*) FROM mining_runs") == 3


# -- item 18: help, examples, progress bars, completion ----------------------------------------------
@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p) or "hnm-db")
def test_every_command_has_examples_and_every_option_a_description(path):
    cmd = main
    for name in path:
        cmd = cmd.commands[name]
    result = invoke(None, *path, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"hnm-db {' '.join(path)}".strip() in result.output
    undocumented = [p.name for p in cmd.params if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert undocumented == []


def test_progress_bars_stay_off_a_log(mined_db_path, tmp_path):
    result = run(mined_db_path, "export", "--run", "ens-top", "--to", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stderr and "\r" not in result.stdout


def test_shell_completion_is_documented_and_works():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert (
        "_HNM_DB_COMPLETE=bash_source hnm-db" in readme and "zsh_source" in readme and "fish_source" in readme
    )
    import os

    env = {**os.environ, "_HNM_DB_COMPLETE": "bash_complete", "COMP_WORDS": "hnm-db ru", "COMP_CWORD": "1"}
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "from hnm_db.cli import main; main(prog_name='hnm-db')"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "plain,runs" in out.stdout
