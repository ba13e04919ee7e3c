"""The one entry point: parse the step's input, inject its ports, return its output as JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from careflow.kit.steps import StepDef, lookup


class StepDataInvalid(ValueError):
    """A step's input, or a model the step built, did not validate. The message names
    locations and kinds, never values: it becomes the task's error cause in the execution's
    history (and the function's log), and a value may be PHI."""


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['type']}"
        for err in error.errors()
    )


def _port(name: str) -> Any:
    from careflow import clock, wiring

    if name == "now":
        return clock.now()
    factory: Callable[[], Any] = getattr(wiring, name)
    return factory()


def invoke(
    ref: str, event: Mapping[str, Any], *, ports: Callable[[str], Any] = _port
) -> dict[str, Any]:
    """Runs the step ``ref`` on a Lambda event; ``ports`` resolves a port by name."""
    definition: StepDef = lookup(ref)
    try:
        inp = definition.input_model.model_validate(dict(event))
        result = definition.fn(inp, **{p: ports(p) for p in definition.ports})
    except ValidationError as exc:  # pydantic's message quotes the values
        raise StepDataInvalid(f"{definition.name}: {_describe(exc)}") from None
    if not isinstance(result, definition.output_model):
        raise TypeError(f"{ref} returned {type(result).__name__}, not its output model")
    dumped: dict[str, Any] = result.model_dump(mode="json")
    return dumped
