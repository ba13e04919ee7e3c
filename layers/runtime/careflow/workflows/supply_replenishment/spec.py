"""Supply replenishment, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.canonical.appointments import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
)
from careflow.kit.spec import Kpi, Schedule, Sla, Trigger, Workflow, step_function
from careflow.workflows.supply_replenishment import kpis
from careflow.workflows.supply_replenishment.events import (
    REVIEW_DUE,
    SOURCE,
    SUPPLY_AT_RISK,
    VENDOR_REPLENISHMENT,
    ReplenishmentReviewDue,
)

_STEPS = "careflow.workflows.supply_replenishment.steps"

SCHEDULING = "careflow.scheduling"
# The surgical schedule's changes: each one reviews the facility (debounced).
CHANGE_EVENTS = {
    "Appointment.Booked": AppointmentBooked,
    "Appointment.Rescheduled": AppointmentRescheduled,
    "Appointment.Cancelled": AppointmentCancelled,
}


def _change(event: Any) -> dict[str, Any]:
    """The change, by appointment id only: the review reads the schedule itself."""
    return {
        "trigger": "change",
        "change": {"detail_type": event.detail_type, "appointment_id": event.data.appointment_id},
        "horizon_days": None,
    }


def _review_due(event: Any) -> dict[str, Any]:
    return {"trigger": "schedule", "change": None, "horizon_days": event.data.horizon_days}


# The facilities whose ERP keeps par levels (the sandbox hospital's; a deployment lists its
# own): each is reviewed daily at 05:00 in its zone, before the day's first cases.
REVIEWED_FACILITIES = ("fac-north", "fac-south")
DAILY_CRON = "cron(0 5 * * ? *)"
TIME_ZONE = "America/Chicago"


def _schedules() -> tuple[Schedule, ...]:
    return tuple(
        Schedule(
            name="ReplenishmentReview" + "".join(p.capitalize() for p in fac.split("-")),
            expression=DAILY_CRON,
            time_zone=TIME_ZONE,
            source=SOURCE,
            detail_type=REVIEW_DUE,
            facility_id=fac,
            description=f"{fac}: supply replenishment reviewed daily at 05:00",
        )
        for fac in REVIEWED_FACILITIES
    )


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="supply-replenishment",
    name="SupplyReplenishment",
    title="Supply replenishment",
    asl="supply_replenishment.asl.json",
    type="STANDARD",
    subject_type="facility_day",
    policy="supply-replenishment",
    steps=(
        _step(
            "StartReplenishmentReview",
            "start_review",
            "Pins the replenishment policy, registers the facility's review",
        ),
        _step(
            "CheckReviewSuperseded",
            "check_superseded",
            "After the debounce: has a later schedule change taken over?",
            store_access=("instances_by_status",),
        ),
        _step(
            "AssessInventory",
            "assess_inventory",
            "Demand and usage vs on hand, par and reorder point: risk and the plan",
            store_access=("instances_by_status",),
            timeout_seconds=60,
        ),
        _step(
            "PlaceReplenishment",
            "place_orders",
            "Places requisitions, expedites, notifies consignment vendors and cases at risk",
            timeout_seconds=60,
        ),
        _step("FinishReplenishmentReview", "finish_review", "Writes the outcome and KPIs"),
    ),
    triggers=(
        Trigger(
            source=SCHEDULING,
            detail_type="Appointment.Booked",
            detail={"data": {"appointment_type": ["procedure"]}},
            build_input=_change,
        ),
        Trigger(source=SCHEDULING, detail_type="Appointment.Rescheduled", build_input=_change),
        Trigger(source=SCHEDULING, detail_type="Appointment.Cancelled", build_input=_change),
        Trigger(source=SOURCE, detail_type=REVIEW_DUE, build_input=_review_due),
    ),
    schedules=_schedules(),
    event_schemas={**CHANGE_EVENTS, REVIEW_DUE: ReplenishmentReviewDue},
    slas=(
        Sla("approval_task", 4 * 3600, "an approver acts on a requisition above the threshold"),
        Sla("change_debounce", 30 * 60, "a schedule change is reviewed after this quiet time"),
    ),
    kpis=(
        Kpi("RequisitionsPlaced", "Count", "replenishment requisitions placed in the ERP"),
        Kpi("RequisitionsExpedited", "Count", "requisitions expedited for a booked case"),
        Kpi("CasesAtSupplyRisk", "Count", "booked cases whose item is likely short"),
        Kpi("ConsignmentVendorsNotified", "Count", "consignment vendors asked to replenish"),
    ),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.supply_replenishment.kpis:values",
    publishes=(SUPPLY_AT_RISK, VENDOR_REPLENISHMENT),
    demo="careflow.workflows.supply_replenishment.demo:run",
    bench="careflow.workflows.supply_replenishment.bench:case",
)
