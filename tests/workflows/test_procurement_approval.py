"""Procurement approval: the real ASL on the local cloud with the real handlers and the
sandbox ERP. Each test reaches an outcome: PO_CREATED (one level; three levels and capital
review; after the budget office transferred funds), REJECTED, RETURNED_FOR_CHANGES,
BUDGET_EXCEPTION (declined; still short after a transfer), NOT_NORMALIZED (refused, and
after the item-master team fixed the crosswalk: PO_CREATED), APPROVAL_EXPIRED (the chain
escalated to its end), PO_FAILED (the budget reservation released)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest

from careflow.adapters.sandbox import sandbox
from careflow.domain.intake import instance_id_for
from careflow.domain.records import InstanceStatus
from tests.workflows.harness import Case, advance_through_timer, claim_and_complete

WORKFLOW = "procurement-approval"
SOURCE = "careflow.erp"
_numbers = itertools.count(7101)
MANAGER, DIRECTOR, CFO = "user:dept-mgr-agarcia", "user:director-rsingh", "user:cfo-mthompson"
CAPITAL, ITEM_MASTER = "user:capital-cmte-lchen", "user:item-master-bnovak"
BUDGET = "user:budget-analyst-pwright"
KNEE_NORTH = {"local_code": "NV-10442"}  # Stryker Triathlon femoral, $2,450.00


@pytest.fixture(autouse=True)
def _clean_faults():
    yield
    sandbox().clear_faults()


def submit(cloud, lines, *, facility="fac-north", cost_center="cc-fac-north-ortho") -> Case:
    requisition_id = f"RQ-{next(_numbers)}"
    key = f"requisition:{facility}:{requisition_id}"
    cloud.put_event(
        SOURCE,
        "Requisition.Submitted",
        facility_id=facility,
        idempotency_key=key,
        data={
            "requisition_id": requisition_id,
            "cost_center_id": cost_center,
            "requested_by": "emp-20417",
            "lines": [{"line_number": n, **line} for n, line in enumerate(lines, start=1)],
        },
    )
    return Case(cloud, requisition_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()


def decide(cloud, case: Case, decision: str, actor: str, level: int = 0, reason="checked"):
    task = case.open_task(level)
    claim_and_complete(cloud, task, decision, actor=actor, reason=reason)
    case.cloud.wait_for(
        lambda: (
            case.store.get_task(task.task_id).status.value != "CLAIMED"
            and not any(t.task_token == task.task_token and t.awaits_decision for t in case.tasks())
        ),
        20,
        "the decision taken",
    )
    return task


def approvals(case: Case) -> list[tuple[str, str]]:
    return [
        (a.detail["level"], a.detail["decision"])
        for a in case.store.audit_trail(case.instance_id)
        if a.action == "approval_decided"
    ]


def outcome(case: Case, drive: bool = False) -> str:
    result = case.drive(step=timedelta(minutes=1)) if drive else case.finish()
    assert result["status"] == "SUCCEEDED", result
    instance = case.instance()
    assert instance.status == InstanceStatus.COMPLETED
    return str(instance.outcome)


def test_a_small_requisition_one_approval_then_the_purchase_order(cloud):
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 2}])  # $4,900.00: the manager alone
    task = decide(cloud, case, "APPROVE", MANAGER)
    assert task.queue == "department_manager"
    assert outcome(case) == "PO_CREATED"
    assert approvals(case) == [("department_manager", "APPROVE")]
    names = case.milestone_names()
    assert {"requisition_normalized", "budget_reserved", "po_created"} <= set(names)
    event = case.output()
    assert event["outcome"] == "PO_CREATED"
    po_id = case.instance().outcome_reasons[0].removeprefix("purchase order ")
    assert sandbox().purchase_order_status(po_id).status == "OPEN"


def test_capital_equipment_goes_through_every_level_and_capital_review(cloud):
    case = submit(
        cloud,
        [{"manufacturer": "Stryker", "catalog_number": "1688-010-000", "quantity": 1}],
        cost_center="cc-fac-north-capital",
    )
    for actor in (MANAGER, DIRECTOR, CFO, CAPITAL):
        decide(cloud, case, "APPROVE", actor)
    assert outcome(case) == "PO_CREATED"
    assert [lv for lv, _ in approvals(case)] == [
        "department_manager",
        "department_director",
        "cfo",
        "capital_committee",
    ]
    # one task per level, each in its own queue
    assert sorted(t.queue for t in case.tasks()) == [
        "capital_committee",
        "cfo",
        "department_director",
        "department_manager",
    ]


def test_the_director_rejects(cloud):
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 3}])  # $7,350.00: manager and director
    decide(cloud, case, "APPROVE", MANAGER)
    decide(cloud, case, "REJECT", DIRECTOR, reason="use the consignment stock")
    assert outcome(case) == "REJECTED"
    assert "budget_reserved" not in case.milestone_names()


def test_the_manager_returns_it_for_changes(cloud):
    case = submit(cloud, [{"gtin": "07613327011593", "quantity": 1}])
    decide(cloud, case, "RETURN", MANAGER)
    assert outcome(case) == "RETURNED_FOR_CHANGES"


def test_a_cost_center_short_of_funds_the_budget_office_declines_is_a_budget_exception(cloud):
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 2}], cost_center="cc-fac-north-endo")
    decide(cloud, case, "APPROVE", MANAGER)
    task = case.open_task()
    assert task.queue == "budget_office"
    assert task.allowed_decisions == ("FUNDS_TRANSFERRED", "DECLINE")
    assert "short of funds" in task.title
    decide(cloud, case, "DECLINE", BUDGET)
    assert outcome(case) == "BUDGET_EXCEPTION"
    assert case.instance().outcome_reasons == (
        "cc-fac-north-endo has $2,750.00 available, $4,900.00 needed",
    )
    assert "budget_short" in case.milestone_names()


def _short_cost_center(available: str) -> str:
    cost_center = f"cc-fac-north-test-{next(_numbers)}"
    sandbox().procurement.budgets[cost_center] = ("fac-north", Decimal(available), Decimal(0))
    return cost_center


def test_funds_transferred_by_the_budget_office_reserve_the_budget_and_order(cloud):
    cost_center = _short_cost_center("1000.00")  # a femoral component is $2,450.00
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 1}], cost_center=cost_center)
    decide(cloud, case, "APPROVE", MANAGER)
    case.open_task()
    sandbox().procurement.transfer("cc-fac-north-ortho", cost_center, Decimal("1500.00"))
    decide(cloud, case, "FUNDS_TRANSFERRED", BUDGET)
    assert outcome(case) == "PO_CREATED"
    names = case.milestone_names()
    assert names.index("budget_short") < names.index("budget_reserved")
    assert "SecondBudgetAttempt" in case.entered_states()


def test_a_transfer_that_still_falls_short_is_a_budget_exception_without_a_second_task(cloud):
    cost_center = _short_cost_center("1000.00")
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 1}], cost_center=cost_center)
    decide(cloud, case, "APPROVE", MANAGER)
    case.open_task()
    sandbox().procurement.transfer("cc-fac-north-ortho", cost_center, Decimal("1000.00"))
    decide(cloud, case, "FUNDS_TRANSFERRED", BUDGET)
    assert outcome(case) == "BUDGET_EXCEPTION"
    assert case.instance().outcome_reasons == (
        f"{cost_center} has $2,000.00 available, $2,450.00 needed",
    )
    budget_tasks = [t for t in case.tasks() if t.queue in ("budget_office", "cfo")]
    assert len(budget_tasks) == 1


def test_an_unknown_item_goes_to_the_item_master_team_who_refuse_it(cloud):
    case = submit(cloud, [{"local_code": "NV-99999", "quantity": 1}])
    task = decide(cloud, case, "REFUSE", ITEM_MASTER)
    assert task.queue == "item_master"
    assert outcome(case) == "NOT_NORMALIZED"
    assert case.instance().outcome_reasons == (
        "line 1: no identifier matches an item of the catalog",
    )


def test_the_item_master_team_fixes_the_crosswalk_and_it_goes_on(cloud):
    case = submit(
        cloud,
        [{"local_code": "SB-7799", "quantity": 1}],
        facility="fac-south",
        cost_center="cc-fac-south-ortho",
    )
    case.wait_milestone("normalization_failed")
    sandbox().procurement.local_codes["fac-south"]["SB-7799"] = "SUP-DRAPE-ORTHO"
    decide(cloud, case, "RESOLVED", ITEM_MASTER)
    decide(cloud, case, "APPROVE", MANAGER)
    assert outcome(case) == "PO_CREATED"


def test_an_approval_nobody_decides_escalates_then_expires(cloud):
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 1}])
    case.open_task()
    advance_through_timer(cloud, timedelta(days=1), case=case)  # the manager's SLA: to the director
    case.open_task(level=1)
    advance_through_timer(cloud, timedelta(days=1), case=case)
    assert outcome(case) == "APPROVAL_EXPIRED"
    assert "task_escalated" in case.milestone_names()


def test_the_erp_failing_the_purchase_order_releases_the_budget(cloud):
    case = submit(cloud, [{**KNEE_NORTH, "quantity": 1}])
    sandbox().fault("erp.create_purchase_order").fail_always = True
    decide(cloud, case, "APPROVE", MANAGER)
    assert outcome(case, drive=True) == "PO_FAILED"  # after the connector's retries
    assert {"budget_reserved", "budget_released"} <= set(case.milestone_names())
