"""How a workflow uses a model: policy first, every prediction and override audited.

``suggest`` reads the ``ai-models`` policy in force (a kill switch must reach running
instances too, so it is read at the moment of the prediction, and its version is audited
with it): ``off`` returns None and the rules decide; ``shadow`` predicts and audits but never
acts; ``on`` acts when the confidence reaches the policy's threshold, else a person decides
as without the model. A model configured for a remote backend runs only when the policy's
``phi_egress`` allows; otherwise nothing leaves careflow and the rules decide. A model that
is missing or fails never fails the step: the rules decide, and the audit says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from careflow.domain.records import AuditEntry
from careflow.ml.features import FeatureRefused, checked
from careflow.ml.port import ModelUnavailable, Prediction
from careflow.ml.registry import definition

POLICY = "ai-models"
Mode = Literal["on", "shadow", "off"]
PREDICTED = "model.predicted"
ACCEPTED = "model.accepted"
OVERRIDDEN = "model.overridden"
SKIPPED = "model.skipped"


class PredictorPort(Protocol):
    def predict(
        self, model_id: str, features: Mapping[str, Any], *, backend: str = "local"
    ) -> Prediction: ...


class AuditSink(Protocol):
    def record_audit(self, entry: AuditEntry) -> None: ...


@dataclass(frozen=True)
class ModelSetting:
    model_id: str
    mode: Mode
    threshold: float
    backend: str
    phi_egress: bool
    policy_version: str


def setting(
    model_id: str, facility_id: str | None, *, policies: Any = None, at: datetime | None = None
) -> ModelSetting:
    from careflow.policies.resolve import resolve

    snapshot = resolve(POLICY, facility_id, at=at, store=policies)
    out = snapshot.table("models").decide({"model": model_id}).outputs
    mode: Mode = out["mode"] if out["mode"] in ("on", "shadow", "off") else "off"
    return ModelSetting(
        model_id=model_id,
        mode=mode,
        threshold=float(out["threshold"]),
        backend=str(out["backend"]),
        phi_egress=bool(snapshot.value("phi_egress")),
        policy_version=snapshot.version,
    )


@dataclass(frozen=True)
class Suggestion:
    prediction: Prediction
    setting: ModelSetting

    @property
    def acts(self) -> bool:
        """On, and at least as confident as the policy asks: the workflow may follow it."""
        return self.setting.mode == "on" and self.prediction.confidence >= self.setting.threshold

    @property
    def label(self) -> str:
        return self.prediction.label

    def ref(self) -> dict[str, Any]:
        """What a task or an output carries of it (no input values)."""
        p = self.prediction
        return {
            "model_id": p.model_id,
            "version": p.version,
            "label": p.label,
            "confidence": round(p.confidence, 4),
            "reasons": list(p.reasons),
            "ranked": [[c, round(s, 4)] for c, s in p.ranked()],
            "input_hash": p.input_hash,
            "mode": self.setting.mode,
            "acts": self.acts,
        }


def suggest(
    model_id: str,
    features: Mapping[str, Any],
    *,
    instance_id: str,
    facility_id: str | None,
    predictor: PredictorPort,
    store: AuditSink,
    now: datetime,
    policies: Any,
    about: str | None = None,
    conf: ModelSetting | None = None,
) -> Suggestion | None:
    """The model's suggestion for this input, audited; None when the rules decide.

    ``policies`` is the step's policies port (required: a store built here would be a new
    DynamoDB client per prediction). ``about`` names what it is about within the instance
    (a task id, a line). Its checked input is audited too, without any text feature
    (:func:`audited_features`: codes and numbers, never identifiers): the history it
    retrains on and the drift check's recent inputs. ``conf``: the model's setting when the
    step already resolved it for several predictions of one invocation (one policy read,
    not one per prediction)."""
    if conf is None:
        conf = setting(model_id, facility_id, policies=policies, at=now)
    if conf.mode == "off":
        _skipped(store, instance_id, now, conf, "off in the ai-models policy: the rules decide")
        return None
    if conf.backend != "local" and not conf.phi_egress:
        why = f"backend {conf.backend} needs phi_egress, which the policy does not allow"
        _skipped(store, instance_id, now, conf, why)
        return None
    try:
        prediction = predictor.predict(model_id, features, backend=conf.backend)
    except (ModelUnavailable, FeatureRefused) as exc:
        _skipped(store, instance_id, now, conf, str(exc))
        return None
    found = Suggestion(prediction, conf)
    detail: dict[str, Any] = {**found.ref(), "threshold": conf.threshold, "backend": conf.backend}
    if about:
        detail["about"] = about
    defn = definition(model_id)
    kept = audited_features(defn, features)
    if kept:
        detail["features"] = kept
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor=f"model:{model_id}",
            action=PREDICTED,
            reason=f"{prediction.label} at {prediction.confidence:.2f} ({conf.mode})",
            policy_version=conf.policy_version,
            detail=detail,
        )
    )
    return found


def audited_features(defn: Any, features: Mapping[str, Any]) -> dict[str, Any]:
    """What a prediction's audit entry keeps of its input: the checked codes, flags and
    numbers (retraining and the drift check read them), never a text feature. A model with
    text keeps its other features only (the attachment model: the FHIR resource type)."""
    kept = tuple(f for f in defn.features if f.kind != "text")
    names = {f.name for f in kept}
    return checked(kept, {k: v for k, v in features.items() if k in names})


def _skipped(
    store: AuditSink, instance_id: str, now: datetime, conf: ModelSetting, why: str
) -> None:
    store.record_audit(
        AuditEntry(
            instance_id=instance_id,
            at=now,
            actor=f"model:{conf.model_id}",
            action=SKIPPED,
            reason=why,
            policy_version=conf.policy_version,
            detail={"model_id": conf.model_id, "mode": conf.mode, "backend": conf.backend},
        )
    )


def record_review(
    store: AuditSink,
    *,
    instance_id: str,
    suggestion: Mapping[str, Any],
    decision: str,
    actor: str,
    now: datetime,
    reason: str = "",
) -> AuditEntry:
    """A person's answer to a suggestion (``Suggestion.ref()``, with ``decision``: the task's
    decision that follows it, else its label): accepted when they chose it, overridden
    otherwise. The person's decision is what the workflow does. Emits ``ModelOverridden``
    (1 overridden, 0 accepted) with the model id as dimension: its Average is the override
    rate (careflow.observability.MODEL_OVERRIDDEN_METRIC)."""
    follows = suggestion.get("decision") or suggestion.get("label")
    accepted = decision == follows
    entry = AuditEntry(
        instance_id=instance_id,
        at=now,
        actor=actor,
        action=ACCEPTED if accepted else OVERRIDDEN,
        reason=reason or (f"chose {decision}" + ("" if accepted else f" over {follows}")),
        detail={
            "model_id": suggestion.get("model_id"),
            "version": suggestion.get("version"),
            "suggested": follows,
            "label": suggestion.get("label"),
            "decided": decision,
            "input_hash": suggestion.get("input_hash"),
        },
    )
    store.record_audit(entry)
    from careflow.observability import MODEL_OVERRIDDEN_METRIC, kpi_metric

    kpi_metric(
        MODEL_OVERRIDDEN_METRIC,
        "Count",
        0.0 if accepted else 1.0,
        model_id=str(suggestion.get("model_id") or "-"),
    )
    return entry
