"""Surgical case readiness, one function per state-machine step.

Each takes the step's input (a small JSON object the ASL selects), the ports it
needs and ``now``; it returns the step's JSON output. Handlers in ``lambdas/`` only
wire ports to these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from careflow.canonical.cases import SurgicalCase
from careflow.canonical.dependencies import (
    OUTCOME_EVENTS,
    DependencyResult,
    DependencyStatus,
    Outcome,
)
from careflow.canonical.payer import (
    AuthDecision,
    EligibilityRequest,
    PriorAuthRequest,
    PriorAuthResponse,
)
from careflow.domain import readiness as r
from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone
from careflow.domain.tasks import open_task
from careflow.ports import (
    EhrPort,
    ErpPort,
    EventPublisher,
    PayerPort,
    StateStore,
    SterileProcessingPort,
    WorkflowEngine,
)

WORKFLOW_ID = "surgical-case-readiness"


def _milestone(
    store: StateStore,
    instance_id: str,
    name: str,
    now: datetime,
    status: str = "DONE",
    detail: str = "",
) -> None:
    store.record_milestone(
        Milestone(instance_id=instance_id, name=name, at=now, status=status, detail=detail)
    )


def _dump(result: DependencyResult) -> dict[str, Any]:
    return result.model_dump(mode="json")


def _checked(
    store: StateStore,
    event: Mapping[str, Any],
    name: str,
    result: DependencyResult,
    now: datetime,
    *,
    unless_ok: str,
) -> dict[str, Any]:
    """Records a check's milestone (DONE if the dependency is OK, else ``unless_ok``) and
    returns its result as the step's output."""
    _milestone(
        store,
        event["instance_id"],
        name,
        now,
        status="DONE" if result.status is DependencyStatus.OK else unless_ok,
    )
    return _dump(result)


def register_case(
    event: Mapping[str, Any], *, store: StateStore, ehr: EhrPort, now: datetime
) -> dict[str, Any]:
    """Fetches the case from the EHR, records the instance, resolves the case's timers."""
    case = ehr.get_surgical_case(event["case_id"])
    policy = r.case_policy(case, event["sla"])
    store.put_instance(
        Instance(
            instance_id=event["instance_id"],
            workflow_id=WORKFLOW_ID,
            subject_type="case",
            subject_id=case.case_id,
            facility_id=case.facility_id,
            status=InstanceStatus.RUNNING,
            started_at=now,
            updated_at=now,
            correlation_id=event["correlation_id"],
            execution_name=event["instance_id"],
        ),
        with_entries=[
            Milestone(
                instance_id=event["instance_id"],
                name="readiness_started",
                at=now,
                detail=f"case {case.case_id} on {case.scheduled_start.isoformat()}",
            )
        ],
    )
    return {
        "workflow_id": event.get("workflow_id", WORKFLOW_ID),
        "instance_id": event["instance_id"],
        "correlation_id": event["correlation_id"],
        "case": case.model_dump(mode="json"),
        "policy": policy.model_dump(mode="json"),
    }


def _eligibility_request(case: SurgicalCase) -> EligibilityRequest:
    return EligibilityRequest(
        case_id=case.case_id,
        patient_ref=case.patient_ref,
        coverage_ref=case.coverage_ref,
        payer_id=case.payer_id,
        service_date=case.scheduled_start,
        procedure_codes=case.procedure_codes,
    )


def _case(payload: Mapping[str, Any]) -> SurgicalCase:
    return SurgicalCase.model_validate(payload["case"])


def submit_prior_auth(
    event: Mapping[str, Any], *, store: StateStore, payer: PayerPort, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    if not case.auth_required:
        response = PriorAuthResponse(decision=AuthDecision.NOT_REQUIRED)
    else:
        response = payer.submit_prior_auth(
            PriorAuthRequest(
                case_id=case.case_id,
                patient_ref=case.patient_ref,
                coverage_ref=case.coverage_ref,
                payer_id=case.payer_id,
                facility_id=case.facility_id,
                procedure_codes=case.procedure_codes,
                service_date=case.scheduled_start,
                priority=case.priority,
            )
        )
    result = r.authorization_result(response)
    name = {AuthDecision.PENDED: "authorization_pended"}.get(
        response.decision, f"authorization_{response.decision.value.lower()}"
    )
    store.record(
        Milestone(
            instance_id=event["instance_id"],
            name="authorization_submitted",
            at=now,
            detail=f"preauth {response.preauth_ref}",
        ),
        Milestone(
            instance_id=event["instance_id"],
            name=name,
            at=now + timedelta(microseconds=1),
            status="PENDING" if response.decision is AuthDecision.PENDED else "DONE",
        ),
    )
    return {
        "decision": response.decision.value,
        "preauth_ref": response.preauth_ref,
        "submitted_at": now.isoformat(),
        "result": _dump(result),
    }


def await_payer_decision(
    event: Mapping[str, Any],
    *,
    store: StateStore,
    engine: WorkflowEngine,
    publisher: EventPublisher,
    now: datetime,
) -> dict[str, Any]:
    """Parks the task token under the pended authorization's reference.

    If the payer's answer already came (it can overtake us), resumes at once.
    On the escalation pass, also opens an informational task for utilization review.
    """
    ref = event["preauth_ref"]
    instance_id = event["instance_id"]
    if event.get("escalated"):
        case = _case(event)
        open_task(
            store,
            publisher,
            instance_id=instance_id,
            workflow_id=WORKFLOW_ID,
            facility_id=case.facility_id,
            purpose=f"pend-overdue:{ref}",
            title=f"Payer decision on {ref} overdue: contact the payer",
            reasons=(f"authorization {ref} pended since {event['submitted_at']}",),
            subject_ref=f"case/{case.case_id}",
            escalation_chain=("utilization_review_nurse", "department_director"),
            due_in_seconds=int(event["policy"]["pend_remaining_s"]),
            token=None,
            allowed_decisions=(),
            now=now,
        )
        _milestone(
            store,
            instance_id,
            "authorization_escalated",
            now,
            status="ESCALATED",
            detail=f"no payer decision on {ref} yet",
        )
    early = store.take_early_answer(ref)
    if early is not None:
        engine.send_task_success(event["token"], early)
        return {"resumed": True}
    store.put_wait(ref, event["token"], instance_id, now)
    return {"waiting": True}


def payer_decided(event: Mapping[str, Any], *, store: StateStore, now: datetime) -> dict[str, Any]:
    """The step after the payer's decision arrived: its dependency result."""
    decision = event["payer"]
    response = PriorAuthResponse(
        decision=AuthDecision(decision["decision"]), preauth_ref=decision["preauth_ref"]
    )
    result = r.authorization_result(response)
    _milestone(
        store,
        event["instance_id"],
        f"authorization_{response.decision.value.lower()}",
        now,
        detail=f"payer decided {response.preauth_ref}",
    )
    return _dump(result)


def pend_expired(event: Mapping[str, Any], *, store: StateStore, now: datetime) -> dict[str, Any]:
    policy = event["policy"]
    hours = (int(policy["pend_escalation_s"]) + int(policy["pend_remaining_s"])) / 3600
    result = r.pend_expired_result(event["auth"]["preauth_ref"], hours)
    _milestone(
        store,
        event["instance_id"],
        "authorization_clock_expired",
        now,
        status="FAILED",
        detail=f"{hours:g} h without a payer decision",
    )
    return _dump(result)


def verify_benefits(
    event: Mapping[str, Any], *, store: StateStore, payer: PayerPort, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    response = payer.check_eligibility(_eligibility_request(case))
    result = r.benefits_result(response)
    return _checked(store, event, "benefits_verified", result, now, unless_ok="FAILED")


def check_clinician_and_room(
    event: Mapping[str, Any], *, store: StateStore, ehr: EhrPort, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    result = r.clinician_and_room_result(
        ehr.appointment_participants(case.appointment_id), case, now
    )
    return _checked(store, event, "clinician_and_room_checked", result, now, unless_ok="PENDING")


def check_supplies(
    event: Mapping[str, Any], *, store: StateStore, erp: ErpPort, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    policy = r.Policy.model_validate(event["policy"])
    positions = erp.stock_positions(case.facility_id, [n.item_id for n in case.supplies])
    shortages = r.find_shortages(case, positions)
    requests = r.requisitions_for(case, shortages, policy)
    _milestone(
        store,
        event["instance_id"],
        "supplies_checked",
        now,
        status="DONE" if not shortages else "PENDING",
        detail=f"{len(shortages)} shortage(s)",
    )
    return {
        "shortages": [s.model_dump(mode="json") for s in shortages],
        "requisitions_needed": [q.model_dump(mode="json") for q in requests],
        "needs_requisition": bool(requests),
        "result": _dump(r.supplies_result(shortages, (), policy)),
    }


def create_requisitions(
    event: Mapping[str, Any], *, store: StateStore, erp: ErpPort, now: datetime
) -> dict[str, Any]:
    from careflow.canonical.supply import RequisitionRequest

    policy = r.Policy.model_validate(event["policy"])
    shortages = [r.Shortage.model_validate(s) for s in event["supplies"]["shortages"]]
    created = []
    for raw in event["supplies"]["requisitions_needed"]:
        req = erp.create_requisition(RequisitionRequest.model_validate(raw))
        created.append(req)
        _milestone(
            store,
            event["instance_id"],
            "requisition_created",
            now,
            detail=f"{req.requisition_id} expected {req.expected_delivery.isoformat()}",
        )
    store.record_audit(
        AuditEntry(
            instance_id=event["instance_id"],
            at=now,
            actor="system:readiness",
            action="requisition_created",
            reason="implant or supply shortage",
            detail={"requisitions": [q.requisition_id for q in created]},
        )
    )
    return _dump(r.supplies_result(shortages, created, policy))


def check_sterile_processing(
    event: Mapping[str, Any], *, store: StateStore, sterile: SterileProcessingPort, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    policy = r.Policy.model_validate(event["policy"])
    trays = sterile.tray_status(case.facility_id, case.tray_ids)
    result = r.sterile_result(trays, case, policy)
    return _checked(store, event, "sterile_processing_checked", result, now, unless_ok="PENDING")


def record_dependency_error(
    event: Mapping[str, Any], *, store: StateStore, now: datetime
) -> dict[str, Any]:
    """A check's Catch: the dependency becomes ERROR (a person verifies it by hand)."""
    error = event.get("error") or {}
    name = str(error.get("Error", "Error"))
    result = r.error_result(event["dependency"], name)
    _milestone(
        store,
        event["instance_id"],
        f"{event['dependency']}_check_failed",
        now,
        status="FAILED",
        detail=name,
    )
    store.record_audit(
        AuditEntry(
            instance_id=event["instance_id"],
            at=now,
            actor="system:readiness",
            action="dependency_check_failed",
            reason=name,
            detail={"dependency": event["dependency"]},
        )
    )
    return _dump(result)


def _results(raw: Sequence[Mapping[str, Any]]) -> list[DependencyResult]:
    return [DependencyResult.model_validate(x) for x in raw]


def evaluate_readiness(
    event: Mapping[str, Any], *, store: StateStore, now: datetime
) -> dict[str, Any]:
    case = _case(event)
    evaluation = r.evaluate(_results(event["dependencies"]))
    _milestone(
        store, event["instance_id"], "readiness_evaluated", now, detail=evaluation.outcome.value
    )
    out = evaluation.model_dump(mode="json")
    if evaluation.needs_coordinator:
        out["task"] = {
            "purpose": "coordinator",
            "title": f"Case {case.case_id} at risk: decide before the hard stop",
            "reasons": list(evaluation.reasons),
            "escalation_chain": [r.COORDINATOR_QUEUE, *evaluation.escalation_chain],
            "allowed_decisions": list(r.COORDINATOR_DECISIONS),
            "subject_ref": f"case/{case.case_id}",
            "facility_id": case.facility_id,
        }
    return out


def apply_coordinator_decision(
    event: Mapping[str, Any],
    *,
    store: StateStore,
    ehr: EhrPort,
    payer: PayerPort,
    erp: ErpPort,
    sterile: SterileProcessingPort,
    now: datetime,
) -> dict[str, Any]:
    """Re-checks what was threatened, then settles the outcome the data supports."""
    case = _case(event)
    policy = r.Policy.model_validate(event["policy"])
    decision = event["coordinator"]["decision"]
    note = str(event["coordinator"].get("note", ""))
    rechecked: list[DependencyResult] = []
    for dep in _results(event["dependencies"]):
        if dep.status in (DependencyStatus.OK, DependencyStatus.BLOCKED) or decision == "CANCEL":
            rechecked.append(dep)
        elif dep.dependency == r.SUPPLIES:
            positions = erp.stock_positions(case.facility_id, [n.item_id for n in case.supplies])
            shortages = r.find_shortages(case, positions)
            rechecked.append(dep if shortages else r.supplies_result((), (), policy))
        elif dep.dependency == r.STERILE_PROCESSING:
            rechecked.append(
                r.sterile_result(sterile.tray_status(case.facility_id, case.tray_ids), case, policy)
            )
        elif dep.dependency == r.CLINICIAN_AND_ROOM:
            rechecked.append(
                r.clinician_and_room_result(
                    ehr.appointment_participants(case.appointment_id), case, now
                )
            )
        elif dep.dependency == r.BENEFITS:
            rechecked.append(r.benefits_result(payer.check_eligibility(_eligibility_request(case))))
        else:  # an authorization is not re-submitted: the payer's answer stands
            rechecked.append(dep)
    evaluation = r.after_coordinator(decision, rechecked, note)
    _milestone(
        store,
        event["instance_id"],
        "coordinator_decided",
        now,
        detail=f"{decision}: {evaluation.outcome.value}",
    )
    return {**evaluation.model_dump(mode="json"), "dependencies": [_dump(d) for d in rechecked]}


def finalize_case(
    event: Mapping[str, Any], *, store: StateStore, publisher: EventPublisher, now: datetime
) -> dict[str, Any]:
    """Writes the outcome; opens follow-up work for a blocked case; returns the outcome event."""
    case = _case(event)
    evaluation = event["evaluation"]
    outcome = Outcome(evaluation["outcome"])
    reasons = tuple(evaluation.get("reasons", ()))
    if event.get("escalation_exhausted"):
        outcome = Outcome.AT_RISK
        reasons = (*reasons, "no decision from the escalation chain before its last SLA")
    name = {
        Outcome.READY: "case_ready",
        Outcome.AT_RISK: "case_at_risk",
        Outcome.BLOCKED: "case_blocked",
    }[outcome]
    entries = (
        Milestone(
            instance_id=event["instance_id"],
            name=name,
            at=now,
            status="DONE" if outcome is Outcome.READY else "FAILED",
        ),
        AuditEntry(
            instance_id=event["instance_id"],
            at=now,
            actor="system:readiness",
            action="outcome",
            reason="; ".join(reasons),
            policy_version=str(event["policy"].get("policy_version", "v1")),
            detail={"outcome": outcome.value},
        ),
    )
    instance = store.get_instance(event["instance_id"])
    if instance is None:
        store.record(*entries)
    else:
        store.update_instance(
            instance.model_copy(
                update={
                    "status": InstanceStatus(outcome.value),
                    "updated_at": now,
                    "outcome_reasons": reasons,
                }
            ),
            with_entries=entries,
        )
    if outcome is Outcome.BLOCKED:
        open_task(
            store,
            publisher,
            instance_id=event["instance_id"],
            workflow_id=WORKFLOW_ID,
            facility_id=case.facility_id,
            purpose="blocked-follow-up",
            title=f"Case {case.case_id} blocked: appeal, re-submit or reschedule",
            reasons=reasons,
            subject_ref=f"case/{case.case_id}",
            escalation_chain=("utilization_review_nurse", "scheduler", "department_director"),
            due_in_seconds=int(event["policy"]["coordinator_task_s"]),
            token=None,
            allowed_decisions=(),
            now=now,
        )
    detail = {
        "metadata": {
            "event_id": f"{event['instance_id']}:{outcome.value}",
            "idempotency_key": f"{event['instance_id']}:outcome",
            "facility_id": case.facility_id,
            "occurred_at": now.isoformat(),
            "schema_version": "1.0",
            "correlation_id": event["correlation_id"],
        },
        "data": {
            "case_id": case.case_id,
            "instance_id": event["instance_id"],
            "outcome": outcome.value,
            "reasons": list(reasons),
            "scheduled_start": case.scheduled_start.isoformat(),
        },
    }
    return {
        "outcome": outcome.value,
        "reasons": list(reasons),
        "detail_type": OUTCOME_EVENTS[outcome],
        "detail": detail,
    }
