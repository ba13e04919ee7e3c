"""What a patch is, and the shape checks: each patch names the moto attribute it
replaces (or only relies on) and how that attribute must look for the patch to hold.
:func:`problem_of` answers for one patch; :mod:`.patches` checks them all at install and
:mod:`.check` prints them against whatever moto is installed."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any, Any], str | None]
"""(owner, the attribute as moto has it) -> what is wrong, or None."""


@dataclass(frozen=True)
class Patch:
    owner: str  # module, or "module:Class"
    attribute: str
    replacement: Callable[[Any], Any] | None  # original -> replacement; None: only checked
    expect: Check
    concern: str = ""  # the module of this package that holds it (set by the registry)

    @property
    def target(self) -> str:
        return f"{self.owner}.{self.attribute}"


def resolve(owner: str) -> Any:
    module_name, _, class_name = owner.partition(":")
    target: Any = importlib.import_module(module_name)
    if class_name:
        target = getattr(target, class_name)
    return target


def params(*names: str) -> Check:
    def check(_owner: Any, original: Any) -> str | None:
        try:
            actual = list(inspect.signature(original).parameters)
        except (TypeError, ValueError):
            return "is not a function"
        return None if actual == list(names) else f"has parameters {actual}, expected {list(names)}"

    return check


def is_(expected: Any, *, used_in: Iterable[tuple[str, str]] = ()) -> Check:
    """The attribute is ``expected`` and the named functions still call it as patched."""

    def check(_owner: Any, original: Any) -> str | None:
        if original is not expected:
            return f"is {original!r}, expected {expected!r}"
        for function_path, needle in used_in:
            source = inspect.getsource(resolve_function(function_path))
            if needle not in source:
                return f"is no longer used as '{needle}' in {function_path}"
        return None

    return check


def source_has(*needles: str) -> Check:
    """The replaced function's source still holds each of ``needles``."""

    def check(_owner: Any, original: Any) -> str | None:
        source = inspect.getsource(original)
        missing = [n for n in needles if n not in source]
        return f"no longer contains {missing}" if missing else None

    return check


def all_of(*checks: Check) -> Check:
    def check(owner: Any, original: Any) -> str | None:
        for one in checks:
            problem = one(owner, original)
            if problem:
                return problem
        return None

    return check


def resolve_function(path: str) -> Any:
    owner, _, name = path.rpartition(".")
    return getattr(resolve(owner), name)


def problem_of(patch: Patch) -> str | None:
    """What keeps ``patch`` from applying to the installed moto, or None."""
    try:
        owner = resolve(patch.owner)
    except (ImportError, AttributeError) as ex:
        return f"cannot be imported ({ex})"
    if not hasattr(owner, patch.attribute):
        return "missing"
    try:
        return patch.expect(owner, getattr(owner, patch.attribute))
    except (ImportError, AttributeError, OSError, TypeError) as ex:
        return f"cannot be checked ({ex})"
