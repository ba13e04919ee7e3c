"""The discharge coordination demo: three pending discharges (A16) at T0.

(f) home, everything in time: transport booked for the expected time, meds at the bedside
an hour before → the patient leaves (A03) before it → DISCHARGED on time;
(g) home hospice: the transport vendor can come only an hour late and the oxygen
concentrator is delivered four hours late → the discharge is threatened, a case manager
is asked and decides to expedite; the patient leaves when the equipment arrives →
DISCHARGED late, its delays recorded as "awaiting transport" and "DME" with their owners
and minutes;
(h) home health: the home-health authorization goes to the payer through the prior
authorization workflow (a child execution); the payer pends it and approves it 90 minutes
later, before the threat line → the patient leaves on time.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "discharge-coordination"
SOURCE = "careflow.ehr"

MILESTONES = {
    "discharge_pending": "Discharge planned (A16)",
    "transport_arranged": "Transport booked",
    "pharmacy_arranged": "Meds to beds ordered",
    "dme_arranged": "Equipment ordered",
    "post_acute_authorization_requested": "Post-acute auth. requested",
    "post_acute_authorization_submitted": "Post-acute auth. sent to payer",
    "post_acute_authorization_pended": "Payer pended post-acute auth.",
    "post_acute_authorization_arranged": "Post-acute auth. settled",
    "post_acute_authorization_waiting": "Payer still deciding",
    "billing_ready": "Billing ready (coverage active)",
    "billing_not_ready": "Billing not ready",
    "dependencies_arranged": "Every dependency in time",
    "discharge_threatened": "Discharge time threatened",
    "case_manager_decided": "Case manager decided",
    "discharged": "Patient left (A03)",
    "discharge_concluded": "Discharge concluded",
}
OUTCOMES = {"DISCHARGED": "Discharged", "NOT_DISCHARGED": "Not discharged"}

SCENARIOS = (
    Scenario("f", "enc-5001", "home, everything in time: discharged on time"),
    Scenario("g", "enc-5002", "held by transport and DME, case manager asked: discharged late"),
    Scenario("h", "enc-5003", "home health, the payer pends then approves: discharged on time"),
)
# scenario key -> (facility, disposition, expected in, what)
_PLAN = {
    "f": ("fac-north", "01", timedelta(hours=3), "Discharge home (01)"),
    "g": ("fac-south", "50", timedelta(hours=2), "Discharge to hospice at home (50)"),
    "h": ("fac-north", "06", timedelta(hours=5), "Discharge home with home health (06)"),
}


def _data(encounter_id: str, **more: object) -> dict[str, object]:
    number = encounter_id.rsplit("-", 1)[-1]
    return {
        "encounter_id": encounter_id,
        "patient_id": f"MRN-{number}",
        "patient_id_authority": "NVMC",
        **more,
    }


def _departs(demo: Demo, sc: Scenario) -> None:
    cloud = demo.cloud
    facility = _PLAN[sc.key][0]
    cloud.put_event(
        SOURCE,
        "Encounter.Discharged",
        facility_id=facility,
        idempotency_key=f"encounter:{sc.subject_id}:A03",
        data=_data(sc.subject_id, discharged_at=cloud.clock.now().isoformat()),
    )
    demo.milestone(sc.subject_id, "discharged")
    demo.say(f"  ({sc.key}) the patient left (A03)")


def _concluded(demo: Demo, subject_id: str) -> None:
    """The coordination looks for the departure every 15 min: move the clock until it
    has seen it (a poll's timer may start just after a move)."""
    cloud = demo.cloud
    arn = demo.arn(subject_id)
    deadline = time.monotonic() + 60
    while cloud.describe(arn)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{subject_id} still running")
        cloud.clock.advance(timedelta(minutes=5))
        time.sleep(0.05)


def run(demo: Demo) -> list[CaseReport]:
    from careflow.adapters.sandbox import PayerRule, sandbox
    from careflow.canonical.payer import AuthDecision
    from careflow.domain.intake import instance_id_for
    from careflow.localcloud.demo import Wording, local_time

    sb = sandbox()
    # South Bay's transport vendor is short of vehicles today; its pharmacy is quick
    sb.transport_lead["fac-south"] = timedelta(hours=3)
    sb.pharmacy_lead["fac-south"] = timedelta(minutes=20)
    # (h)'s payer pends the home-health authorization, then approves it 90 minutes later
    cloud = demo.cloud
    coverage = sb.encounter_coverage("enc-5003")
    cloud.set_payer_rule(
        f"{instance_id_for(WORKFLOW, 'encounter:enc-5003:A16')}-auth",
        (coverage.coverage_ref or "").split("/")[-1] if coverage else "",
        PayerRule(AuthDecision.PENDED, pend_for=timedelta(minutes=90), final=AuthDecision.APPROVED),
    )
    expected = {}
    demo.say(f"Planning {len(SCENARIOS)} discharges at T0 = {local_time(demo.t0, 'UTC')}")
    for sc in SCENARIOS:
        facility, disposition, expected_in, _ = _PLAN[sc.key]
        expected[sc.key] = demo.t0 + expected_in
        key = f"encounter:{sc.subject_id}:A16"
        cloud.put_event(
            SOURCE,
            "Encounter.DischargePending",
            facility_id=facility,
            idempotency_key=key,
            data=_data(
                sc.subject_id,
                disposition=disposition,
                expected_discharge_at=expected[sc.key].isoformat(),
            ),
        )
        demo.started(WORKFLOW, sc.subject_id, key)
    demo.milestone("enc-5001", "dependencies_arranged")
    demo.say("  (f) transport and meds to beds arranged in time")
    child = f"{demo.instance_id('enc-5003')}-auth"  # the prior authorization it started
    cloud.wait_for(
        lambda: any(m.name == "pended" for m in demo.store.milestones(child)),
        30,
        "the payer's pend of (h)'s home-health authorization",
    )
    demo.say("  (h) home-health authorization submitted to the payer: pended")
    task = demo.open_task("enc-5002")
    demo.say(f"  (g) task {task.task_id} opened in {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:casemgr-lrossi")
    demo.decide(task, "user:casemgr-lrossi", "EXPEDITE", "family told; vendor asked to expedite")
    demo.milestone("enc-5002", "case_manager_decided")

    demo.advance(timedelta(hours=2, minutes=45))
    _departs(demo, SCENARIOS[0])
    _concluded(demo, "enc-5001")
    demo.milestone("enc-5003", "dependencies_arranged")
    demo.say("  (h) the payer approved the home-health authorization: every dependency in time")
    demo.advance(demo.t0 + timedelta(hours=4, minutes=50) - cloud.clock.now())
    _departs(demo, SCENARIOS[2])
    _concluded(demo, "enc-5003")
    demo.advance(demo.t0 + timedelta(hours=6) - cloud.clock.now())  # the concentrator arrives
    _departs(demo, SCENARIOS[1])
    _concluded(demo, "enc-5002")

    wording = Wording(
        MILESTONES,
        OUTCOMES,
        start="expected discharge",
        after_start=frozenset({"discharged", "discharge_concluded"}),
    )
    reports = []
    for sc in SCENARIOS:
        facility, _, _, what = _PLAN[sc.key]
        report = demo.report(
            sc, what=what, facility_id=facility, scheduled_start=expected[sc.key], wording=wording
        )
        for entry in demo.store.audit_trail(demo.instance_id(sc.subject_id)):
            if entry.action == "delay_recorded":
                d = entry.detail
                report.notes.append(
                    f"delay: {d['cause']} ({d['dependency']}), {d['minutes']} min, "
                    f"owner {str(d['owner']).replace('_', ' ')}"
                )
        reports.append(report)
    return reports
