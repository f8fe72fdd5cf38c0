"""Every ``hnm-db`` command of the fenced bash blocks of the README and docs/*.md runs, as written, on the demo database.

The lines are run by bash, in order, with the venv's ``hnm-db`` on PATH and ``HNM_DB`` naming the
demo database: ``run_demo`` on the packaged sample (whole documents) with the real minilm-l6 and minilm-l3 (random tiny
models score every pair alike, and the README's 0.95 guard then drops every candidate). Three things
are put in for what the README assumes a reader has, so the lines run in minutes instead of hours:

- the SciFact folder is the packaged sample (same BEIR layout, 280 of its abstracts);
- the name ``mpnet-base`` is registered for minilm-l6 at 128 tokens (registered names win over the
  built-in aliases; mpnet embeds 1.8 texts/s here);
- ``train``'s ``--max-steps 100`` is ``--max-steps 2`` (100 steps of a MiniLM cross-encoder take ~13 min).
A command that needs what no test machine has (the full paper database, a Ray cluster) is listed in
``NOT_RUN`` with the reason; every other line must exit 0, and a new README line is in one list or the
other, or this test fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hnm_db
from hnm_db.data import sample_dir
from hnm_db.demo import run_demo

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: The README and the docs it links to: their commands are claims too.
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
#: Lines not run, by a fragment they contain, and why.
NOT_RUN = {
    "--engine ray": "needs a Ray cluster and a stage folder every node mounts (tests/test_engine_ray.py "
    "runs --engine ray on a local cluster)",
    "/tmp/h13a.duckdb": "reads the paper-table database that bench/paper_table.py builds in hours",
}
#: The one path put in: the README's SciFact folder is the packaged sample.
SCIFACT = "../shared/datasets/scifact"
#: Shell lines that set up completion: their hnm-db part is run and must print a script.
COMPLETION = "_HNM_DB_COMPLETE="


def bash_lines() -> list[str]:
    """The lines of every ```bash block, with backslash continuations joined."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    return lines


def hnm_commands() -> list[str]:
    """Lines whose command is hnm-db (not lines that only name a path under ~/.cache/hnm-db)."""
    found = []
    for line in bash_lines():
        words = shlex.split(line, comments=True)
        if words and (words[0] == "hnm-db" or "hnm-db)" in line or COMPLETION in line):
            found.append(line)
    return found


def test_the_readme_has_the_commands_this_test_runs():
    lines = hnm_commands()
    assert len(lines) >= 25
    assert any("sql/checks/negative_is_judged_positive.sql" in line for line in lines)


#: What is put in for the README's text, in order (see the module docstring).
LOCAL = ((SCIFACT, str(sample_dir())), ("--max-steps 100", "--max-steps 2"))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    path = folder / "demo.duckdb"
    with hnm_db.open(path) as db:
        db.add_model(name="mpnet-base", source="minilm-l6", max_seq_length=128)
        # whole documents (`hnm-db demo --chunk-tokens 0`), as the README's `chunk --strategy whole`: a
        # re-chunk would leave the demo's runs mined on other chunks, which `audit --check` reports
        run_demo(db, folder / "demo-export", chunk_tokens=None, progress=False)
    return path


@pytest.mark.integration
def test_every_readme_command_runs_on_the_demo_database(demo_db, tmp_path):
    (tmp_path / "sql").symlink_to(ROOT / "sql")  # the README's paths are relative to the repository
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "HNM_DB": str(demo_db),
        "HF_HUB_OFFLINE": "1",
    }
    ran = []
    for line in hnm_commands():
        if any(fragment in line for fragment in NOT_RUN):
            continue
        if COMPLETION in line:
            command = re.search(r"(_HNM_DB_COMPLETE=\w+ hnm-db)", line).group(1)
        else:
            here = line
            for written, local in LOCAL:
                here = here.replace(written, local)
            command = "hnm-db --quiet " + here.split(" ", 1)[1]
        started = time.perf_counter()
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        print(f"{time.perf_counter() - started:6.1f}s  {command}")  # pytest -rP shows where time goes
        ran.append(line)
        if result.returncode != 0 or (COMPLETION in line and "_HNM_DB_COMPLETE" not in result.stdout):
            pytest.fail(f"README line {line!r} ran as {command!r}: exit {result.returncode}\n{result.stderr}")
    assert len(ran) >= 20
