"""Parameters as data: every ``*Params`` field says its own help text and CLI spelling.

A field is declared once, with :func:`param`; the CLI generates its click options from the fields
(``hnm_db.cli._common.params_options``), the facade builds the dataclass from a caller's keywords
(``hnm_db.db._params``), and ``tests/test_options.py`` checks that every field has exactly one option (or is marked Python-only) whose
help is the field's. Adding a knob is one edit: the field, its default, its help.

No click here: this is the base layer, which the stages import.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass
from typing import Any

#: The metadata key that holds a field's :class:`Knob`.
KNOB = "hnm_db.knob"


@dataclass(frozen=True)
class Knob:
    """What the CLI needs of one field, beside its name, type and default."""

    help: str
    #: The option's spelling, e.g. ``--negatives``; None: ``--`` + the field name with dashes.
    flag: str | None = None
    #: The allowed values (shown as a click Choice).
    choices: Sequence[str] | None = None
    #: Text -> value for values a type cannot say (``"none"`` -> None for a ratio).
    parse: Callable[[str], Any] | None = None
    #: Set only from Python (the CLI spells it another way, or never needs it).
    python_only: bool = False
    #: A metavar for the option's help line.
    metavar: str | None = None
    #: The CLI asks for it although Python has a default (``split --test-ratio``).
    cli_required: bool = False
    #: A one-letter alias of the flag (``-m`` for ``--model``).
    short: str | None = None
    #: A positional argument of the command (``ensemble create NAME``), not an option.
    argument: bool = False


def param(
    default: Any = MISSING,
    *,
    help: str,  # noqa: A002 - the word every CLI library uses
    flag: str | None = None,
    choices: Sequence[str] | None = None,
    parse: Callable[[str], Any] | None = None,
    python_only: bool = False,
    metavar: str | None = None,
    cli_required: bool = False,
    short: str | None = None,
    argument: bool = False,
) -> Any:
    """A dataclass field with its :class:`Knob` (typed Any, so it fits any annotation)."""
    knob = Knob(
        help,
        flag,
        tuple(choices) if choices is not None else None,
        parse,
        python_only,
        metavar,
        cli_required,
        short,
        argument,
    )
    return dataclasses.field(default=default, metadata={KNOB: knob})


@dataclass(frozen=True)
class Field:
    """One field of a ``*Params`` class as the CLI reads it."""

    name: str
    type: Any  # the resolved annotation
    default: Any  # MISSING when the field is required
    knob: Knob

    @property
    def required(self) -> bool:
        """Whether the CLI requires the option (Python may still have a default: ``cli_required``)."""
        return self.default is MISSING or self.knob.cli_required

    @property
    def flag(self) -> str:
        return self.knob.flag or "--" + self.name.replace("_", "-")

    @property
    def optional(self) -> bool:
        """Whether None is a value of the type (``int | None``)."""
        return type(None) in typing.get_args(self.type)

    @property
    def base_type(self) -> Any:
        """The type without None: ``int | None`` -> int; ``tuple[str, ...]`` stays as it is."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        if self.optional and len(args) == 1:
            return args[0]
        return self.type


def ratio_or_none(text: str) -> float | None:
    """A ratio option's text: a number, or ``none`` for no limit."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number in (0, 1] or 'none', got {text!r}") from None


def int_or_auto(text: str) -> int | str:
    """A count option's text: a positive integer, or ``auto``."""
    if text.strip() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"must be a positive integer or 'auto', got {text!r}") from None


#: A size option's ``max``: as much as the model takes.
MAX = "max"


def int_or_max(text: str) -> int | str:
    """A size option's text: a whole number, or ``max``."""
    if text.strip() == MAX:
        return MAX
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a whole number nor 'max'") from None


def fields(cls: type) -> list[Field]:
    """The :func:`param` fields of a ``*Params`` dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        knob = f.metadata.get(KNOB)
        if knob is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with hnm_db.options.param")
        out.append(Field(f.name, hints[f.name], f.default, knob))
    return out
