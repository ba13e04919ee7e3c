"""Supply disruption: the next-best action for an implant or supply short for a booked case.

Surgical case readiness opens the care coordinator's task when a shortage threatens the
case (the replenishment would arrive after the hard stop, or the item is not in the item
master). The model ranks what people do about it: SUBSTITUTE (an alternative on the
preference card), TRANSFER (from another facility's shelf), EXPEDITE (the vendor ships
sooner) or RESCHEDULE (move the case). It learns from the coordinators' past decisions on
those tasks; it sees the days to the case, the quantity short, the other facilities'
available stock, whether the card names a substitute in stock, the vendor's lead time,
whether the vendor runs the item on consignment anywhere, whether it is an implant; never
the patient, the surgeon or the case. The baseline it must beat is today's rule: expedite
when the vendor's lead time fits before the case, else reschedule.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from careflow.ml.features import Feature
from careflow.ml.history import audited_inputs, predicted_entry
from careflow.ml.registry import Example, HistoryRecord, ModelDef

WORKFLOW_ID = "surgical-case-readiness"
PURPOSE = "coordinator"  # the coordinator's task (HumanTaskSpec.purpose)
SUBSTITUTE, TRANSFER, EXPEDITE, RESCHEDULE = "SUBSTITUTE", "TRANSFER", "EXPEDITE", "RESCHEDULE"
ACTIONS = (SUBSTITUTE, TRANSFER, EXPEDITE, RESCHEDULE)

FEATURES = (
    Feature("days_to_case", "number", "days from the task to the case's start"),
    Feature("quantity_short", "number", "units needed beyond what the facility has available"),
    Feature(
        "other_facilities_available",
        "number",
        "units available (on hand minus reserved) at the enterprise's other facilities",
    ),
    Feature("transfer_covers", "flag", "another facility alone has enough available to cover it"),
    Feature(
        "substitute_in_stock",
        "flag",
        "the preference card names a substitute the facility has available",
    ),
    Feature("vendor_lead_days", "number", "the primary supplier's lead time in days"),
    Feature("lead_fits", "flag", "the vendor's lead time ends before the case"),
    Feature(
        "vendor_consignment",
        "flag",
        "the vendor runs the item on consignment or bill-only at one of the facilities",
    ),
    Feature("implant", "flag", "the item is an implant (the case cannot start without it)"),
    Feature("in_item_master", "flag", "the facility's ERP item master knows the item"),
)


def features_of(
    *,
    days_to_case: float,
    quantity_short: int,
    other_available: Sequence[int],
    substitute_in_stock: bool,
    vendor_lead_days: float,
    vendor_consignment: bool,
    implant: bool,
    in_item_master: bool,
) -> dict[str, Any]:
    """The model's input for one shortage: numbers and flags only."""
    others = [max(int(n), 0) for n in other_available]
    return {
        "days_to_case": round(days_to_case, 3),
        "quantity_short": int(quantity_short),
        "other_facilities_available": sum(others),
        "transfer_covers": any(n >= quantity_short for n in others),
        "substitute_in_stock": substitute_in_stock,
        "vendor_lead_days": round(vendor_lead_days, 3),
        "lead_fits": in_item_master and vendor_lead_days <= days_to_case,
        "vendor_consignment": vendor_consignment,
        "implant": implant,
        "in_item_master": in_item_master,
    }


def examples(history: Sequence[HistoryRecord]) -> list[Example]:
    """Each coordinator task on a shortage that a person decided with one of the actions:
    the features audited when it opened (``model.predicted`` about the task), labelled with
    the decision. A task decided PROCEED or CANCEL, or opened before the model ran (its
    other facilities' stock then is not in the record), is left out."""
    out: list[Example] = []
    for rec in history:
        if rec.get("workflow") != WORKFLOW_ID:
            continue
        scored = audited_inputs(rec, MODEL.id)
        for t in rec.get("tasks", ()):
            features = scored.get(t.get("task_id"))
            if features and t.get("decision") in ACTIONS:
                out.append((dict(features), str(t["decision"])))
    return out


def baseline(features: Mapping[str, Any]) -> dict[str, float]:
    """Today's rule: expedite when the vendor's lead time fits before the case, else
    reschedule (substitutes and transfers are not considered)."""
    fits = bool(features.get("lead_fits"))
    top, second = (EXPEDITE, RESCHEDULE) if fits else (RESCHEDULE, EXPEDITE)
    return {top: 0.7, second: 0.2, SUBSTITUTE: 0.05, TRANSFER: 0.05}


# Assumed preferences behind the generated decisions (see docs/models/supply_disruption.md):
# utilities of each action, the decision drawn from their softmax.
def _utilities(f: Mapping[str, Any], rng: random.Random) -> dict[str, float]:
    days = float(f["days_to_case"])
    return {
        # a substitute in stock settles it at once, less often for an implant (surgeons
        # prefer their own) and never when the card names none in stock
        SUBSTITUTE: (2.6 - 1.1 * f["implant"]) if f["substitute_in_stock"] else -4.0,
        # a transfer when a sister facility covers it, likelier the nearer the case
        TRANSFER: (1.9 + 0.8 * (days < 4)) if f["transfer_covers"] else -1.5,
        # expedite when the lead time fits, a consignment vendor's rep often brings it
        EXPEDITE: (1.4 if f["lead_fits"] else -0.6)
        + 1.1 * f["vendor_consignment"]
        - 2.5 * (not f["in_item_master"]),
        # reschedule when nothing else works; more acceptable for a case weeks out
        RESCHEDULE: 0.3 + 0.04 * min(days, 30) + 0.3 * rng.random(),
    }


def generate(rng: random.Random, count: int) -> list[HistoryRecord]:
    """Coordinator tasks on a shortage, each decided with one action. Cases 1-30 days out,
    1-6 units short, a 45% chance the card names a substitute in stock, each of two other
    facilities holding 0-8 units, vendor lead 1-21 days, 15% consignment vendors, 60%
    implants, 5% items unknown to the item master; the decision drawn from the softmax of
    the assumed utilities above. Times from 2026-01-01."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[HistoryRecord] = []
    for n in range(count):
        created = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 330))
        known = rng.random() >= 0.05
        short = rng.randint(1, 6)
        f = features_of(
            days_to_case=rng.uniform(1, 30),
            quantity_short=short,
            other_available=[rng.choice((0, 0, 1, 2, 3, 5, 8)) for _ in range(2)],
            substitute_in_stock=rng.random() < 0.45,
            vendor_lead_days=rng.uniform(1, 21) if known else 0.0,
            vendor_consignment=known and rng.random() < 0.15,
            implant=rng.random() < 0.6,
            in_item_master=known,
        )
        u = _utilities(f, rng)
        top = max(u.values())
        weights = [math.exp(u[a] - top) for a in ACTIONS]
        decision = rng.choices(ACTIONS, weights=weights)[0]
        iid = f"gen-{n:05d}"
        facility = "fac-north" if rng.random() < 0.6 else "fac-south"
        task_id = f"task-{iid}"
        out.append(
            {
                "workflow": WORKFLOW_ID,
                "facility_id": facility,
                "instance": {
                    "instance_id": iid,
                    "workflow_id": WORKFLOW_ID,
                    "facility_id": facility,
                },
                "milestones": [],
                "tasks": [
                    {
                        "task_id": task_id,
                        "instance_id": iid,
                        "workflow_id": WORKFLOW_ID,
                        "facility_id": facility,
                        "purpose": PURPOSE,
                        "queue": "care_coordinator",
                        "created_at": created.isoformat(),
                        "completed_at": (
                            created + timedelta(hours=rng.uniform(0.2, 4))
                        ).isoformat(),
                        "allowed_decisions": ["PROCEED", *ACTIONS, "CANCEL"],
                        "decision": decision,
                        "status": "COMPLETED",
                    }
                ],
                "audit": [predicted_entry("supply_disruption", task_id, f)],
            }
        )
    return out


MODEL = ModelDef(
    id="supply_disruption",
    title="Supply disruption: next-best action for a shortage",
    workflow=WORKFLOW_ID,
    owner="Supply chain (the surgical case readiness workflow's owner)",
    features=FEATURES,
    classes=ACTIONS,
    examples=examples,
    baseline=baseline,
    baseline_name="expedite when the vendor's lead time fits before the case, else reschedule",
    metric="mrr",
    margin=0.1,
    generate=generate,
    history_size=3000,
)
