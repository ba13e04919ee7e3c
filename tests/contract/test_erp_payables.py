"""The ERP's accounts payable endpoints (issue 11) as docs/erp-openapi.yaml documents them:
the REST adapter against the document's examples, and against the ERP sandbox server over
real HTTP with every answer validated against the document on the way in."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from careflow import clock
from careflow.adapters.erp_rest import PAYABLES_OPERATIONS, ErpRestAdapter
from careflow.adapters.http import HttpClient, Rejected, RetryPolicy
from careflow.canonical.payables import InvoiceApproval, InvoiceExceptionAction
from careflow.localcloud.sandboxes.erp_server import ErpSandboxServer
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.invoice_exceptions import rules as r
from tests.integration.test_erp_connector import TOKEN, CheckedTransport, StaticToken
from tests.unit.test_erp_openapi import documented_erp, load_spec

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def test_every_payables_operation_the_adapter_uses_is_documented():
    spec = load_spec()
    for method, template in PAYABLES_OPERATIONS:
        assert method.lower() in spec["paths"][template], f"{method} {template}"


def test_the_adapter_reads_and_writes_the_documented_examples():
    erp, seen = documented_erp()
    [inv] = erp.supplier_invoices("sup-orthoco", "ORTHOCO-31401")
    assert (inv.invoice_id, inv.invoice_number, inv.total) == (
        "INV-9002",
        "ORTHOCO-31401",
        Decimal("772.80"),
    )
    assert isinstance(inv.lines[0].unit_price, Decimal)
    price = erp.contract_price("sup-jointworks", "IMP-THA-CUP-52")
    assert price is not None and price.unit_price == Decimal("1420.00")
    approved = erp.approve_invoice(
        InvoiceApproval(
            invoice_id="INV-9002",
            reference="invoice-exceptions-1c0ffee",
            approved_by="user:ap-clerk-dokoro",
            reason="variance 120.00 USD accepted",
        )
    )
    assert (approved.status, approved.action_id) == ("APPROVED", "APR-00001")
    held = erp.record_invoice_exception_action(
        InvoiceExceptionAction(
            invoice_id="INV-9002",
            reference="invoice-exceptions-1c0ffee",
            action="HOLD",
            causes=("contract_price_variance",),
            queue="ap_pricing",
            actor="system:invoice-match",
            variance=Decimal("82.5"),
        )
    )
    assert held.status == "EXCEPTION"
    assert [(q.method, q.url.path) for q in seen] == [
        ("GET", "/careflow/v1/suppliers/sup-orthoco/invoices"),
        ("GET", "/careflow/v1/suppliers/sup-jointworks/contract-prices/IMP-THA-CUP-52"),
        ("POST", "/careflow/v1/invoices/INV-9002/approval"),
        ("POST", "/careflow/v1/invoices/INV-9002/exception-actions"),
    ]
    assert seen[0].url.params["supplier_invoice_number"] == "ORTHOCO-31401"
    assert b'"amount":"82.50"' in seen[3].content.replace(b" ", b"")


def test_an_answer_for_another_invoice_is_unavailable_not_trusted():
    from careflow.ports import ConnectorUnavailable

    erp, _ = documented_erp()
    with pytest.raises(ConnectorUnavailable, match="another invoice"):
        erp.approve_invoice(
            InvoiceApproval(invoice_id="INV-1", reference="other", approved_by="user:x")
        )


# -- over HTTP, against the ERP sandbox server ---------------------------------------------
@pytest.fixture(scope="module")
def server():
    previous = clock.set_clock(clock.VirtualClock(NOW, speed=0))
    srv = ErpSandboxServer(token=TOKEN, page_size=2).start()
    yield srv
    srv.stop()
    clock.set_clock(previous)


@pytest.fixture
def erp(server):
    server.reset()
    http = HttpClient(
        "erp",
        server.base_url,
        auth=StaticToken(),
        transport=CheckedTransport(),
        sleep=lambda _: None,
        rng=random.Random(1),
        policy=RetryPolicy(timeout=2.0),
    )
    yield ErpRestAdapter(http)
    server.reset()


def _exception_invoice(server) -> dict:
    return next(i for i in server.invoices.values() if i["exceptions"] == ["price_variance"])


def test_the_three_way_match_over_http_finds_the_seeded_price_variance(server, erp):
    seeded = _exception_invoice(server)
    invoice = erp.invoice(seeded["invoice_id"])
    assert invoice is not None and invoice.total == Decimal(seeded["total"]["amount"])
    assert erp.invoice("INV-0") is None
    po = erp.purchase_order(invoice.po_id or "")
    assert po is not None and {line.category for line in po.lines} <= {"implant", "supply"}
    assert erp.purchase_order("PO-0") is None
    receipts = erp.receipts(po.po_id)
    assert receipts and all(x.po_id == po.po_id for x in receipts)
    snapshot = resolve(r.POLICY, po.facility_id, at=NOW, store=FilePolicyStore())
    policy = r.invoice_policy(snapshot, time_zone="UTC")
    contracts = {
        x.item_id: c
        for x in invoice.lines
        if (c := erp.contract_price(invoice.supplier_id, x.item_id)) is not None
    }
    found = r.three_way_match(invoice, po, receipts, contracts, policy)
    assert "price_variance" in found.causes or "contract_price_variance" in found.causes
    same = erp.supplier_invoices(invoice.supplier_id, invoice.invoice_number)
    assert [i.invoice_id for i in same] == [invoice.invoice_id]
    assert r.duplicate_of(invoice, same) is None


def test_no_receipt_is_an_empty_list_and_unknown_contracts_are_none(server, erp):
    no_receipt = next(i for i in server.invoices.values() if i["exceptions"] == ["no_receipt"])
    assert erp.receipts(no_receipt["po_id"]) == []
    assert erp.contract_price("sup-jointworks", "IMP-THA-STEM-12") is None
    price = erp.contract_price("sup-jointworks", "IMP-THA-CUP-52")
    assert price is not None and price.unit_price == Decimal("1420.00")
    assert erp.supplier_invoices("sup-nobody", "X") == []


def test_ap_actions_and_approval_are_idempotent_and_change_the_invoice(server, erp):
    invoice_id = _exception_invoice(server)["invoice_id"]
    action = InvoiceExceptionAction(
        invoice_id=invoice_id,
        reference="ie-1",
        action="ACCEPT_VARIANCE",
        causes=("price_variance",),
        queue="ap_pricing",
        actor="user:ap-clerk-dokoro",
        variance=Decimal("20.50"),
    )
    first = erp.record_invoice_exception_action(action)
    assert erp.record_invoice_exception_action(action) == first
    assert first.status == "EXCEPTION"
    approval = InvoiceApproval(invoice_id=invoice_id, reference="ie-1", approved_by="user:x")
    approved = erp.approve_invoice(approval)
    assert approved.status == "APPROVED" and erp.approve_invoice(approval) == approved
    assert erp.invoice(invoice_id).status == "APPROVED"  # type: ignore[union-attr]


def test_a_returned_invoice_cannot_be_approved(server, erp):
    invoice_id = _exception_invoice(server)["invoice_id"]
    returned = erp.record_invoice_exception_action(
        InvoiceExceptionAction(
            invoice_id=invoice_id,
            reference="ie-2",
            action="RETURN",
            causes=("price_variance",),
            queue="ap_pricing",
            actor="user:ap-clerk-dokoro",
        )
    )
    assert returned.status == "REJECTED"
    with pytest.raises(Rejected, match="rejected_invoice"):
        erp.approve_invoice(
            InvoiceApproval(invoice_id=invoice_id, reference="ie-2", approved_by="user:x")
        )


def test_a_bad_action_is_rejected_with_field_paths(server):
    with httpx.Client(
        base_url=server.base_url + "/", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:
        answer = c.post("invoices/INV-9002/exception-actions", json={"action": "PAY_TWICE"})
        assert answer.status_code == 422
        paths = {e["path"] for e in answer.json()["errors"]}
        assert {"/reference", "/action", "/causes", "/queue", "/actor"} <= paths
        assert (
            c.post(
                "invoices/INV-0/approval", json={"reference": "x", "approved_by": "y"}
            ).status_code
            == 404
        )
