"""Typer classes that keep start-up lean, and render help with `bulkctl.cli.helpformat`.

Three costs of Typer 0.29 that every start paid (issue 7):

* Click's automatic help option has no default, and Typer builds a pydantic `TypeAdapter`
  for every parameter whose value it processes, even a missing one: `bulkctl push --help`
  imported pydantic (~90 ms) just to learn that the *root* group's `--help` was not given.
  `get_help_option` (a public Click method) gives it the default False, which Typer's
  boolean-flag fast path leaves alone.
* `typer.rich_utils` imports `rich.markdown` (markdown-it) and `rich.traceback`
  (pygments) at module level (~60 ms). `format_help` renders with bulkctl's own
  `bulkctl.cli.helpformat` (issue 11: help that fits 80 columns), which needs neither, and
  `collect_usage_pieces` writes the usage line the same way (`JOB`, not `{JOB}`).
* Every command that runs converts its values with pydantic `TypeAdapter`s: importing
  pydantic and building them is ~80 ms of a ~0.2 s `bulkctl status JOB`. `parse_args` gives
  the parameters a plain conversion (`PlainCoercion`) for what bulkctl's options hold: a
  missing value, a `str` or `bool`, an `int` or `float` in plain digits (within its bounds),
  a list of `str`. Anything else (a given path, a malformed or out-of-bounds number) goes
  to Typer's own pydantic coercion, so the values and every error message stay Typer's;
  tests/test_startup.py compares both. This one hooks Typer internals (`type_descriptor`,
  `_runtime_param`, `typer._coercion`) and does nothing when they are absent.

Every command and group of the app uses these classes (`cls=`); tests/test_startup.py checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from typer.core import TyperCommand, TyperGroup

_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,18}(?:\.[0-9]{1,18})?")
_UNCONVERTED = object()


def plain_value(kind: type, value: Any) -> Any:
    """`value` converted as pydantic converts it for `kind`, or `_UNCONVERTED` (ask Typer)."""
    if kind in (str, bool):
        return value if type(value) is kind else _UNCONVERTED
    if kind is int:
        if type(value) is int:
            return value
        return int(value) if type(value) is str and _INT.fullmatch(value) else _UNCONVERTED
    if kind is float:
        if type(value) in (float, int):
            return float(value)
        return float(value) if type(value) is str and _FLOAT.fullmatch(value) else _UNCONVERTED
    if type(value) in (tuple, list) and all(type(item) is str for item in value):
        return list(value)  # kind is list[str]
    return _UNCONVERTED


def plain_kind(descriptor: Any) -> type | None:
    """The type `plain_value` converts for this parameter, or None when Typer must."""
    info = descriptor.parameter_info
    if info.clamp or info.parser is not None or descriptor.is_file or descriptor.is_path:
        return None
    if descriptor.is_choice:
        return None
    annotation = descriptor.annotation
    if annotation in (int, float):
        return annotation  # type: ignore[no-any-return]
    if info.min is not None or info.max is not None:
        return None
    if annotation in (str, bool):
        return annotation  # type: ignore[no-any-return]
    return list if annotation == list[str] else None


class PlainCoercion:
    """Typer's runtime conversion of one parameter, without pydantic for plain values."""

    def __init__(self, descriptor: Any, typer_coercion: Callable[[], Any]) -> None:
        self.kind = plain_kind(descriptor)
        self.min = descriptor.parameter_info.min
        self.max = descriptor.parameter_info.max
        self._typer_coercion = typer_coercion
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as Typer's RuntimeParam.coerce: nothing given, nothing to convert
            return () if param.multiple or param.nargs == -1 else None
        plain = _UNCONVERTED if self.kind is None else plain_value(self.kind, value)
        if plain is not _UNCONVERTED and self._in_bounds(plain):
            return plain
        if self._typer is None:
            self._typer = self._typer_coercion()
        return self._typer.coerce(value, param=param, ctx=ctx)

    def _in_bounds(self, number: Any) -> bool:
        # Written so that NaN is out of bounds, as pydantic's ge/le have it.
        low_ok = self.min is None or number >= self.min
        return low_ok and (self.max is None or number <= self.max)


def _plain_coercion(params: Iterable[Any]) -> None:
    try:
        from typer._coercion import build_runtime_param
    except ImportError:  # a Typer without pydantic coercion: nothing to avoid
        return
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        # Also for a path or a file: a missing one needs no conversion, a given one is Typer's.
        param._runtime_param = PlainCoercion(descriptor, partial(build_runtime_param, descriptor))


def _flag_default(option: Any) -> Any:
    # None (not given) would send the flag through Typer's pydantic coercion; False does not.
    if option is not None and option.default is None:
        option.default = False
    return option


class _Lean:
    """A help flag that is False when absent, plain conversions, bulkctl's help layout."""

    def get_help_option(self, ctx: Any) -> Any:
        return _flag_default(super().get_help_option(ctx))  # type: ignore[misc]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _plain_coercion(self.get_params(ctx))  # type: ignore[attr-defined]
        parsed: list[str] = super().parse_args(ctx, args)  # type: ignore[misc]
        return parsed

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        from bulkctl.cli.helpformat import usage_pieces

        return usage_pieces(self, ctx)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from bulkctl.cli.helpformat import format_help

        format_help(self, ctx)


class Group(_Lean, TyperGroup):
    """The app's groups (see `_Lean`)."""


class Command(_Lean, TyperCommand):
    """The app's commands (see `_Lean`)."""
