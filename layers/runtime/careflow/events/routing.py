"""What no workflow takes: the catch-all rule's pattern and an unrouted event's reason.

The catalog's routes are the triggers' and subscriptions' (source, detail-type, detail
filter), and careflow's own published events (``careflow.workflow``: outcomes, task
events), which go to consumers outside careflow and are not unrouted. The catch-all
pattern is their complement, built here from the registry for both the CDK app and the
local cloud, so an event on the bus is taken by a workflow's rule or by the catch-all,
never by nothing. EventBridge has no "no other rule matched": the complement is written
out with ``anything-but`` and ``exists`` filters under one ``$or``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from careflow.kit.spec import Workflow

PUBLISHER_SOURCE = "careflow.workflow"
# The intake rule target input for the catch-all: no workflow, the event whole.
UNROUTED_ROUTE = "unrouted"


@dataclass(frozen=True)
class Route:
    source: str
    detail_type: str
    detail: Mapping[str, Any] | None  # a trigger's filter on detail, or None (takes all)
    taker: str  # a workflow id, or "consumers" for careflow's own events


def routes(catalog: Iterable[Workflow]) -> list[Route]:
    from careflow.events.platform import PLATFORM_SCHEMAS

    found: list[Route] = []
    for wf in catalog:
        for t in wf.triggers:
            found.append(Route(t.source, t.detail_type, t.detail or None, wf.id))
        for sub in wf.subscriptions:
            found.append(Route(sub.source, sub.detail_type, None, wf.id))
        for detail_type in wf.publishes:
            found.append(Route(PUBLISHER_SOURCE, detail_type, None, "consumers"))
    for detail_type in sorted(PLATFORM_SCHEMAS):
        found.append(Route(PUBLISHER_SOURCE, detail_type, None, "consumers"))
    return found


def _leaf(
    detail: Mapping[str, Any], path: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], list[Any]]:
    """The one (path, values) of a single-field filter; raises for anything richer."""
    if len(detail) != 1:
        raise ValueError("a trigger's detail filter must name one field to be complemented")
    ((key, value),) = detail.items()
    if isinstance(value, Mapping):
        return _leaf(value, (*path, key))
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise ValueError("a trigger's detail filter must list plain values")
    return (*path, key), list(value)


def _nest(path: Sequence[str], leaf: Any) -> dict[str, Any]:
    node: Any = leaf
    for key in reversed(path):
        node = {key: node}
    return dict(node)


def _filtered(
    catalog: Iterable[Workflow],
) -> dict[tuple[str, str], tuple[tuple[str, ...], list[Any]]]:
    """Per (source, detail-type) taken only through detail filters: the filtered field and
    every value some route takes (all routes of a pair must filter the same field)."""
    by_pair: dict[tuple[str, str], list[Route]] = {}
    for r in routes(catalog):
        by_pair.setdefault((r.source, r.detail_type), []).append(r)
    out: dict[tuple[str, str], tuple[tuple[str, ...], list[Any]]] = {}
    for pair, rs in by_pair.items():
        if any(r.detail is None for r in rs):
            continue
        leaves = [_leaf(r.detail or {}) for r in rs]
        paths = {path for path, _ in leaves}
        if len(paths) != 1:
            raise ValueError(f"{pair[1]}: every route must filter the same field")
        values = sorted({v for _, vs in leaves for v in vs}, key=str)
        out[pair] = (paths.pop(), values)
    return out


def unrouted_pattern(catalog: Iterable[Workflow]) -> dict[str, Any]:
    """The catch-all rule's pattern: every event no route of ``catalog`` takes."""
    catalog = tuple(catalog)
    all_routes = routes(catalog)
    detail_types = sorted({r.detail_type for r in all_routes})
    alternatives: list[dict[str, Any]] = [{"detail-type": [{"anything-but": detail_types}]}]
    # Per detail-type, any other source; detail-types taken from the same sources share one.
    by_sources: dict[tuple[str, ...], list[str]] = {}
    for detail_type in detail_types:
        sources = tuple(sorted({r.source for r in all_routes if r.detail_type == detail_type}))
        by_sources.setdefault(sources, []).append(detail_type)
    for sources, types in sorted(by_sources.items()):
        alternatives.append({"detail-type": types, "source": [{"anything-but": list(sources)}]})
    for (source, detail_type), (path, values) in sorted(_filtered(catalog).items()):
        for leaf in ([{"anything-but": values}], [{"exists": False}]):
            alternatives.append(
                {
                    "source": [source],
                    "detail-type": [detail_type],
                    "detail": _nest(path, leaf),
                }
            )
    return {"$or": alternatives}


def unrouted_reason(event: Mapping[str, Any], catalog: Iterable[Workflow]) -> str:
    """Why no workflow took ``event``: the field and the catalog's rule, never its value."""
    catalog = tuple(catalog)
    all_routes = routes(catalog)
    source, detail_type = event.get("source"), event.get("detail-type")
    known_types = {r.detail_type for r in all_routes}
    if detail_type not in known_types:
        return (
            "detail-type is not one any workflow takes: no trigger or subscription in the "
            "catalog names it"
        )
    sources = sorted({r.source for r in all_routes if r.detail_type == detail_type})
    if source not in sources:
        return f"source is not one {detail_type} is taken from: the catalog takes it from " + (
            ", ".join(sources)
        )
    filtered = _filtered(catalog).get((str(source), str(detail_type)))
    if filtered is not None:
        path, values = filtered
        where = ".".join(("detail", *path))
        node: Any = event.get("detail")
        for key in path:
            node = node.get(key) if isinstance(node, Mapping) else None
        allowed = ", ".join(str(v) for v in values)
        if node is None:
            return f"{where} is missing: {detail_type} is routed on it (taken for {allowed})"
        return f"{where} is not one a workflow takes: {detail_type} is taken for {allowed} only"
    return f"{detail_type} from {source} matched no rule of the catalog"
