"""The one entry point: parse the step's input, inject its ports, return its output as JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from careflow.kit.steps import StepDef, lookup


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
    inp = definition.input_model.model_validate(dict(event))
    result = definition.fn(inp, **{p: ports(p) for p in definition.ports})
    if not isinstance(result, definition.output_model):
        raise TypeError(f"{ref} returned {type(result).__name__}, not its output model")
    dumped: dict[str, Any] = result.model_dump(mode="json")
    return dumped
