"""``make bench``'s case (careflow.kit.bench): an invoice that matches its PO, receipt and
contract price on the first pass (the demo's INV-N-1001) → approved for payment. Each
execution has an invoice of its own in the ERP (its own number and PO: not a duplicate).

``waiting``: South Bay's drapes invoiced over the PO price, beyond the tolerance (the
demo's INV-S-1002): a price variance, an exception task in AP pricing (``ap_pricing``)
that nobody decides."""

from __future__ import annotations

from typing import Any

from careflow.kit.bench import start_target


def _received(cloud: Any, invoice: Any, key: str) -> dict[str, Any]:
    """The invoice (and its PO and receipt) in the ERP, and the intake target of its
    ``Invoice.Received``."""
    from careflow.adapters.sandbox import sandbox

    erp = cloud.erp_server if getattr(cloud, "erp_server", None) is not None else sandbox()
    now = cloud.clock.now()
    erp.add_invoice_case(invoice, now=now)
    return start_target(
        "invoice-exceptions",
        "careflow.erp",
        "Invoice.Received",
        facility_id=invoice.facility_id,
        key=key,
        now=now,
        data={
            "invoice_id": invoice.invoice_id,
            "vendor_id": invoice.supplier_id,
            "invoice_number": invoice.invoice_number,
            "po_id": invoice.po_id,
        },
    )


def waiting(cloud: Any, key: str) -> dict[str, Any]:
    """An invoice whose price variance is over the tolerance: it waits in ``ap_pricing``."""
    from careflow.adapters.sandbox_payables import SEED

    variance = next(c for c in SEED if c.invoice_id == "INV-S-1002")
    invoice = variance._replace(
        invoice_id=f"INV-W-{key}", invoice_number=f"W-{key}", po_id=f"PO-W-{key}"
    )
    return _received(cloud, invoice, key)


def case(cloud: Any, key: str) -> dict[str, Any]:
    from careflow.adapters.sandbox_payables import SEED

    matched = next(c for c in SEED if c.invoice_id == "INV-N-1001")
    invoice = matched._replace(
        invoice_id=f"INV-B-{key}", invoice_number=f"B-{key}", po_id=f"PO-B-{key}"
    )
    return _received(cloud, invoice, key)
