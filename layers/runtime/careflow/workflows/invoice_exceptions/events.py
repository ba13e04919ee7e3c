"""The data of the events invoice exception handling consumes and publishes.

It consumes ``careflow.erp`` / ``Invoice.Received`` (identifiers only: the ERP is re-read
for the invoice, its PO and its receipts) and publishes ``careflow.workflow`` /
``Invoice.Concluded``. Unknown fields are refused (decision 23)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SOURCE = "careflow.erp"
RECEIVED = "Invoice.Received"
CONCLUDED = "Invoice.Concluded"

_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class InvoiceReceived(BaseModel):
    """``careflow.erp`` / ``Invoice.Received``: the ERP registered a supplier invoice (the
    facility is the envelope's ``metadata.facility_id``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: _Id = Field(description="the ERP's invoice id")
    vendor_id: _Id = Field(description="the supplier (vendor) id in the ERP")
    invoice_number: _Id = Field(description="the supplier's own invoice number")
    po_id: _Id | None = Field(
        default=None, description="the purchase order the invoice bills (none: missing PO)"
    )


class InvoiceConcluded(BaseModel):
    """``careflow.workflow`` / ``Invoice.Concluded``: how an invoice's match ended."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    invoice_id: str
    instance_id: str
    outcome: str
    causes: list[str]
    variance: str  # dollars at issue, a decimal string
    queue: str | None
    first_pass: bool
    days_to_resolve: int | None
