"""Steps registered by name, each with a pydantic input and output model.

A step is a plain function ``fn(inp: InputModel, *, <ports>) -> OutputModel``. Its keyword
parameters name the ports it needs (``store``, ``ehr``, ``payer``, ``erp``, ``sterile``,
``workforce``, ``transport``, ``pharmacy``, ``engine``, ``publisher``, ``policies``,
``predictor``, ``now``):
:mod:`careflow.kit.runtime` injects them on AWS and in the local cloud, and a unit test
passes in-memory fakes.

A step is addressed as ``"<module>:<name>"`` (its *ref*), so a Lambda function loads only the
module of its own step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

PORTS = frozenset(
    {
        "store",
        "ehr",
        "payer",
        "erp",
        "sterile",
        "workforce",
        "transport",
        "pharmacy",
        "engine",
        "publisher",
        "policies",
        "predictor",
        "now",
    }
)


class StepInput(BaseModel):
    """Base of step inputs: the ASL selects a small object; fields the step does not read
    are ignored (a state machine may pass more than a step needs)."""

    # defer_build: a step module defines every step's models, a function uses one step's;
    # the others' validators are never built (cold start).
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class StepOutput(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


@dataclass(frozen=True)
class StepDef:
    name: str
    module: str
    fn: Callable[..., BaseModel]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    ports: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.module}:{self.name}"


_STEPS: dict[str, StepDef] = {}

F = TypeVar("F", bound=Callable[..., Any])


class StepDefinitionError(TypeError):
    """A step function does not follow the kit's shape."""


def step(name: str | None = None) -> Callable[[F], F]:
    """Registers ``fn`` as a step; its input and output models come from its annotations."""

    def register(fn: F) -> F:
        hints = _hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        if not params or params[0].kind is inspect.Parameter.KEYWORD_ONLY:
            raise StepDefinitionError(f"{fn.__qualname__}: the first parameter is the input")
        input_model = hints.get(params[0].name)
        output_model = hints.get("return")
        for what, model in (("input", input_model), ("output", output_model)):
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                raise StepDefinitionError(f"{fn.__qualname__}: its {what} must be a pydantic model")
        ports = tuple(p.name for p in params[1:])
        unknown = set(ports) - PORTS
        if unknown:
            raise StepDefinitionError(f"{fn.__qualname__}: unknown ports {sorted(unknown)}")
        definition = StepDef(
            name=name or fn.__name__,
            module=fn.__module__,
            fn=fn,
            input_model=input_model,  # type: ignore[arg-type]
            output_model=output_model,  # type: ignore[arg-type]
            ports=ports,
        )
        _STEPS[definition.ref] = definition
        return fn

    return register


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """The input's and the return's types only: the ports' annotations may name types a
    step imports under TYPE_CHECKING (a step function loads only what it runs)."""
    params = list(inspect.signature(fn).parameters)
    wanted = {k: v for k, v in fn.__annotations__.items() if k in [*params[:1], "return"]}
    hints: dict[str, Any] = {}
    for name, annotation in wanted.items():
        hints[name] = (
            eval(annotation, fn.__globals__)  # noqa: S307 - the step module's own annotation
            if isinstance(annotation, str)
            else annotation
        )
    return hints


def lookup(ref: str) -> StepDef:
    """The step ``"<module>:<name>"``, importing its module (and only it) if needed."""
    found = _STEPS.get(ref)
    if found is None:
        module, _, _name = ref.partition(":")
        if not module or not _name:
            raise KeyError(f"step ref {ref!r} is not '<module>:<name>'")
        import importlib

        importlib.import_module(module)
        found = _STEPS.get(ref)
    if found is None:
        raise KeyError(f"no step {ref!r} is registered")
    return found


def steps_in(module: str) -> dict[str, StepDef]:
    """The steps a module registered, by name (the module must be imported)."""
    return {d.name: d for d in _STEPS.values() if d.module == module}
