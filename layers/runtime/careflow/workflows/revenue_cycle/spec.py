"""Post-procedure revenue cycle, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function
from careflow.workflows.revenue_cycle import kpis
from careflow.workflows.revenue_cycle.events import (
    COMPLETED,
    CONCLUDED,
    SOURCE,
    SurgicalCaseCompleted,
)

_STEPS = "careflow.workflows.revenue_cycle.steps"


def _input(event: Any) -> dict[str, Any]:
    """Identifiers only: the steps re-read the case's usage, charges and record from the EHR."""
    data = event.data
    return {
        "case_id": data.case_id,
        "encounter_id": data.encounter_id,
        "procedure_end": data.procedure_end.isoformat(),
    }


def _case(event: Any) -> str:
    """The subject: the surgical case (its appointment id), one billing per case."""
    return str(event.data.case_id)


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="revenue-cycle",
    name="RevenueCycle",
    title="Post-op revenue cycle",
    asl="revenue_cycle.asl.json",
    type="STANDARD",
    subject_type="surgical_case",
    policy="revenue-cycle",
    steps=(
        _step("RegisterCompletedCase", "register_completed_case", "Records the case, pins policy"),
        _step(
            "ReviewCaseBilling",
            "review_case_billing",
            "Charges vs usage, documentation, coding, claim dependencies; bill-only POs, receipts",
        ),
        _step("ApplyDnfbDecision", "apply_dnfb_decision", "The DNFB queue's decision"),
        _step("SubmitCaseClaim", "submit_case_claim", "Builds the FHIR Claim, hands it to billing"),
        _step("FinalizeCaseBilling", "finalize_case_billing", "Records the outcome and KPIs"),
    ),
    triggers=(Trigger(source=SOURCE, detail_type=COMPLETED, build_input=_input, subject=_case),),
    event_schemas={COMPLETED: SurgicalCaseCompleted},
    slas=(
        Sla("dnfb_task", 86400, "a DNFB queue works a case's cause before it escalates"),
        Sla("documentation_wait", 172800, "the operative note is signed after the procedure"),
        Sla("coding_wait", 259200, "coding releases the case's codes after the procedure"),
    ),
    kpis=(
        Kpi("ClaimsSubmitted", "Count", "claims handed to billing"),
        Kpi("ChargeLagDays", "Count", "days from the procedure's end to the first charge"),
        Kpi("MissingCharges", "Count", "used items found without a charge"),
        Kpi("DnfbCases", "Count", "cases routed to a DNFB queue"),
        Kpi("BillOnlyPurchaseOrders", "Count", "purchase orders raised after a bill-only use"),
        Kpi("BillOnlyReceipts", "Count", "goods receipts posted at use for bill-only POs"),
    ),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.revenue_cycle.kpis:values",
    publishes=(CONCLUDED,),
    demo="careflow.workflows.revenue_cycle.demo:run",
    bench="careflow.workflows.revenue_cycle.bench:case",
)
