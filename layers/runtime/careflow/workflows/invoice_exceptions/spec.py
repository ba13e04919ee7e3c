"""Invoice exception handling, as the registry reads it."""

from __future__ import annotations

from typing import Any

from careflow.kit.spec import Kpi, Sla, Trigger, Workflow, step_function
from careflow.workflows.invoice_exceptions import kpis
from careflow.workflows.invoice_exceptions.events import (
    CONCLUDED,
    RECEIVED,
    SOURCE,
    InvoiceReceived,
)

_STEPS = "careflow.workflows.invoice_exceptions.steps"


def _input(event: Any) -> dict[str, Any]:
    """Identifiers only: the steps re-read the invoice, its PO and receipts from the ERP."""
    data = event.data
    return {
        "invoice_id": data.invoice_id,
        "vendor_id": data.vendor_id,
        "invoice_number": data.invoice_number,
        "po_id": data.po_id,
    }


def _invoice(event: Any) -> str:
    """The subject: the ERP's invoice, one match per facility and invoice."""
    return str(event.data.invoice_id)


def _step(name: str, step: str, description: str, **kw: Any) -> Any:
    return step_function(name, f"{_STEPS}:{step}", description, **kw)


SPEC = Workflow(
    id="invoice-exceptions",
    name="InvoiceExceptions",
    title="Invoice exception handling",
    asl="invoice_exceptions.asl.json",
    type="STANDARD",
    subject_type="invoice",
    policy="invoice-exceptions",
    steps=(
        _step("RegisterInvoice", "register_invoice", "Records the invoice, pins its policy"),
        _step("MatchInvoice", "match_invoice", "Three-way match of PO, receipt and invoice"),
        _step("ApplyInvoiceDecision", "apply_invoice_decision", "AP's decision, in the ERP"),
        _step("ApproveVariance", "approve_variance", "A second person on a large variance"),
        _step("FinalizeInvoice", "finalize_invoice", "Approves or records the outcome"),
    ),
    triggers=(Trigger(source=SOURCE, detail_type=RECEIVED, build_input=_input, subject=_invoice),),
    event_schemas={RECEIVED: InvoiceReceived},
    slas=(
        Sla("exception_task", 604800, "AP decides an invoice exception before it escalates"),
        Sla("receipt_wait", 432000, "the goods receipt is posted after the invoice arrives"),
    ),
    kpis=(
        Kpi("InvoicesMatchedFirstPass", "Count", "invoices approved with no exception"),
        Kpi("InvoiceExceptions", "Count", "invoices routed to an AP queue"),
        Kpi("InvoiceDaysToResolve", "Count", "days from the exception to AP's decision"),
        Kpi("HumanTasksEscalated", "Count", "tasks escalated for breaching their SLA"),
    ),
    served_kpis=kpis.DEFINITIONS,
    kpi_values="careflow.workflows.invoice_exceptions.kpis:values",
    publishes=(CONCLUDED,),
    models=("careflow.workflows.invoice_exceptions.model:MODEL",),
    demo="careflow.workflows.invoice_exceptions.demo:run",
    bench="careflow.workflows.invoice_exceptions.bench:case",
)
