"""Surgical case readiness, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.canonical.appointments import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentRescheduled,
)
from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function

_STEPS = "careflow.workflows.surgical_case_readiness.steps"


def _input(event: Any) -> dict[str, Any]:
    """What the workflow takes from ``Appointment.Booked``: the appointment is the case."""
    from careflow.events.envelope import EnvelopeError

    data = event.data
    if not isinstance(data, AppointmentBooked) or data.appointment_type != "procedure":
        raise EnvelopeError("detail.data.appointment_type: only procedures need readiness")
    return {"case_id": data.appointment_id}


def _appointment(event: Any) -> str:
    """The subject: the appointment is the case (one readiness instance per appointment)."""
    return str(event.data.appointment_id)


def _new_start(event: Any) -> dict[str, Any]:
    """A reschedule moves the case: the instance record takes the new start."""
    return {"scheduled_start": event.data.scheduled_start}


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="surgical-case-readiness",
    name="SurgicalCaseReadiness",
    title="Surgical case readiness",
    asl="surgical_case_readiness.asl.json",
    type="STANDARD",
    subject_type="case",
    policy="surgical-readiness",
    steps=(
        _step("RegisterCase", "register_case", "Records the case and its milestones"),
        _step(
            "RecordAuthorization",
            "record_authorization",
            "The prior authorization workflow's outcome as a dependency",
        ),
        _step("VerifyBenefits", "verify_benefits", "CoverageEligibility check"),
        _step(
            "CheckClinicianAndRoom",
            "check_clinician_and_room",
            "Surgeon, anesthesia and OR availability",
        ),
        _step("CheckSupplies", "check_supplies", "Implants and case-cart supplies on hand"),
        _step("CreateRequisition", "create_requisitions", "Procurement requisition for a shortage"),
        _step("CheckSterileProcessing", "check_sterile_processing", "Instrument tray readiness"),
        _step("RecordDependency", "record_dependency_error", "Records a failed dependency check"),
        _step("EvaluateReadiness", "evaluate_readiness", "READY / AT_RISK / BLOCKED"),
        _step(
            "ApplyCoordinatorDecision",
            "apply_coordinator_decision",
            "Re-checks the case after a coordinator's decision",
        ),
        _step("FinalizeCase", "finalize_case", "Writes the outcome and its reasons"),
    ),
    triggers=(
        Trigger(
            source="careflow.scheduling",
            detail_type="Appointment.Booked",
            detail={"data": {"appointment_type": ["procedure"]}},
            build_input=_input,
            subject=_appointment,
        ),
        Trigger(
            source="careflow.scheduling",
            detail_type="Appointment.Rescheduled",
            build_input=_new_start,
            subject=_appointment,
            effect="update",
        ),
        Trigger(
            source="careflow.scheduling",
            detail_type="Appointment.Cancelled",
            subject=_appointment,
            effect="stop",
        ),
    ),
    event_schemas={
        "Appointment.Booked": AppointmentBooked,
        "Appointment.Rescheduled": AppointmentRescheduled,
        "Appointment.Cancelled": AppointmentCancelled,
    },
    children=("prior-authorization",),
    models=("careflow.workflows.surgical_case_readiness.supply_disruption:MODEL",),
    slas=(
        Sla("coordinator_task", 4 * 3600, "a coordinator acts on a threatened case"),
        Sla("hard_stop", 72 * 3600, "readiness must be settled this long before the case"),
    ),
    kpis=(
        Kpi("CasesReady", "Count", "cases found READY"),
        Kpi("CasesAtRisk", "Count", "cases found AT_RISK"),
        Kpi("CasesBlocked", "Count", "cases found BLOCKED"),
        Kpi("RequisitionsCreated", "Count", "shortages turned into requisitions"),
        Kpi("HumanTasksEscalated", "Count", "tasks escalated for breaching their SLA"),
    ),
    publishes=("Case.Ready", "Case.AtRisk", "Case.Blocked"),
    demo="careflow.workflows.surgical_case_readiness.demo:run",
    bench="careflow.workflows.surgical_case_readiness.bench:case",
)
