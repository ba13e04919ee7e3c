"""Procurement approval, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function
from careflow.workflows.procurement_approval import kpis
from careflow.workflows.procurement_approval.events import (
    SOURCE,
    STATUS_CHANGED,
    SUBMITTED,
    RequisitionSubmitted,
)

_STEPS = "careflow.workflows.procurement_approval.steps"


def _input(event: Any) -> dict[str, Any]:
    """The requisition as submitted: ids, codes and quantities."""
    data: RequisitionSubmitted = event.data
    return {
        "requisition_id": data.requisition_id,
        "cost_center_id": data.cost_center_id,
        "requested_by": data.requested_by,
        "needed_by": data.needed_by.isoformat() if data.needed_by else None,
        "lines": [line.model_dump(exclude_none=True) for line in data.lines],
    }


def _requisition(event: Any) -> str:
    """The subject: the facility's requisition, one approval per facility and requisition."""
    return str(event.data.requisition_id)


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="procurement-approval",
    name="ProcurementApproval",
    title="Procurement approval",
    asl="procurement_approval.asl.json",
    type="STANDARD",
    subject_type="requisition",
    policy="procurement-approval",
    steps=(
        _step("RegisterRequisition", "register_requisition", "Records it, pins its policy"),
        _step("NormalizeRequisition", "normalize_requisition", "Lines to canonical items"),
        _step("ApplyItemMasterDecision", "apply_item_master_decision", "Item master's answer"),
        _step("PlanApprovals", "plan_approvals", "Approval levels by policy and amount"),
        _step("ApplyApprovalDecision", "apply_approval_decision", "One level's decision"),
        _step("ReserveBudget", "reserve_budget", "The cost center's budget, reserved in the ERP"),
        _step("CreatePurchaseOrders", "create_purchase_orders", "Purchase orders in the ERP"),
        _step("ReleaseBudget", "release_budget", "Releases the reservation of a failed order"),
        _step("FinalizeRequisition", "finalize_requisition", "Outcome and the facility's status"),
    ),
    triggers=(
        Trigger(source=SOURCE, detail_type=SUBMITTED, build_input=_input, subject=_requisition),
    ),
    event_schemas={SUBMITTED: RequisitionSubmitted},
    slas=(
        Sla("approval_task", 86400, "an approver decides (per level: the policy's approval_level)"),
        Sla("item_master_task", 86400, "the item-master team crosswalks an unknown item"),
    ),
    kpis=(
        Kpi("RequisitionCycleSeconds", "Seconds", "from submission to the requisition's outcome"),
        Kpi("RequisitionsConcluded", "Count", "requisitions concluded (any outcome)"),
        Kpi("BudgetExceptions", "Count", "requisitions ended by a budget exception"),
        Kpi("HumanTasksEscalated", "Count", "tasks escalated for breaching their SLA"),
    ),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.procurement_approval.kpis:values",
    publishes=(STATUS_CHANGED,),
    demo="careflow.workflows.procurement_approval.demo:run",
    bench="careflow.workflows.procurement_approval.bench:case",
)
