"""Typer classes that keep start-up lean without changing a byte of output.

Three costs of Typer 0.29 that every start paid (issue 7):

* Click's automatic help option has no default, and Typer builds a pydantic `TypeAdapter`
  for every parameter whose value it processes, even a missing one: `bulkctl push --help`
  imported pydantic (~90 ms) just to learn that the *root* group's `--help` was not given.
  `get_help_option` (a public Click method) gives it the default False, which Typer's
  boolean-flag fast path leaves alone.
* `typer.rich_utils` imports `rich.markdown` (markdown-it) and `rich.traceback`
  (pygments) at module level (~60 ms), but renders markdown only in
  `rich_markup_mode="markdown"` and tracebacks only with pretty exceptions; bulkctl uses
  neither. `format_help` imports it with stand-ins that load the real class on first use.
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

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from functools import partial
from types import ModuleType
from typing import Any

from typer.core import TyperCommand, TyperGroup

# Modules `typer.rich_utils` imports for features bulkctl does not use: name -> class it takes.
_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


class _Deferred(type):
    """A stand-in class: calling it, or any attribute, loads the real module and class."""

    _module: str

    def _real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(cls._real(), name)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._real())


def _stand_in(module: str, name: str) -> ModuleType:
    stand_in = ModuleType(module)
    setattr(stand_in, name, _Deferred(name, (), {"_module": module}))
    return stand_in


def import_rich_utils() -> None:
    """Import `typer.rich_utils` without loading rich's markdown and traceback modules.

    The stand-ins are in `sys.modules` only during that import: any later `import
    rich.markdown` (ours or a library's) gets the real module.
    """
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {
        module: _stand_in(module, name)
        for module, name in _DEFERRED.items()
        if module not in sys.modules
    }
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("typer.rich_utils")
    except ImportError:
        # A Typer that takes more from these modules than the stand-ins hold: the real ones.
        for module in stand_ins:
            sys.modules.pop(module, None)
        stand_ins = {}
        importlib.import_module("typer.rich_utils")
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]


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
    """A help flag that is False when absent, plain conversions, help without markdown."""

    def get_help_option(self, ctx: Any) -> Any:
        return _flag_default(super().get_help_option(ctx))  # type: ignore[misc]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _plain_coercion(self.get_params(ctx))  # type: ignore[attr-defined]
        parsed: list[str] = super().parse_args(ctx, args)  # type: ignore[misc]
        return parsed

    def format_help(self, ctx: Any, formatter: Any) -> None:
        import_rich_utils()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class Group(_Lean, TyperGroup):
    """The app's groups (see `_Lean`)."""


class Command(_Lean, TyperCommand):
    """The app's commands (see `_Lean`)."""
