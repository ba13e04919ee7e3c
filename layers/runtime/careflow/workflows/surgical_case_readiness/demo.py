"""The surgical readiness demo: five procedures booked at T0, each a story a hospital knows.

(a) all clear → READY; (b) the payer pends and decides two days later → READY;
(c) an implant is short → requisition, coordinator task escalated after its SLA,
a buyer claims it, the supply chain manager reassigns it to the buyer who transfers
stock and completes it → the re-check decides;
(d) the payer denies → BLOCKED; (e) an expedited pend the payer never answers →
escalated at 48 h, clock expired at 72 h → AT_RISK.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "surgical-case-readiness"
CHILD = "prior-authorization"

# What an operations person reads (careflow.localcloud.demo.Wording).
MILESTONES = {
    "readiness_started": "Readiness check started",
    "benefits_verified": "Benefits verified",
    "clinician_and_room_checked": "Surgeon, anesthesia and room confirmed",
    "sterile_processing_checked": "Sterile processing confirmed",
    "supplies_checked": "Implants and supplies checked",
    "requisition_created": "Replenishment ordered",
    "authorization_submitted": "Authorization submitted to the payer",
    "authorization_pended": "Authorization pended by the payer",
    "authorization_inquired": "Payer asked for its decision",
    "authorization_approved": "Authorization approved",
    "authorization_denied": "Authorization denied",
    "authorization_escalated": "Pended authorization escalated",
    "authorization_clock_expired": "Payer's decision clock ran out",
    "readiness_evaluated": "Readiness evaluated",
    "coordinator_decided": "Coordinator decided",
    "case_ready": "Case ready",
    "case_at_risk": "Case at risk",
    "case_blocked": "Case blocked",
}
OUTCOMES = {
    "READY": "Ready",
    "AT_RISK": "At risk",
    "BLOCKED": "Blocked",
    "APPROVED": "Approved",
    "DENIED": "Denied",
    "PENDED": "Still pended",
}
CAUSES = {
    "authorization_denied": "authorization denied",
    "authorization_clock_expired": "no payer decision in time",
}
DEADLINES = {"authorization_clock_expired": "The payer's decision clock ran out"}

SCENARIOS = (
    Scenario("a", "appt-1001", "all clear"),
    Scenario("b", "appt-1002", "payer pends, decides after 2 days"),
    Scenario("c", "appt-1003", "implant short, coordinator task escalated, stock transferred"),
    Scenario("d", "appt-1004", "payer denies"),
    Scenario("e", "appt-1005", "expedited pend, payer silent for 72 h"),
)


def run(demo: Demo) -> list[CaseReport]:
    from careflow.adapters.sandbox import sandbox
    from careflow.localcloud.demo import Wording, local_time

    sb = sandbox()
    demo.say(f"Booking {len(SCENARIOS)} procedures at T0 = {local_time(demo.t0, 'UTC')}")
    for sc in SCENARIOS:
        case = sb.cases[sc.subject_id]
        key = f"appointment:{sc.subject_id}:booked"
        demo.cloud.book_appointment(
            sc.subject_id, case.scheduled_start, case.facility_id, idempotency_key=key
        )
        demo.started(WORKFLOW, sc.subject_id, key)
        # its authorization runs as a child: the prior authorization workflow
        instance = demo.instance_id(sc.subject_id)
        demo.instances[f"{sc.subject_id}/auth"] = (CHILD, f"{instance}-auth")
    for case_id in ("appt-1001", "appt-1004"):
        demo.cloud.wait_for_execution(demo.arn_when_started(case_id), 60)
    demo.milestone("appt-1002/auth", "pended")
    demo.milestone("appt-1005/auth", "pended")
    task = demo.open_task("appt-1003")
    demo.say(f"  (c) task {task.task_id} opened in {task.queue.replace('_', ' ')}: {task.title}")

    demo.advance(timedelta(hours=5), timer=task.due_at - demo.cloud.clock.now())
    task = demo.open_task("appt-1003", level=1)
    demo.say(f"  (c) task overdue → escalated to {task.queue.replace('_', ' ')}")
    demo.cloud.transfer_stock("IMP-THA-STEM-12", 1, "fac-north", "fac-south")
    demo.say("  (c) supply chain buyer transfers 1 hip stem from North Valley to South Bay")
    demo.claim(task, "user:buyer-cwong")
    demo.reassign(task, "user:supply-mgr-dpatel", "user:buyer-jlee", "jlee arranges transfers")
    demo.say("  (c) buyer cwong claimed it; the supply chain manager reassigned it to buyer jlee")
    demo.decide(task, "user:buyer-jlee", "PROCEED", "stem transferred from fac-north")
    demo.cloud.wait_for_execution(demo.arn("appt-1003"), 60)

    # (e)'s payer is silent: its authorization inquires at 24 h, escalates at 48 h, and
    # its 72 h clock runs out; (b)'s payer decides at 48 h and says so by notification.
    demo.advance(timedelta(hours=19), timer=timedelta(hours=19))
    demo.milestone("appt-1005/auth", "inquired")
    demo.advance(timedelta(hours=24), timer=timedelta(hours=24))
    demo.cloud.wait_for_execution(demo.arn("appt-1002"), 60)
    demo.say(
        "  (b) payer decision arrived by notification, re-read from the payer; case re-evaluated"
    )
    demo.milestone("appt-1005/auth", "pend_escalated")
    demo.say("  (e) 48 h: the pended authorization escalated to utilization review")

    demo.advance(timedelta(hours=24), timer=timedelta(hours=24))
    task = demo.open_task("appt-1005")
    demo.say(f"  (e) 72 h clock expired → task for {task.queue.replace('_', ' ')}")
    demo.claim(task, "user:coordinator-mdiaz")
    demo.decide(task, "user:coordinator-mdiaz", "RESCHEDULE", "no payer decision; moving the case")
    demo.cloud.wait_for_execution(demo.arn("appt-1005"), 60)

    wording = Wording(MILESTONES, OUTCOMES, CAUSES, DEADLINES, start="case start")
    reports = []
    for sc in SCENARIOS:
        case = sb.cases[sc.subject_id]
        code = case.procedure_codes[0]
        reports.append(
            demo.report(
                sc,
                what=code.display or code.code or "",
                facility_id=case.facility_id,
                scheduled_start=case.scheduled_start,
                wording=wording,
            )
        )
    return reports
