"""The workflow packages: every package under ``careflow.workflows`` with a ``spec.SPEC``.

Registering a workflow is adding its package (and its ASL file): nothing else names it.
``CAREFLOW_WORKFLOW_PATHS`` (``os.pathsep``-separated folders) adds folders of workflow
packages, for a hospital's own workflows kept outside this tree and for the kit's tests.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import Any

from careflow.kit.spec import FunctionSpec, Workflow

EXTRA_PATHS_ENV = "CAREFLOW_WORKFLOW_PATHS"


class RegistryError(RuntimeError):
    """Two packages claim the same id, name, function or event schema."""


def _package_paths() -> list[str]:
    import careflow.workflows as root

    extra = [p for p in os.environ.get(EXTRA_PATHS_ENV, "").split(os.pathsep) if p]
    for path in extra:
        if path not in root.__path__:
            root.__path__.append(path)
    return list(root.__path__)


@cache
def workflows() -> tuple[Workflow, ...]:
    """Every registered workflow, in package-name order."""
    found: list[Workflow] = []
    for info in sorted(pkgutil.iter_modules(_package_paths()), key=lambda m: m.name):
        if not info.ispkg or info.name.startswith("_"):
            continue
        package = f"careflow.workflows.{info.name}"
        module = importlib.import_module(f"{package}.spec")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, Workflow):
            raise RegistryError(f"{package}.spec has no SPEC workflow")
        found.append(replace(spec, package=package))
    _check(found)
    return tuple(found)


def _check(found: list[Workflow]) -> None:
    for attr in ("id", "name"):
        seen: dict[str, str] = {}
        for wf in found:
            value = getattr(wf, attr)
            if value in seen:
                raise RegistryError(f"workflow {attr} {value!r} in {seen[value]} and {wf.package}")
            seen[value] = wf.package
    functions: dict[str, FunctionSpec] = {}
    for wf in found:
        for fn in wf.functions:
            if functions.setdefault(fn.name, fn) != fn:
                raise RegistryError(f"function {fn.name} is declared twice, differently")
    served: dict[str, object] = {}
    for wf in found:
        if bool(wf.served_kpis) != (wf.kpi_values is not None):
            raise RegistryError(f"{wf.id}: served_kpis and kpi_values go together")
        if wf.bench is not None and wf.bench_excluded:
            raise RegistryError(f"{wf.id}: a bench case, or why it has none, not both")
        for kpi in wf.served_kpis:
            if served.setdefault(kpi.name, kpi) != kpi:
                raise RegistryError(f"KPI {kpi.name} is declared twice, differently")
    schemas: dict[str, type] = {}
    for wf in found:
        for detail_type, model in wf.event_schemas.items():
            if schemas.setdefault(detail_type, model) is not model:
                raise RegistryError(f"{detail_type} has two schemas ({wf.package})")
        for trigger in wf.triggers:
            if trigger.effect != "start" and trigger.subject is None:
                raise RegistryError(
                    f"{wf.id}: {trigger.detail_type} {trigger.effect}s an instance, "
                    "so its trigger must say how to read the subject"
                )
        for child in wf.children:
            if child not in {w.id for w in found}:
                raise RegistryError(f"{wf.id} starts {child}, which is not registered")


def reset() -> None:
    workflows.cache_clear()
    event_schemas.cache_clear()


def workflow(workflow_id: str) -> Workflow:
    for wf in workflows():
        if wf.id == workflow_id:
            return wf
    raise KeyError(f"no workflow {workflow_id!r} is registered")


@cache
def event_schemas() -> Mapping[str, Any]:
    """The data model of every detail-type a registered workflow consumes."""
    schemas: dict[str, Any] = {}
    for wf in workflows():
        schemas.update(wf.event_schemas)
    return schemas
