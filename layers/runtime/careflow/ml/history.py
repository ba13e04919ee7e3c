"""The history models learn from: the state store's records, an export of them, or the
generated starting history (seeded, reproducible; each model's generator documents its
assumptions)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from careflow.ml.registry import HistoryRecord, ModelDef, definitions

DEFAULT_SEED = 20261201


def generated(
    seed: int = DEFAULT_SEED, models: Iterable[ModelDef] | None = None
) -> list[HistoryRecord]:
    """Every model's synthetic history, each from its own seeded generator."""
    out: list[HistoryRecord] = []
    for defn in models if models is not None else definitions().values():
        rng = random.Random(f"{seed}:{defn.id}")
        out += defn.generate(rng, defn.history_size)
    return out


def record(store: Any, instance: Any) -> HistoryRecord:
    """One instance, exported as the models read it."""
    return {
        "workflow": instance.workflow_id,
        "facility_id": instance.facility_id,
        "instance": instance.model_dump(mode="json"),
        "milestones": [m.model_dump(mode="json") for m in store.milestones(instance.instance_id)],
        "tasks": [
            t.model_dump(mode="json") for t in store.tasks_for_instance(instance.instance_id)
        ],
        "audit": [a.model_dump(mode="json") for a in store.audit_trail(instance.instance_id)],
    }


def from_store(store: Any, workflows: Iterable[str], since: datetime) -> list[HistoryRecord]:
    """Every instance of the workflows updated since ``since``, in any status."""
    from careflow.domain.records import InstanceStatus

    out: list[HistoryRecord] = []
    for workflow in sorted(set(workflows)):
        for status in InstanceStatus:
            for inst in store.instances_updated_since(workflow, status.value, since):
                out.append(record(store, inst))
    return out


def write_jsonl(records: Sequence[HistoryRecord], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True, default=str) + "\n")


class BadHistory(ValueError):
    """An export that is not one JSON object per line with a workflow and an instance."""


def read_jsonl(path: Path) -> list[HistoryRecord]:
    from careflow.textfile import Unreadable, read_text

    out: list[HistoryRecord] = []
    try:
        text = read_text(path)
    except Unreadable as exc:
        raise BadHistory(f"{path}: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadHistory(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(rec, dict) or "workflow" not in rec or "instance" not in rec:
            raise BadHistory(f"{path}:{n}: a record needs 'workflow' and 'instance'")
        out.append(rec)
    return out


def audited_inputs(rec: HistoryRecord, model_id: str) -> dict[str | None, dict[str, Any]]:
    """The checked inputs ``model_id`` was given during this instance, by what each was
    about (governance's ``about``: a task id, an encounter; None when unnamed), as its
    ``model.predicted`` audit entries keep them (never a text feature)."""
    out: dict[str | None, dict[str, Any]] = {}
    for entry in rec.get("audit", ()):
        detail = entry.get("detail") or {}
        if (
            entry.get("action") == "model.predicted"
            and detail.get("model_id") == model_id
            and detail.get("features")
        ):
            out[detail.get("about")] = detail["features"]
    return out


def predicted_entry(model_id: str, about: str | None, features: dict[str, Any]) -> dict[str, Any]:
    """A ``model.predicted`` audit entry as a generated history writes it (the part of what
    governance writes that :func:`audited_inputs` reads)."""
    return {
        "action": "model.predicted",
        "detail": {"model_id": model_id, "about": about, "features": features},
    }
