"""Which of the patient's documents answer the payer's request for more information.

Each document is classified (``pa_attachments``): by rule when its type carries a code
careflow maps (:func:`model.coded_class`, confidence 1.0, no model call), else by the model
on its scrubbed text through the ai-models policy (``governance.suggest``, each prediction
audited about the document's id). Documents whose class is one the payer asked for are
proposed to the utilization review nurse; the nurse confirms (``ATTACH_PROPOSED``) or
attaches others (``ATTACHED``), and the kit audits which. A model prediction below the
policy's threshold proposes nothing (the nurse chooses as without it); with the policy's
row off or in shadow nothing is proposed at all: the workflow's rules, as before.
Only document ids and classes reach the task and the audit, never a document's text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from careflow.canonical.payer import ClinicalDocument
from careflow.ml.governance import ModelSetting, PredictorPort, Suggestion, setting, suggest
from careflow.workflows.prior_authorization import model as m

PROPOSED = "ATTACH_PROPOSED"  # the nurse attaches what careflow proposed
OWN_CHOICE = "ATTACHED"  # the nurse attaches the documents she chose (as before the model)


@dataclass(frozen=True)
class Classified:
    document_id: str
    label: str
    confidence: float
    coded: bool
    suggestion: Suggestion | None = None

    @property
    def acts(self) -> bool:
        return self.coded or (self.suggestion is not None and self.suggestion.acts)


@dataclass(frozen=True)
class Proposal:
    """What the nurse's task carries: the proposed ids, and the low-confidence guesses."""

    proposed: tuple[Classified, ...] = ()
    unsure: tuple[Classified, ...] = ()
    wanted: tuple[str, ...] = ()  # the classes the payer's request asks for
    mode: str = "off"

    def suggestion(self) -> dict[str, Any] | None:
        """``Suggestion.ref()`` of the weakest proposed document (a proposal is as strong as
        its least sure part; a coded one is 1.0), with the task's ``decision`` and the
        ``proposed`` ids; or of the likeliest unsure guess (nothing proposed, no decision)."""
        if self.proposed:
            weakest = min(self.proposed, key=lambda c: c.confidence)
            return {
                **_ref(weakest),
                "decision": PROPOSED,
                "proposed": [c.document_id for c in self.proposed],
            }
        if self.unsure:
            likeliest = max(self.unsure, key=lambda c: c.confidence)
            return {**_ref(likeliest), "proposed": []}
        return None

    def reasons(self) -> tuple[str, ...]:
        out = [
            f"proposed {c.document_id}: {c.label} "
            + ("(coded type)" if c.coded else f"(model, {c.confidence:.2f})")
            for c in self.proposed
        ]
        out += [
            f"not proposed {c.document_id}: looks like {c.label} at {c.confidence:.2f}, "
            "below the policy's threshold"
            for c in self.unsure
        ]
        return tuple(out)


def _ref(c: Classified) -> dict[str, Any]:
    if c.suggestion is not None:
        return c.suggestion.ref()
    return {
        "model_id": m.MODEL.id,
        "version": "coded",
        "label": c.label,
        "confidence": 1.0,
        "reasons": ["coded document type"],
        "ranked": [[c.label, 1.0]],
        "input_hash": None,
        "mode": "coded",
        "acts": True,
    }


def wanted_classes(requested: Sequence[str]) -> tuple[str, ...]:
    """The classes of the LOINC document types the payer asks for (``other`` is never
    proposed: it says what a document is not)."""
    found = {m.LOINC.get(code) for code in requested}
    return tuple(c for c in m.CLASSES if c in found and c != m.OTHER)


def classify(
    doc: ClinicalDocument,
    *,
    instance_id: str,
    facility_id: str,
    predictor: PredictorPort | None,
    store: Any,
    policies: Any,
    now: datetime,
    conf: ModelSetting | None = None,
) -> Classified | None:
    codings = [c.model_dump() for c in doc.type_codings]
    coded = m.coded_class(codings)
    if coded is not None:
        return Classified(doc.document_id, coded, 1.0, coded=True)
    if predictor is None or not doc.text.strip():
        return None
    found = suggest(
        m.MODEL.id,
        m.features_of(text=doc.text, resource=doc.resource_type),
        instance_id=instance_id,
        facility_id=facility_id,
        predictor=predictor,
        store=store,
        now=now,
        policies=policies,
        about=doc.document_id,
        conf=conf,
    )
    if found is None:
        return None
    return Classified(
        doc.document_id, found.label, found.prediction.confidence, coded=False, suggestion=found
    )


def propose(
    documents: Sequence[ClinicalDocument],
    requested: Sequence[str],
    *,
    instance_id: str,
    facility_id: str,
    predictor: PredictorPort | None,
    store: Any,
    policies: Any,
    now: datetime,
) -> Proposal:
    """Classifies the documents and proposes those of a requested class (see the module)."""
    wanted = wanted_classes(requested)
    if not wanted or not documents:
        return Proposal(wanted=wanted)
    conf = setting(m.MODEL.id, facility_id, policies=policies, at=now)  # once for all
    found = [
        c
        for doc in documents
        if (
            c := classify(
                doc,
                instance_id=instance_id,
                facility_id=facility_id,
                predictor=predictor,
                store=store,
                policies=policies,
                now=now,
                conf=conf,
            )
        )
        is not None
    ]
    if conf.mode != "on":  # off (the kill switch) or shadow: audited, never proposed
        return Proposal(wanted=wanted, mode=conf.mode)
    matching = [c for c in found if c.label in wanted]
    return Proposal(
        proposed=tuple(c for c in matching if c.acts),
        unsure=tuple(c for c in matching if not c.acts),
        wanted=wanted,
        mode=conf.mode,
    )
