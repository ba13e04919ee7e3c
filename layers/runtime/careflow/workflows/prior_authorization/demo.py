"""The prior authorization demo: five requests from three service lines.

(a) an MRI approved on first pass; (b) an infusion the payer wants documents for: the
utilization review nurse attaches them, the resubmission is approved; (c) a spinal fusion
pended, the payer's notification after 2 days, the decision re-read and approved;
(d) an expedited request the payer never answers: inquired at 24 h, escalated at 48 h,
the 72 h clock runs out; (e) a denial, with an appeal task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "prior-authorization"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"


# What an operations person reads (careflow.localcloud.demo.Wording).
MILESTONES = {
    "request_received": "Request received",
    "submitted": "Submitted to the payer",
    "documents_requested": "Payer asked for documents",
    "resubmitted": "Resubmitted with the documents",
    "pended": "Pended by the payer",
    "inquired": "Payer asked for its decision",
    "pend_escalated": "Pend escalated to utilization review",
    "concluded_approved": "Approved",
    "concluded_denied": "Denied",
    "concluded_expired": "Decision clock ran out",
}
OUTCOMES = {
    "APPROVED": "Approved",
    "DENIED": "Denied",
    "EXPIRED": "Expired",
    "PENDED": "Still pended",
}
CAUSES = {"concluded_expired": "no payer decision in time"}
DEADLINES = {"concluded_expired": "The payer's decision clock ran out"}


@dataclass(frozen=True)
class RequestSeed:
    scenario: Scenario
    facility_id: str
    service_line: str
    code: tuple[str, str, str]  # system, code, display
    days_out: int
    priority: str
    rule: dict[str, Any]  # PayerRule fields

    def data(self, now: datetime) -> dict[str, Any]:
        rid = self.scenario.subject_id
        system, code, display = self.code
        return {
            "request_id": rid,
            "service_line": self.service_line,
            "patient_ref": f"Patient/pt-{rid}",
            "coverage_ref": f"Coverage/cov-{rid}",
            "payer_id": "payer-acme",
            "procedure_codes": [{"system": system, "code": code, "display": display}],
            "service_date": (now + timedelta(days=self.days_out)).isoformat(),
            "priority": self.priority,
        }


REQUESTS = (
    RequestSeed(
        Scenario("a", "pa-2001", "MRI, approved on first pass"),
        "fac-north",
        "imaging",
        (CPT, "70553", "MRI brain without and with contrast"),
        10,
        "routine",
        {"decision": "APPROVED"},
    ),
    RequestSeed(
        Scenario("b", "pa-2002", "infusion: payer asks for documents, nurse attaches, approved"),
        "fac-south",
        "infusion",
        (HCPCS, "J1745", "Infliximab injection, 10 mg"),
        14,
        "routine",
        {"decision": "APPROVED", "documents": ("11506-3", "34117-2")},
    ),
    RequestSeed(
        Scenario("c", "pa-2003", "spinal fusion pended, notification after 2 days, approved"),
        "fac-north",
        "surgery",
        (CPT, "22633", "Lumbar arthrodesis, combined technique"),
        21,
        "routine",
        {"decision": "PENDED", "pend_for": timedelta(days=2), "final": "APPROVED"},
    ),
    RequestSeed(
        Scenario("d", "pa-2004", "expedited, payer silent: inquired, escalated, clock expired"),
        "fac-asc",
        "surgery",
        (CPT, "29881", "Knee arthroscopy with meniscectomy"),
        5,
        "expedited",
        {"decision": "PENDED", "pend_for": None, "final": None},
    ),
    RequestSeed(
        Scenario("e", "pa-2005", "PET scan denied, appeal task opened"),
        "fac-south",
        "imaging",
        (CPT, "78815", "PET/CT skull base to mid-thigh"),
        12,
        "routine",
        {"decision": "DENIED"},
    ),
)


def run(demo: Demo) -> list[CaseReport]:
    from careflow.adapters.sandbox import PayerRule
    from careflow.canonical.payer import AuthDecision
    from careflow.localcloud.demo import Wording

    cloud = demo.cloud
    demo.say(f"Requesting {len(REQUESTS)} prior authorizations at T0")
    for seed in REQUESTS:
        rule = dict(seed.rule)
        rule["decision"] = AuthDecision(rule["decision"])
        if rule.get("final"):
            rule["final"] = AuthDecision(rule["final"])
        rid = seed.scenario.subject_id
        cloud.set_payer_rule(rid, f"cov-{rid}", PayerRule(**rule))
        key = f"prior-auth:{rid}:requested"
        cloud.put_event(
            "careflow.ehr",
            "PriorAuth.Requested",
            data=seed.data(demo.t0),
            facility_id=seed.facility_id,
            idempotency_key=key,
        )
        demo.started(WORKFLOW, rid, key)
    for rid in ("pa-2001", "pa-2005"):
        cloud.wait_for_execution(demo.arn_when_started(rid), 60)
    task = demo.open_task("pa-2002")
    demo.say(f"  (b) task for {task.queue.replace('_', ' ')}: {task.title}")
    demo.claim(task, "user:urn-pkaur")
    demo.decide(task, "user:urn-pkaur", "ATTACHED", "operative note and lab results attached")
    cloud.wait_for_execution(demo.arn("pa-2002"), 60)
    demo.milestone("pa-2003", "pended")
    demo.milestone("pa-2004", "pended")

    # (c) and (d) both wait 24 h for the payer: advance once both waits have started
    demo.advance(timedelta(days=1), timer=timedelta(hours=24), timers=2)
    demo.milestone("pa-2004", "inquired")
    demo.say("  (d) no notification after 24 h: the payer is asked once ($inquire)")
    demo.advance(timedelta(days=1), timer=timedelta(hours=24))
    demo.milestone("pa-2004", "pend_escalated")
    demo.say("  (d) 48 h: escalated to the utilization review nurse")
    cloud.wait_for_execution(demo.arn("pa-2003"), 60)
    demo.say("  (c) the payer's notification arrived; the decision was re-read and approved")
    demo.advance(timedelta(days=1), timer=timedelta(hours=24))
    cloud.wait_for_execution(demo.arn("pa-2004"), 60)
    demo.say("  (d) 72 h: the decision clock ran out")

    wording = Wording(MILESTONES, OUTCOMES, CAUSES, DEADLINES, start="service date")
    return [
        demo.report(
            seed.scenario,
            what=seed.code[2],
            facility_id=seed.facility_id,
            scheduled_start=demo.t0 + timedelta(days=seed.days_out),
            wording=wording,
        )
        for seed in REQUESTS
    ]
