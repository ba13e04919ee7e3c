"""The replenishment demo: three daily reviews a perioperative materials manager knows.

(a) rr-south-1, South Bay's review on a quiet morning: every shelf above its reorder
point, no booked case short → no action.
(b) rr-south-2, South Bay the next run: braided sutures down to 10 boxes at central supply
(1.5 a day, 2-day lead time: 7 expected, reorder point 12) → 29 boxes ordered up to par
($4,118, under the $5,000 automatic threshold); pedicle screws (consignment) low → the
vendor is told.
(c) rr-north-1, North Valley: two knee replacements booked for the day after tomorrow, and three
femoral components quarantined on a lot recall (1 left, the supplier delivers in 3 days)
→ the cases are certain to be short: $26,950 of implants for the department director's
approval; once approved, the requisition is expedited (overnight) and surgical case
readiness is told (``Supply.AtRisk``, a milestone on each case).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "supply-replenishment"
APPROVERS = {"supply_chain_buyer": "user:buyer-jlee", "department_director": "user:director-rsingh"}

MILESTONES = {
    "review_started": "Replenishment review started",
    "inventory_assessed": "Inventory assessed",
    "case_supply_at_risk": "Booked case at risk",
    "requisition_placed": "Requisition placed",
    "requisition_expedited": "Requisition expedited",
    "vendor_notified": "Consignment vendor notified",
    "approval_approved": "Approved",
    "approval_rejected": "Rejected",
    "review_no_action": "Nothing to order",
    "review_reordered": "Reordered",
    "review_reordered_with_expedite": "Reordered, expedited",
}
OUTCOMES = {
    "NO_ACTION": "No action",
    "REORDERED": "Reordered",
    "REORDERED_WITH_EXPEDITE": "Reordered with expedite",
    "VENDOR_NOTIFIED": "Vendor notified",
    "APPROVAL_REJECTED": "Approval rejected",
    "APPROVAL_EXPIRED": "Approval expired",
    "SUPERSEDED": "Superseded",
}

SCENARIOS = (
    Scenario("a", "rr-south-1", "quiet morning at South Bay → no action"),
    Scenario("b", "rr-south-2", "sutures below reorder point → automatic requisition"),
    Scenario("c", "rr-north-1", "knee implants short for booked cases → approve, expedite"),
)


def _book(demo: Demo) -> Any:
    """The ERP's shelves the handlers read (the HTTP sandbox's, or the in-process one's)."""
    from careflow.adapters.sandbox import sandbox

    server = demo.cloud.erp_server
    return server.inventory_book() if server is not None else sandbox().inventory_book()


def _review(demo: Demo, subject: str, facility: str) -> None:
    now = demo.cloud.clock.now()
    key = f"schedule:ReplenishmentReview:{facility}:{now.isoformat()}:{subject}"
    demo.cloud.put_event(
        "careflow.erp",
        "ReplenishmentReview.Due",
        facility_id=facility,
        idempotency_key=key,
        data={},
    )
    demo.started(WORKFLOW, subject, key)
    demo.arn_when_started(subject)


def _first_cases(facility: str, now: datetime) -> datetime:
    """07:00 tomorrow at the facility: the review is due before the first cases."""
    from careflow.facilities import facility as find

    zone = find(facility).zone  # type: ignore[union-attr]
    day = (now.astimezone(zone) + timedelta(days=1)).date()
    return datetime.combine(day, time(7, 0), tzinfo=zone).astimezone(UTC)


def _knee_cases(demo: Demo) -> datetime:
    """Books two knee replacements the day after tomorrow; the second one's start."""
    from careflow.adapters.sandbox import KNEE, CaseSeed, PayerRule, _cpt
    from careflow.canonical.payer import AuthDecision

    cloud = demo.cloud
    now = cloud.clock.now()
    first = _first_cases("fac-north", now) + timedelta(days=1, minutes=30)
    for i in range(2):
        case_id = f"appt-600{i + 1}"
        start = first + timedelta(hours=2 * i)
        cloud.add_case(
            CaseSeed(
                case_id,
                "fac-north",
                _cpt("27447", "Total knee arthroplasty"),
                "orthopedics",
                start - now,
                PayerRule(AuthDecision.APPROVED),
                tuple(KNEE),
                ("TRAY-KNEE-01",),
                "Practitioner/dr-okafor",
                "Location/or-north-3",
            )
        )
        cloud.book_appointment(case_id, start, "fac-north")
    for i in range(2):
        case_id = f"appt-600{i + 1}"
        demo.started("surgical-case-readiness", case_id, f"appointment:{case_id}:booked")
        cloud.wait_for_execution(demo.arn_when_started(case_id), 60)
    return first + timedelta(hours=2)


def run(demo: Demo) -> list[CaseReport]:
    from careflow.localcloud.demo import Wording

    cloud = demo.cloud
    book = _book(demo)

    _review(demo, "rr-south-1", "fac-south")
    demo.say("  (a) South Bay's daily review: shelves above their reorder points")
    cloud.wait_for_execution(demo.arn("rr-south-1"), 60)

    book.set_stock("fac-south:central-supply", "SUP-SUT-VIC-0", on_hand=10, daily_use=1.5)
    book.set_stock("fac-south:or-core", "IMP-SPN-SCR-6545", on_hand=5, daily_use=0.3)
    _review(demo, "rr-south-2", "fac-south")
    demo.say("  (b) South Bay: 10 boxes of braided sutures left, pedicle screws low")
    cloud.wait_for_execution(demo.arn("rr-south-2"), 60)

    at_risk = _knee_cases(demo)
    book.set_stock("fac-north:or-core", "IMP-TKA-FEM-5", on_hand=1)
    demo.say("  (c) North Valley: 2 knees booked, 3 femoral components pulled on a lot recall")
    _review(demo, "rr-north-1", "fac-north")
    task = demo.open_task("rr-north-1")
    demo.say(f"  (c) task for {task.queue}: {task.title}")
    actor = APPROVERS.get(task.queue, "user:director-rsingh")
    demo.claim(task, actor)
    demo.decide(task, actor, "APPROVE", "implants for booked cases")
    cloud.wait_for_execution(demo.arn("rr-north-1"), 60)
    # the expedited delivery arrives overnight: the shelf is back at par
    book.set_stock("fac-north:or-core", "IMP-TKA-FEM-5", on_hand=6)

    wording = Wording(MILESTONES, OUTCOMES, start="first cases")
    first = _first_cases("fac-south", cloud.clock.now())
    return [
        demo.report(
            SCENARIOS[0],
            what="daily replenishment review",
            facility_id="fac-south",
            scheduled_start=first,
            wording=wording,
        ),
        demo.report(
            SCENARIOS[1],
            what="daily replenishment review",
            facility_id="fac-south",
            scheduled_start=first,
            wording=wording,
        ),
        demo.report(
            SCENARIOS[2],
            what="daily replenishment review",
            facility_id="fac-north",
            scheduled_start=at_risk,
            wording=Wording(MILESTONES, OUTCOMES, start="case at risk (appt-6002)"),
        ),
    ]
