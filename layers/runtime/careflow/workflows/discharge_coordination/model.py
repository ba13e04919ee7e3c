"""Discharge delay: at the pending discharge (A16), the chance the discharge slips and its
likely cause.

Learns from the workflow's own concluded discharges: a departure with no delay recorded was
``on_time``; one with delays is labelled by the dependency whose delay was longest (the
``delay_recorded`` audit entries finalize writes, in the workflow's own dependency names).
It sees the disposition code, which dependencies the policy says it needs, how far and at
what hour the expected discharge is, and whether that falls on a weekend; never the patient,
the encounter or the facility. The baseline it must beat is today's rules at the A16: they
predict nothing before the threat line, so every discharge is ``on_time`` (the majority).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from careflow.facilities import zone_of
from careflow.ml.features import Feature
from careflow.ml.history import audited_inputs
from careflow.ml.registry import Example, HistoryRecord, ModelDef
from careflow.workflows.discharge_coordination import rules as r

ON_TIME = "on_time"
WORKFLOW_ID = "discharge-coordination"
# The causes: the dependencies that hold a departure (billing never does, rules.HOLDS_DEPARTURE).
CAUSES = r.HOLDS_DEPARTURE
CLASSES = (ON_TIME, *CAUSES)

FEATURES = (
    Feature("disposition", "category", "the discharge disposition code (PV1-36, HL7 0112)"),
    *(
        Feature(f"needs_{d}", "flag", f"the policy says the discharge needs {d}")
        for d in r.DEPENDENCIES
    ),
    Feature("hours_to_expected", "number", "hours from the A16 to the expected discharge"),
    Feature("expected_hour", "number", "the expected discharge's hour of day, facility time"),
    Feature("weekend", "flag", "the expected discharge falls on a Saturday or Sunday"),
)


def features_of(
    *,
    disposition: str | None,
    needs: Iterable[str],
    ordered_at: datetime,
    expected_at: datetime,
    time_zone: str,
) -> dict[str, Any]:
    """The model's input: codes, flags and times; nothing that names anyone."""
    local = expected_at.astimezone(ZoneInfo(time_zone))
    wanted = set(needs)
    return {
        "disposition": disposition or "",
        **{f"needs_{d}": d in wanted for d in r.DEPENDENCIES},
        "hours_to_expected": round((expected_at - ordered_at).total_seconds() / 3600, 3),
        "expected_hour": local.hour,
        "weekend": local.weekday() >= 5,
    }


def _dt(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _pending(milestones: Sequence[Mapping[str, Any]]) -> tuple[str, datetime, datetime] | None:
    """(disposition, ordered_at, expected_at) from the ``discharge_pending`` milestone, whose
    detail register writes as ``encounter E disposition D expected ISO[ (policy default)]``."""
    for m in milestones:
        if m.get("name") != "discharge_pending":
            continue
        words = str(m.get("detail", "")).split()
        try:
            disposition = words[words.index("disposition") + 1]
            expected = _dt(words[words.index("expected") + 1])
        except (ValueError, IndexError):
            return None
        return ("" if disposition == "-" else disposition), _dt(m["at"]), expected
    return None


def _needs(milestones: Sequence[Mapping[str, Any]]) -> set[str]:
    """The dependencies the discharge arranged (``<dependency>_arranged``, ``_failed``,
    ``_waiting``; billing's ``billing_ready``/``billing_not_ready``)."""
    names = {str(m.get("name", "")) for m in milestones}
    found = {
        d
        for d in r.DEPENDENCIES
        if {f"{d}_arranged", f"{d}_failed", f"{d}_waiting", f"{d}_requested"} & names
    }
    if {"billing_ready", "billing_not_ready"} & names:
        found.add(r.BILLING)
    return found


def label_of(audit: Sequence[Mapping[str, Any]]) -> str:
    """The longest recorded delay's dependency, ``on_time`` with none."""
    delays = [
        a.get("detail", {})
        for a in audit
        if a.get("action") == "delay_recorded" and a.get("detail", {}).get("dependency") in CAUSES
    ]
    if not delays:
        return ON_TIME
    longest = max(delays, key=lambda d: (int(d.get("minutes", 0)), str(d["dependency"])))
    return str(longest["dependency"])


def examples(history: Sequence[HistoryRecord]) -> list[Example]:
    """Each discharge that ended DISCHARGED: its features as scored at the A16 (the audit
    keeps them), or as its milestones tell them for one registered before the model ran;
    labelled by its recorded delays. NOT_DISCHARGED and running ones have no answer."""
    out: list[Example] = []
    for rec in history:
        inst = rec.get("instance") or {}
        if rec.get("workflow") != WORKFLOW_ID or inst.get("outcome") != "DISCHARGED":
            continue
        audit = rec.get("audit", ())
        features = next(iter(audited_inputs(rec, MODEL.id).values()), None)
        if features is None:
            milestones = rec.get("milestones", ())
            pending = _pending(milestones)
            if pending is None:
                continue
            disposition, ordered_at, expected_at = pending
            features = features_of(
                disposition=disposition,
                needs=_needs(milestones),
                ordered_at=ordered_at,
                expected_at=expected_at,
                time_zone=str(inst.get("time_zone") or zone_of(str(rec.get("facility_id"))).key),
            )
        out.append((dict(features), label_of(audit)))
    return out


def baseline(features: Mapping[str, Any]) -> dict[str, float]:
    """Today's rules at the A16: nothing threatens yet, every discharge is on time."""
    return {c: 1.0 if c == ON_TIME else 0.0 for c in CLASSES}


# (disposition, share of discharges, needs) as the enterprise discharge policy has them.
_DISPOSITIONS = (
    ("01", 0.52, ("transport", "pharmacy", "billing")),
    ("06", 0.18, ("transport", "pharmacy", "dme", "post_acute_authorization", "billing")),
    ("03", 0.14, ("transport", "post_acute_authorization", "billing")),
    ("62", 0.08, ("transport", "post_acute_authorization", "billing")),
    ("50", 0.05, ("transport", "pharmacy", "dme", "billing")),
    ("07", 0.03, ("billing",)),
)


def _delay_logit(dep: str, *, hour: int, weekend: bool, hours: float) -> float:
    """Assumed effects (docs/models/discharge_delay.md): payers and post-acute beds are slow
    at weekends and on short notice; DME is slow at weekends; the pharmacy's discharge fills
    run late before 10:00; rides are short early, late in the day and at weekends."""
    if dep == r.POST_ACUTE_AUTHORIZATION:
        return -1.0 + 1.6 * weekend + 1.3 * (hours < 18) - 0.01 * hours
    if dep == r.DME:
        return -1.6 + 1.5 * weekend + 0.6 * (hours < 12)
    if dep == r.PHARMACY:
        return -2.2 + 2.0 * (hour < 10) + 0.4 * weekend
    return -2.4 + 1.8 * (hour >= 16 or hour < 8) + 0.6 * weekend  # transport


def generate(rng: random.Random, count: int) -> list[HistoryRecord]:
    """Discharges as the workflow records them (instance outcome, milestones, delay_recorded
    audit entries): dispositions in the shares above, the A16 received 4 to 40 hours before
    the expected discharge (07:00-19:00 facility time), each needed dependency late
    with the chance :func:`_delay_logit` gives and by 20 to 240 minutes. 8 % never leave
    (NOT_DISCHARGED: no label). Times from 2026-01-01; no identifiers but generated ids."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    weights = [w for _, w, _ in _DISPOSITIONS]
    out: list[HistoryRecord] = []
    for n in range(count):
        code, _, needs = rng.choices(_DISPOSITIONS, weights=weights)[0]
        facility = "fac-north" if rng.random() < 0.6 else "fac-south"
        tz = zone_of(facility)
        day = (start + timedelta(days=rng.randrange(330))).astimezone(tz).date()
        expected = datetime(day.year, day.month, day.day, rng.randint(7, 19), tzinfo=tz)
        hours = rng.uniform(4, 40)
        ordered = (expected - timedelta(hours=hours)).astimezone(UTC)
        weekend = expected.weekday() >= 5
        iid = f"gen-dc-{n:05d}"
        milestones: list[dict[str, Any]] = [
            {
                "instance_id": iid,
                "name": "discharge_pending",
                "at": ordered.isoformat(),
                "status": "DONE",
                "detail": f"encounter enc-{iid} disposition {code} expected "
                + expected.isoformat(),
            }
        ]
        audit: list[dict[str, Any]] = []
        for dep in needs:
            name = "billing_ready" if dep == r.BILLING else f"{dep}_arranged"
            milestones.append(
                {"instance_id": iid, "name": name, "at": ordered.isoformat(), "status": "DONE"}
            )
            if dep == r.BILLING:
                continue
            logit = _delay_logit(dep, hour=expected.hour, weekend=weekend, hours=hours)
            if rng.random() < 1 / (1 + math.exp(-logit)):
                audit.append(
                    {
                        "instance_id": iid,
                        "action": "delay_recorded",
                        "reason": dep,
                        "detail": {"dependency": dep, "minutes": rng.randint(20, 240)},
                    }
                )
        gone = rng.random() >= 0.08
        late = max((a["detail"]["minutes"] for a in audit), default=0)
        if gone:
            departed = expected + timedelta(minutes=late or -rng.randint(0, 90))
            milestones.append(
                {"instance_id": iid, "name": "discharged", "at": departed.isoformat()}
            )
        out.append(
            {
                "workflow": WORKFLOW_ID,
                "facility_id": facility,
                "instance": {
                    "instance_id": iid,
                    "workflow_id": WORKFLOW_ID,
                    "facility_id": facility,
                    "status": "COMPLETED",
                    "outcome": "DISCHARGED" if gone else "NOT_DISCHARGED",
                },
                "milestones": milestones,
                "tasks": [],
                "audit": audit if gone else [],
            }
        )
    return out


MODEL = ModelDef(
    id="discharge_delay",
    title="Discharge delay risk and its likely cause, at the pending discharge",
    workflow=WORKFLOW_ID,
    owner="Case management (the discharge coordination workflow's owner)",
    features=FEATURES,
    classes=CLASSES,
    examples=examples,
    baseline=baseline,
    baseline_name="today's rules at the A16 (nothing threatened yet: on_time, the majority)",
    metric="macro_f1",
    margin=0.1,
    generate=generate,
    history_size=4000,
    ok_class=ON_TIME,
)
