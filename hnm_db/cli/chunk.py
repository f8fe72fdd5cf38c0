"""hnm-db commands of one stage (filled by that stage)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
