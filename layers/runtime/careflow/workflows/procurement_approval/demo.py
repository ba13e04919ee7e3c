"""The procurement approval demo: five requisitions from two facilities whose item masters
code the same items differently, submitted at T0.

(i) North Valley, a Triathlon knee (femoral NV-10442 + tibial NV-10443), $4,090.00: within
the department manager's $5,000 → approved → purchase order to the supplier → PO_CREATED;
(j) South Bay, a 4K arthroscopy video platform (SB-9903), $68,500.00, capital equipment:
manager, director, CFO (above South Bay's $25,000) and capital committee approve →
PO_CREATED;
(k) North Valley endoscopy, two femoral components by manufacturer + catalog number,
$4,900.00: approved, but the cost center has $2,750.00 left → the budget office's task:
no funds to transfer this fiscal year, declined → BUDGET_EXCEPTION;
(l) South Bay, a discontinued hip stem code (SB-7795) no identifier resolves: the
item-master team refuses it (the requester reorders as SB-7790) → NOT_NORMALIZED;
(m) South Bay, three hip stems (SB-7790), $5,940.00: the manager approves, the director
rejects (consignment stock on the shelf) → REJECTED.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from careflow.kit.spec import Scenario

if TYPE_CHECKING:
    from careflow.localcloud.demo import CaseReport, Demo

WORKFLOW = "procurement-approval"
SOURCE = "careflow.erp"

MILESTONES = {
    "requisition_submitted": "Requisition submitted",
    "requisition_normalized": "Items normalized (crosswalk)",
    "normalization_failed": "Item not in the crosswalk",
    "item_master_decided": "Item master decided",
    "approval_routed": "Approval routed",
    "department_manager_decided": "Department manager decided",
    "department_director_decided": "Director decided",
    "cfo_decided": "CFO decided",
    "capital_committee_decided": "Capital committee decided",
    "budget_reserved": "Budget reserved",
    "budget_short": "Cost center short: to the budget office",
    "budget_exception": "Budget exception",
    "budget_released": "Budget released",
    "po_created": "Purchase order created",
    "requisition_concluded": "Requisition concluded",
}
OUTCOMES = {
    "PO_CREATED": "Purchase order created",
    "REJECTED": "Rejected",
    "RETURNED_FOR_CHANGES": "Returned for changes",
    "BUDGET_EXCEPTION": "Budget exception",
    "NOT_NORMALIZED": "Not normalized",
    "APPROVAL_EXPIRED": "Approval expired",
    "PO_FAILED": "Purchase order failed",
}

SCENARIOS = (
    Scenario("i", "req-6001", "a knee within the manager's limit: purchase order"),
    Scenario("j", "req-6002", "capital video platform, four levels: purchase order"),
    Scenario("k", "req-6003", "approved, cost center short, budget office declines"),
    Scenario("l", "req-6004", "discontinued item code, refused by the item master"),
    Scenario("m", "req-6005", "the director rejects: consignment stock on the shelf"),
)
# scenario key -> (facility, cost center, lines, what)
_PLAN: dict[str, tuple[str, str, list[dict[str, Any]], str]] = {
    "i": (
        "fac-north",
        "cc-fac-north-ortho",
        [{"local_code": "NV-10442", "quantity": 1}, {"local_code": "NV-10443", "quantity": 1}],
        "Triathlon knee components, $4,090.00",
    ),
    "j": (
        "fac-south",
        "cc-fac-south-capital",
        [{"local_code": "SB-9903", "quantity": 1, "unspsc": "42294802"}],
        "4K arthroscopy video platform, $68,500.00 (capital)",
    ),
    "k": (
        "fac-north",
        "cc-fac-north-endo",
        [{"manufacturer": "Stryker Orthopaedics", "catalog_number": "5510-F-501", "quantity": 2}],
        "Triathlon femoral components, $4,900.00",
    ),
    "l": (
        "fac-south",
        "cc-fac-south-ortho",
        [{"local_code": "SB-7795", "quantity": 2}],
        "Hip stems under a discontinued code",
    ),
    "m": (
        "fac-south",
        "cc-fac-south-ortho",
        [{"local_code": "SB-7790", "quantity": 3, "gtin": "00880307123455"}],
        "Taperloc hip stems, $5,940.00",
    ),
}
# scenario key -> the decisions, in order: (actor, decision, reason)
_DECISIONS = {
    "i": [("user:dept-mgr-agarcia", "APPROVE", "scheduled TKA cases next week")],
    "j": [
        ("user:dept-mgr-agarcia", "APPROVE", "replaces the OR 3 tower"),
        ("user:director-rsingh", "APPROVE", "in the FY capital plan"),
        ("user:cfo-mthompson", "APPROVE", "funded from the capital pool"),
        ("user:capital-cmte-lchen", "APPROVE", "committee minutes 2026-11"),
    ],
    "k": [
        ("user:dept-mgr-agarcia", "APPROVE", "needed for a revision case"),
        ("user:budget-analyst-pwright", "DECLINE", "no endoscopy funds to move this FY"),
    ],
    "l": [("user:item-master-bnovak", "REFUSE", "SB-7795 discontinued; reorder as SB-7790")],
    "m": [
        ("user:dept-mgr-agarcia", "APPROVE", "par replenishment"),
        ("user:director-rsingh", "REJECT", "consignment stock on the shelf covers it"),
    ],
}


def run(demo: Demo) -> list[CaseReport]:
    from careflow.localcloud.demo import Wording, local_time

    cloud = demo.cloud
    demo.say(
        f"Submitting {len(SCENARIOS)} requisitions at T0 = {local_time(demo.t0, 'UTC')} "
        "(North Valley codes NV-*, South Bay SB-*)"
    )
    for sc in SCENARIOS:
        facility, cost_center, lines, _ = _PLAN[sc.key]
        key = f"requisition:{facility}:{sc.subject_id}"
        cloud.put_event(
            SOURCE,
            "Requisition.Submitted",
            facility_id=facility,
            idempotency_key=key,
            data={
                "requisition_id": sc.subject_id,
                "cost_center_id": cost_center,
                "requested_by": "emp-20417",
                "lines": [{"line_number": n, **x} for n, x in enumerate(lines, start=1)],
            },
        )
        demo.started(WORKFLOW, sc.subject_id, key)
    for sc in SCENARIOS:
        for actor, decision, reason in _DECISIONS[sc.key]:
            task = demo.open_task(sc.subject_id)
            demo.claim(task, actor)
            demo.decide(task, actor, decision, reason)
            demo.say(f"  ({sc.key}) {task.queue.replace('_', ' ')}: {decision} ({reason})")
        cloud.wait_for_execution(demo.arn(sc.subject_id), 30)
    demo.advance(timedelta(minutes=1))

    # the requisition is worked after its submission: every step is "after the start"
    after = frozenset(
        {*MILESTONES, "task_opened", "task_claimed", "task_completed", "task_escalated"}
    )
    wording = Wording(MILESTONES, OUTCOMES, start="submitted", after_start=after)
    reports = []
    for sc in SCENARIOS:
        facility, _, _, what = _PLAN[sc.key]
        reports.append(
            demo.report(
                sc, what=what, facility_id=facility, scheduled_start=demo.t0, wording=wording
            )
        )
    return reports
