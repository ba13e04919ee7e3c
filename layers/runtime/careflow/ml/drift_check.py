"""The daily drift check: how far each model's recent inputs have moved from its training
inputs (PSI, :mod:`careflow.ml.drift`), read from the ``model.predicted`` audit entries.

Each ``model.predicted`` entry keeps the prediction's checked input in ``features``
(:func:`careflow.ml.governance.audited_features`): codes and numbers, never identifiers,
never text; a model with text features is measured on its other features (the attachment
model on the FHIR resource types it is asked about). The check takes those of the last
``drift_window_days`` (the ``ai-models`` policy), compares them with the training
distribution the artifact keeps, and says per model the largest PSI over its features and
whether it reaches the policy's ``drift_alarm_psi``. No boto3 here: the handler
(lambdas/model_drift.py) gives the state store and emits the metric ``ModelDriftPsi`` the
CloudWatch alarms watch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from careflow.ml import drift, registry
from careflow.ml.governance import POLICY, PREDICTED


@dataclass(frozen=True)
class DriftResult:
    model_id: str
    inputs: int  # recent inputs found
    psi: dict[str, float]  # per feature
    max_psi: float
    feature: str  # the feature that moved most ("-" when none)
    line: float  # the policy's drift_alarm_psi
    min_inputs: int = 1  # the policy's drift_min_inputs: fewer say nothing about a population

    @property
    def enough(self) -> bool:
        return self.inputs >= max(1, self.min_inputs)

    @property
    def alarm(self) -> bool:
        return self.enough and self.max_psi >= self.line


def recent_inputs(
    audit: Iterable[Mapping[str, Any]], model_id: str, since: datetime, now: datetime
) -> list[dict[str, Any]]:
    """The checked inputs of ``model_id``'s predictions audited within [since, now]
    (entries as JSON or :class:`AuditEntry`). A step that failed after predicting and was
    retried audits the same prediction again: one input per instance, subject and input
    hash is counted once."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for entry in audit:
        action = entry.get("action") if isinstance(entry, Mapping) else entry.action
        if action != PREDICTED:
            continue
        e = entry if isinstance(entry, Mapping) else entry.model_dump(mode="json")
        detail = e.get("detail") or {}
        if detail.get("model_id") != model_id or not isinstance(detail.get("features"), dict):
            continue
        at = e.get("at")
        when = datetime.fromisoformat(at) if isinstance(at, str) else at
        if when is None or not since <= when <= now:
            continue
        once = (e.get("instance_id"), detail.get("about"), detail.get("input_hash"))
        if detail.get("input_hash") is not None and once in seen:
            continue
        seen.add(once)
        out.append(detail["features"])
    return out


def check(
    audit: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    window_days: int,
    line: float,
    models: Iterable[registry.ModelDef] | None = None,
    min_inputs: int = 1,
) -> list[DriftResult]:
    """Each model's drift over the window (models never trained, or with no feature but
    text, are left out: nothing of their input is kept to compare)."""
    since = now - timedelta(days=window_days)
    out: list[DriftResult] = []
    for defn in models if models is not None else registry.definitions().values():
        art = registry.artifact(defn.id)
        if art is None or not measurable(defn):
            continue
        rows = recent_inputs(audit, defn.id, since, now)
        out.append(judge(defn.id, art, rows, line=line, min_inputs=min_inputs))
    return out


def measurable(defn: registry.ModelDef) -> bool:
    """The drift check can measure the model: it has a feature that is not text (the audit
    keeps those, and the artifact's reference holds their training distribution)."""
    return any(f.kind != "text" for f in defn.features)


def judge(
    model_id: str,
    art: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    line: float,
    min_inputs: int,
) -> DriftResult:
    """The drift of these recent (checked) inputs against the artifact's training inputs."""
    per = drift.psi(art.get("reference", {}), rows) if rows else {}
    feature, worst = max(per.items(), key=lambda kv: kv[1], default=("-", 0.0))
    return DriftResult(model_id, len(rows), per, worst, feature, line, min_inputs)


def policy_values(policies: Any = None, at: datetime | None = None) -> tuple[int, float, int]:
    """(drift_window_days, drift_alarm_psi, drift_min_inputs) of the ai-models policy in
    force."""
    from careflow.policies.resolve import resolve

    snapshot = resolve(POLICY, None, at=at, store=policies)
    return (
        int(snapshot.value("drift_window_days")),
        float(snapshot.value("drift_alarm_psi")),
        int(snapshot.value("drift_min_inputs")),
    )


def audit_since(store: Any, workflows: Iterable[str], since: datetime) -> list[Any]:
    """The audit entries of every instance of the workflows updated since ``since`` (GSI3
    key ranges, then each instance's audit trail)."""
    from careflow.domain.records import InstanceStatus

    out: list[Any] = []
    for workflow in sorted(set(workflows)):
        for status in InstanceStatus:
            for inst in store.instances_updated_since(workflow, status.value, since):
                out.extend(store.audit_trail(inst.instance_id))
    return out


def run(store: Any, *, now: datetime, policies: Any = None) -> list[DriftResult]:
    """The check over the state store, as the policy in force says."""
    from careflow.kit import registry as workflows

    days, line, least = policy_values(policies, now)
    audit = audit_since(store, [wf.id for wf in workflows.workflows()], now - timedelta(days=days))
    return check(audit, now=now, window_days=days, line=line, min_inputs=least)
