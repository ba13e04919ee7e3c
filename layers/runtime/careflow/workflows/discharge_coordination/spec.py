"""Discharge coordination, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function
from careflow.workflows.discharge_coordination import kpis
from careflow.workflows.discharge_coordination.events import (
    ADMIT_CANCELLED,
    CONCLUDED,
    DISCHARGE_CANCELLED,
    DISCHARGE_PENDING,
    DISCHARGED,
    SOURCE,
    EncounterAdmitCancelled,
    EncounterDischargeCancelled,
    EncounterDischarged,
    EncounterDischargePending,
)

_STEPS = "careflow.workflows.discharge_coordination.steps"


def _input(event: Any) -> dict[str, Any]:
    """What the workflow takes from the A16: the encounter, where the patient goes and when.
    The patient's identifier goes to the instance record, never the execution's state."""
    data = event.data
    return {
        "encounter_id": data.encounter_id,
        "disposition": data.disposition,
        "expected_discharge_at": (
            data.expected_discharge_at.isoformat() if data.expected_discharge_at else None
        ),
        "patient_id": data.patient_id,
        "patient_id_authority": data.patient_id_authority,
    }


def _encounter(event: Any) -> str:
    """The subject: the encounter (PV1-19), one coordination per facility and encounter."""
    return str(event.data.encounter_id)


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="discharge-coordination",
    name="DischargeCoordination",
    title="Discharge coordination",
    asl="discharge_coordination.asl.json",
    type="STANDARD",
    subject_type="encounter",
    policy="discharge-coordination",
    steps=(
        _step("RegisterDischarge", "register_discharge", "Records the discharge, pins its policy"),
        _step("BookTransport", "book_transport", "Books the ride with a transport vendor"),
        _step("OrderMedsToBeds", "order_meds_to_beds", "Discharge medications to the bedside"),
        _step("OrderDme", "order_dme", "Durable medical equipment ordered through the ERP"),
        _step(
            "RequestPostAcuteAuthorization",
            "request_post_acute_authorization",
            "Home-care or facility authorization: the coverage, then a child or a person",
        ),
        _step(
            "RecordPostAcuteAuthorization",
            "record_post_acute_authorization",
            "The prior authorization workflow's outcome as the dependency",
        ),
        _step(
            "CheckBillingReadiness",
            "check_billing_readiness",
            "The encounter's coverage, active with its payer",
        ),
        _step(
            "RecordDischargeDependency", "record_dependency_error", "Records a failed arrangement"
        ),
        _step("EvaluateDischarge", "evaluate_discharge", "Which dependencies threaten the time"),
        _step("ApplyCaseManagerDecision", "apply_case_manager_decision", "Records the decision"),
        _step("CheckDeparture", "check_departure", "Has the patient left (A03)?"),
        _step("FinalizeDischarge", "finalize_discharge", "Order-to-departure time and delays"),
    ),
    triggers=(
        Trigger(
            source=SOURCE,
            detail_type=DISCHARGE_PENDING,
            build_input=_input,
            subject=_encounter,
            reopens=True,  # a new A16 after an A13 (the patient is back) starts again
        ),
        # A03 records the departure on the running instance (a milestone the execution
        # looks for); with no instance (an A03 before its A16) it is kept as unrouted.
        Trigger(source=SOURCE, detail_type=DISCHARGED, subject=_encounter, effect="update"),
        Trigger(source=SOURCE, detail_type=ADMIT_CANCELLED, subject=_encounter, effect="stop"),
        Trigger(source=SOURCE, detail_type=DISCHARGE_CANCELLED, subject=_encounter, effect="stop"),
    ),
    event_schemas={
        DISCHARGE_PENDING: EncounterDischargePending,
        DISCHARGED: EncounterDischarged,
        ADMIT_CANCELLED: EncounterAdmitCancelled,
        DISCHARGE_CANCELLED: EncounterDischargeCancelled,
    },
    slas=(
        Sla("case_manager_task", 3600, "a case manager acts on a threatened discharge"),
        Sla("threat_lead", 3600, "dependencies are met this long before the expected discharge"),
    ),
    kpis=(
        Kpi("OrderToDepartureSeconds", "Seconds", "from the pending discharge (A16) to departure"),
        Kpi("DischargedBeforeNoon", "Count", "departures before noon, facility time"),
        Kpi("Discharged", "Count", "departures (the share before noon divides by it)"),
        Kpi("DischargeDelayMinutes", "Count", "delay minutes (by cause: Discharge.Concluded)"),
        Kpi("DischargesThreatened", "Count", "discharges whose expected time was threatened"),
        Kpi("HumanTasksEscalated", "Count", "tasks escalated for breaching their SLA"),
    ),
    children=("prior-authorization",),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.discharge_coordination.kpis:values",
    publishes=(CONCLUDED,),
    models=("careflow.workflows.discharge_coordination.model:MODEL",),
    demo="careflow.workflows.discharge_coordination.demo:run",
    bench="careflow.workflows.discharge_coordination.bench:case",
)
