"""Every step of invoice exception handling through the kit's entry point with in-memory
fakes, its rules (pure: table tests at the tolerance edges, aging against hand-computed
dates) and its KPIs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from careflow.canonical.payables import (
    ContractPrice,
    GoodsReceipt,
    Invoice,
    InvoiceLine,
    PurchaseOrder,
    PurchaseOrderLine,
    ReceiptLine,
)
from careflow.domain.records import Instance, InstanceStatus
from careflow.kit.registry import workflow
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.invoice_exceptions import kpis
from careflow.workflows.invoice_exceptions import rules as r
from tests import fakes
from tests.fakes import FakeErp, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
STEPS = "careflow.workflows.invoice_exceptions.steps"
SPEC = workflow("invoice-exceptions")
POLICIES = FilePolicyStore()
D = Decimal
RATE = 0.6667  # 2 of 3, as careflow.kit.kpis.ratio rounds it


def policy() -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=POLICIES)
    return r.invoice_policy(snapshot, time_zone="America/Chicago")


def po(*lines: tuple[str, int, str], po_id: str = "PO-1") -> PurchaseOrder:
    return PurchaseOrder(
        po_id=po_id,
        supplier_id="sup-a",
        facility_id="fac-north",
        status="RECEIVED",
        lines=tuple(
            PurchaseOrderLine(
                line_number=n,
                item_id=item,
                quantity=qty,
                unit_price=D(price),
                category="implant" if item.startswith("IMP-") else "supply",
            )
            for n, (item, qty, price) in enumerate(lines, start=1)
        ),
    )


def receipt(*quantities: int, po_id: str = "PO-1", items: tuple[str, ...] = ()) -> GoodsReceipt:
    return GoodsReceipt(
        receipt_id="GR-1",
        po_id=po_id,
        received_at=NOW - timedelta(days=3),
        lines=tuple(
            ReceiptLine(po_line_number=n, item_id=items[n - 1] if items else "x", quantity=q)
            for n, q in enumerate(quantities, start=1)
            if q
        ),
    )


def invoice(
    *lines: tuple[str, int, str],
    invoice_id: str = "INV-1",
    number: str = "A-1",
    received_at: datetime = NOW - timedelta(days=1),
    po_id: str | None = "PO-1",
    status: str = "RECEIVED",
) -> Invoice:
    inv_lines = tuple(
        InvoiceLine(
            line_number=n,
            po_line_number=n,
            item_id=item,
            quantity=qty,
            unit_price=D(price),
            amount=D(price) * qty,
        )
        for n, (item, qty, price) in enumerate(lines, start=1)
    )
    return Invoice(
        invoice_id=invoice_id,
        supplier_id="sup-a",
        invoice_number=number,
        po_id=po_id,
        status=status,
        invoice_date=date(2026, 11, 25),
        received_at=received_at,
        total=sum((x.amount for x in inv_lines), D(0)),
        lines=inv_lines,
    )


# -- rules: the policy --------------------------------------------------------------------
def test_the_policy_keeps_money_as_decimal_and_maps_every_cause_to_a_queue():
    p = policy()
    assert p.price_tolerance_percent == D("2") and isinstance(p.price_tolerance_percent, Decimal)
    assert p.price_tolerance_usd == D("50.00") and isinstance(p.price_tolerance_usd, Decimal)
    assert p.exact_quantity == {"implant": True, "supply": False}
    assert set(p.queues) == set(r.CAUSES)
    assert p.queues[r.PRICE_VARIANCE] == "ap_pricing"
    assert p.queues[r.QUANTITY_VARIANCE] == "ap_receiving"
    assert p.receipt_wait_s == 5 * 86400
    assert p.exception_task_s == 7 * 86400
    assert p.escalation_chain == ("ap_supervisor", "ap_manager", "controller")
    # in the execution's state, amounts travel as decimal strings, never floats
    dumped = p.model_dump(mode="json")
    assert dumped["price_tolerance_percent"] == "2" and dumped["price_tolerance_usd"] == "50.00"


@pytest.mark.parametrize(
    ("expected_amount", "allowed"),
    [
        ("2500.00", "50.00"),  # 2 % is exactly $50: either way
        ("2499.99", "50.00"),  # 2 % is $50.00 (rounded): the $50 floor
        ("1000.00", "50.00"),  # 2 % is $20: the $50 allowance is larger
        ("4900.00", "98.00"),  # 2 % is larger than $50
        ("10.00", "50.00"),
        ("2525.00", "50.50"),
    ],
)
def test_the_allowance_is_the_larger_of_two_percent_and_fifty_dollars(expected_amount, allowed):
    assert r.allowance(D(expected_amount), D("2"), D("50.00")) == D(allowed)


@pytest.mark.parametrize(
    ("po_line", "invoiced", "received", "causes", "variance"),
    [
        # exactly at 2 % of a $4,900 line: within
        (("SUP-X", 1, "4900.00"), ("SUP-X", 1, "4998.00"), 1, (), "0"),
        # one cent over 2 %: a price variance of $98.01
        (("SUP-X", 1, "4900.00"), ("SUP-X", 1, "4998.01"), 1, ("price_variance",), "98.01"),
        # the $50 boundary on a $1,000 line (2 % would be $20): within at $50.00
        (("SUP-X", 1, "1000.00"), ("SUP-X", 1, "1050.00"), 1, (), "0"),
        # one cent over $50
        (("SUP-X", 1, "1000.00"), ("SUP-X", 1, "1050.01"), 1, ("price_variance",), "50.01"),
        # per line, over the invoiced quantity: 10 x $5.01 = $50.10 over on a $385 line
        (("SUP-D", 10, "38.50"), ("SUP-D", 10, "43.51"), 10, ("price_variance",), "50.10"),
        # paying less than the PO price is never an exception
        (("SUP-X", 1, "1000.00"), ("SUP-X", 1, "900.00"), 1, (), "0"),
        # an implant's quantity is exact: one more invoiced than received
        (("IMP-A", 2, "1980.00"), ("IMP-A", 2, "1980.00"), 1, ("quantity_variance",), "1980.00"),
        # ... and one fewer invoiced than received
        (("IMP-A", 2, "1980.00"), ("IMP-A", 1, "1980.00"), 2, ("quantity_variance",), "1980.00"),
        # exact match of an implant
        (("IMP-A", 2, "1980.00"), ("IMP-A", 2, "1980.00"), 2, (), "0"),
        # supplies: at most what was received (a partial invoice is fine)
        (("SUP-X", 10, "92.00"), ("SUP-X", 9, "92.00"), 10, (), "0"),
        (("SUP-X", 10, "92.00"), ("SUP-X", 11, "92.00"), 10, ("quantity_variance",), "92.00"),
    ],
)
def test_three_way_match_at_the_tolerance_edges(po_line, invoiced, received, causes, variance):
    found = r.three_way_match(invoice(invoiced), po(po_line), [receipt(received)], {}, policy())
    assert found.causes == causes
    assert found.variance == D(variance)


def test_the_contract_price_is_the_expected_price_when_the_supplier_has_one():
    contract = ContractPrice(
        supplier_id="sup-a", item_id="IMP-CUP", contract_id="GPO-1", unit_price=D("1420.00")
    )
    # PO and invoice agree at 1450.00, the contract says 1420.00: 4 x 30 = 120 over, 2 % of
    # 5680.00 = 113.60 allowed
    found = r.three_way_match(
        invoice(("IMP-CUP", 4, "1450.00")),
        po(("IMP-CUP", 4, "1450.00")),
        [receipt(4)],
        {"IMP-CUP": contract},
        policy(),
    )
    assert found.causes == ("contract_price_variance",)
    assert found.variance == D("120.00")
    assert "contract GPO-1" in found.findings[0].reason
    # at 1448.40 a unit: 4 x 28.40 = 113.60, exactly the allowance
    within = r.three_way_match(
        invoice(("IMP-CUP", 4, "1448.40")),
        po(("IMP-CUP", 4, "1450.00")),
        [receipt(4)],
        {"IMP-CUP": contract},
        policy(),
    )
    assert within.causes == ()


def test_a_line_not_on_the_po_is_a_quantity_variance():
    inv = invoice(("SUP-X", 1, "10.00"), ("SUP-Y", 2, "5.00"))
    found = r.three_way_match(inv, po(("SUP-X", 1, "10.00")), [receipt(1)], {}, policy())
    assert found.causes == ("quantity_variance",)
    assert found.variance == D("10.00")


def test_receipts_add_up_per_po_line():
    got = r.received_by_line([receipt(1, 2), receipt(1, 0)])
    assert got == {1: 2, 2: 2}


def test_a_duplicate_repeats_an_earlier_invoice_with_the_same_number_and_total():
    first = invoice(("SUP-X", 1, "10.00"), invoice_id="INV-1", received_at=NOW - timedelta(days=2))
    again = invoice(("SUP-X", 1, "10.00"), invoice_id="INV-2", received_at=NOW)
    other_total = invoice(("SUP-X", 2, "10.00"), invoice_id="INV-3", received_at=NOW)
    rejected = first.model_copy(update={"status": "REJECTED"})
    assert r.duplicate_of(again, [first, again]) == "INV-1"
    assert r.duplicate_of(first, [first, again]) is None  # the first received is the original
    assert r.duplicate_of(other_total, [first, other_total]) is None
    assert r.duplicate_of(again, [rejected, again]) is None


@pytest.mark.parametrize(
    ("invoice_date", "days", "label"),
    [
        (date(2026, 11, 29), 0, "0-7"),
        (date(2026, 11, 22), 7, "0-7"),
        (date(2026, 11, 21), 8, "8-30"),
        (date(2026, 10, 30), 30, "8-30"),
        (date(2026, 10, 29), 31, "31-60"),
        (date(2026, 9, 30), 60, "31-60"),
        (date(2026, 9, 29), 61, "60+"),
        (date(2026, 12, 3), 0, "0-7"),  # dated in the future: not aged
    ],
)
def test_aging_buckets_from_the_invoice_date(invoice_date, days, label):
    assert r.age_days(invoice_date, date(2026, 11, 29)) == days
    assert r.bucket(days) == label


# -- steps ---------------------------------------------------------------------------------
def ports(**given):
    base = {
        "store": InMemoryStateStore(),
        "policies": POLICIES,
        "now": NOW,
        "erp": FakeErp(),
        "publisher": FakePublisher(),
        "predictor": None,  # no model: the rules decide (the model's tests below give one)
    }
    base.update(given)
    return base.__getitem__, base


def run(name: str, event: dict, **given) -> tuple[dict, dict]:
    resolver, used = ports(**given)
    return invoke(f"{STEPS}:{name}", event, ports=resolver), used


def match_input(p: r.Policy | None = None, **more) -> dict:
    return {
        "instance_id": "ie-1",
        "facility_id": "fac-north",
        "invoice_id": "INV-1",
        "vendor_id": "sup-a",
        "invoice_number": "A-1",
        "po_id": "PO-1",
        "policy": (p or policy()).model_dump(mode="json"),
        **more,
    }


def erp_with(inv: Invoice, order: PurchaseOrder | None = None, receipts=(), contracts=()):
    erp = FakeErp()
    erp.add_invoice(inv, order, receipts, contracts)
    return erp


REGISTER = {
    "instance_id": "ie-1",
    "correlation_id": "c-1",
    "facility_id": "fac-north",
    "occurred_at": NOW.isoformat(),
    "invoice_id": "INV-1",
    "vendor_id": "sup-a",
    "invoice_number": "A-1",
    "po_id": "PO-1",
}


def test_register_invoice_pins_the_policy_and_records_the_instance():
    out, used = run("register_invoice", REGISTER)
    assert out["policy"]["policy_version"].startswith("invoice-exceptions@")
    assert out["policy"]["receipt_wait_s"] == 5 * 86400
    assert out["received_at"].startswith("2026-11-29T15:00:00")
    instance = used["store"].get_instance("ie-1")
    assert (instance.subject_type, instance.subject_id) == ("invoice", "INV-1")
    assert [m.name for m in used["store"].milestones("ie-1")] == ["invoice_received"]


def test_match_invoice_within_tolerance_is_matched_and_writes_nothing_to_the_erp():
    erp = erp_with(invoice(("SUP-X", 1, "1050.00")), po(("SUP-X", 1, "1000.00")), [receipt(1)])
    out, used = run("match_invoice", match_input(), erp=erp)
    assert out["result"] == "MATCHED" and out["invoice_date"] == "2026-11-25"
    assert erp.ap.actions == [] and erp.ap.approvals == []
    assert "matched" in [m.name for m in used["store"].milestones("ie-1")]


def test_match_invoice_routes_an_exception_to_its_queue_and_holds_it_in_the_erp():
    erp = erp_with(invoice(("SUP-D", 30, "41.25")), po(("SUP-D", 30, "38.50")), [receipt(30)])
    out, used = run("match_invoice", match_input(), erp=erp)
    assert out["result"] == "EXCEPTION"
    assert out["causes"] == ["price_variance"] and out["variance"] == "82.50"
    assert out["queue"] == "ap_pricing"
    task = out["task"]
    assert task["purpose"] == "invoice-exception"
    assert task["escalation_chain"] == ["ap_pricing", "ap_supervisor", "ap_manager", "controller"]
    assert task["allowed_decisions"] == ["ACCEPT_VARIANCE", "REQUEST_CREDIT_MEMO", "RETURN"]
    assert task["subject_ref"] == "invoice/INV-1"
    assert out["task_due_s"] == 3 * 86400 + 15 * 3600  # the 8-30 bucket, 2026-12-03
    [hold] = erp.ap.actions
    assert (hold.action, hold.causes, hold.queue, hold.variance) == (
        "HOLD",
        ("price_variance",),
        "ap_pricing",
        D("82.50"),
    )
    [raised] = [
        a for a in used["store"].audit_trail("ie-1") if a.action == "invoice_exception_raised"
    ]
    # invoiced 2026-11-25, today 2026-11-29 in Chicago: 4 days, the first bucket
    assert raised.detail["age_days"] == 4 and raised.detail["bucket"] == "0-7"


@pytest.mark.parametrize(
    ("invoice_date", "now", "due_s"),
    [
        # dated 2026-11-25, now 2026-11-29 09:00 Chicago: the 8-30 bucket from 2026-12-03
        # 00:00 Chicago, 3 days 15 hours away
        (date(2026, 11, 25), NOW, 3 * 86400 + 15 * 3600),
        # a week old: midnight tonight, 15 hours away
        (date(2026, 11, 22), NOW, 15 * 3600),
        # 8-30 enters 31-60 on 2026-12-30: more than 7 days away, the policy's 7 days
        (date(2026, 11, 29), NOW, 7 * 86400),
        # in the last bucket: the policy's 7 days
        (date(2026, 8, 1), NOW, 7 * 86400),
        # the boundary 10 minutes away: at least an hour
        (date(2026, 11, 22), datetime(2026, 11, 30, 5, 50, tzinfo=UTC), 3600),
    ],
)
def test_an_exception_task_is_due_when_the_invoice_enters_its_next_bucket(invoice_date, now, due_s):
    chicago = ZoneInfo("America/Chicago")
    assert r.task_due_s(invoice_date, now, chicago, policy()) == due_s


def test_match_invoice_finds_an_implants_quantity_off_by_one():
    erp = erp_with(
        invoice(("IMP-STEM", 3, "1980.00")), po(("IMP-STEM", 3, "1980.00")), [receipt(2)]
    )
    out, _ = run("match_invoice", match_input(), erp=erp)
    assert (out["result"], out["causes"], out["queue"]) == (
        "EXCEPTION",
        ["quantity_variance"],
        "ap_receiving",
    )
    assert out["variance"] == "1980.00"


def test_match_invoice_waits_for_the_receipt_then_gives_up_at_the_policys_limit():
    erp = erp_with(invoice(("SUP-X", 1, "10.00")), po(("SUP-X", 1, "10.00")), [])
    out, used = run("match_invoice", match_input(), erp=erp)
    assert out["result"] == "AWAITING_RECEIPT"
    assert "awaiting_receipt" in [m.name for m in used["store"].milestones("ie-1")]
    # five days after AP received the invoice (the ERP's received_at): no more waiting
    late = erp_with(
        invoice(("SUP-X", 1, "10.00"), received_at=NOW - timedelta(days=5)),
        po(("SUP-X", 1, "10.00")),
        [],
    )
    out, _ = run("match_invoice", match_input(), erp=late)
    assert (out["result"], out["causes"], out["queue"]) == (
        "NO_RECEIPT",
        ["no_receipt"],
        "ap_receiving",
    )


def test_match_invoice_finds_a_duplicate_before_anything_else():
    first = invoice(("SUP-X", 1, "10.00"), invoice_id="INV-0", received_at=NOW - timedelta(days=9))
    erp = erp_with(invoice(("SUP-X", 1, "10.00")), po(("SUP-X", 1, "10.00")), [receipt(1)])
    erp.add_invoice(first)
    out, _ = run("match_invoice", match_input(), erp=erp)
    assert (out["result"], out["duplicate_of"], out["queue"]) == (
        "DUPLICATE",
        "INV-0",
        "ap_duplicates",
    )


def test_match_invoice_with_no_po_in_the_erp_is_a_missing_po_exception():
    erp = erp_with(invoice(("SUP-X", 1, "10.00"), po_id=None))
    out, _ = run("match_invoice", match_input(po_id=None), erp=erp)
    assert (out["result"], out["causes"], out["queue"]) == (
        "EXCEPTION",
        ["missing_po"],
        "ap_purchasing",
    )


def test_match_invoice_refuses_an_invoice_the_erp_does_not_hold_as_sent():
    with pytest.raises(Exception, match="does not know invoice"):
        run("match_invoice", match_input(), erp=FakeErp())
    erp = erp_with(invoice(("SUP-X", 1, "10.00"), number="OTHER"))
    with pytest.raises(Exception, match="another supplier's or number"):
        run("match_invoice", match_input(), erp=erp)


def exception_match() -> dict:
    return {
        "result": "EXCEPTION",
        "causes": ["price_variance"],
        "reasons": ["line 1 (SUP-D): 41.25 a unit vs 38.50 (the PO), 82.50 over, tolerance 50.00"],
        "variance": "82.50",
        "queue": "ap_pricing",
        "invoice_date": "2026-11-25",
    }


@pytest.mark.parametrize(
    ("decision", "outcome", "approved"),
    [
        ("ACCEPT_VARIANCE", "RESOLVED_ACCEPTED", True),
        ("REQUEST_CREDIT_MEMO", "CREDIT_MEMO_REQUESTED", False),
        ("RETURN", "RETURNED", False),
    ],
)
def test_apply_invoice_decision_records_the_action_in_the_erp(decision, outcome, approved):
    erp = FakeErp()
    out, used = run(
        "apply_invoice_decision",
        {
            "instance_id": "ie-1",
            "invoice_id": "INV-1",
            "policy": policy().model_dump(mode="json"),
            "match": exception_match(),
            "ap": {"task_id": "t-1", "decision": decision, "actor": "user:ap-clerk-mgarcia"},
        },
        erp=erp,
    )
    assert (out["decision"], out["outcome"]) == (decision, outcome)
    [action] = erp.ap.actions
    assert (action.action, action.actor, action.variance) == (
        decision,
        "user:ap-clerk-mgarcia",
        D("82.50"),
    )
    assert [a.approved_by for a in erp.ap.approvals] == (
        ["user:ap-clerk-mgarcia"] if approved else []
    )
    assert out["status"] == ("APPROVED" if approved else action_status(decision))
    assert "exception_decided" in [m.name for m in used["store"].milestones("ie-1")]


def action_status(decision: str) -> str:
    return "REJECTED" if decision == "RETURN" else "EXCEPTION"


def test_apply_invoice_decision_refuses_a_decision_it_does_not_know():
    with pytest.raises(Exception, match="not a decision"):
        run(
            "apply_invoice_decision",
            {
                "instance_id": "ie-1",
                "invoice_id": "INV-1",
                "policy": policy().model_dump(mode="json"),
                "match": exception_match(),
                "ap": {"decision": "PAY_TWICE", "actor": "user:x"},
            },
        )


def finalize_input(match: dict, **more) -> dict:
    return {
        "instance_id": "ie-1",
        "correlation_id": "c-1",
        "facility_id": "fac-north",
        "invoice_id": "INV-1",
        "policy": policy().model_dump(mode="json"),
        "match": match,
        **more,
    }


def started_store() -> InMemoryStateStore:
    store = InMemoryStateStore()
    out = invoke(
        f"{STEPS}:register_invoice",
        {
            "instance_id": "ie-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "occurred_at": (NOW - timedelta(days=12)).isoformat(),
            "invoice_id": "INV-1",
            "vendor_id": "sup-a",
            "invoice_number": "A-1",
            "po_id": "PO-1",
        },
        ports=ports(store=store, now=NOW - timedelta(days=12))[0],
    )
    assert out["instance_id"] == "ie-1"
    return store


def test_finalize_a_match_approves_it_for_payment_first_pass():
    store, erp = started_store(), FakeErp()
    out, _ = run(
        "finalize_invoice",
        finalize_input({"result": "MATCHED", "invoice_date": "2026-11-25"}),
        store=store,
        erp=erp,
    )
    assert out["outcome"] == "MATCHED" and out["detail_type"] == "Invoice.Concluded"
    assert [a.approved_by for a in erp.ap.approvals] == ["system:invoice-match"]
    data = out["detail"]["data"]
    assert data["first_pass"] is True and data["days_to_resolve"] is None
    assert set(data) == {
        "invoice_id",
        "instance_id",
        "outcome",
        "causes",
        "variance",
        "queue",
        "first_pass",
        "days_to_resolve",
    }
    instance = store.get_instance("ie-1")
    assert (instance.status, instance.outcome) == (InstanceStatus.COMPLETED, "MATCHED")


@pytest.mark.parametrize(
    ("result", "outcome", "action"),
    [("DUPLICATE", "DUPLICATE", "REJECT"), ("NO_RECEIPT", "NO_RECEIPT", "HOLD")],
)
def test_finalize_a_duplicate_or_no_receipt_records_it_in_the_erp(result, outcome, action):
    erp = FakeErp()
    match = {
        "result": result,
        "causes": ["duplicate_invoice" if result == "DUPLICATE" else "no_receipt"],
        "reasons": ["why"],
        "variance": "10.00",
        "queue": "ap_duplicates",
        "invoice_date": "2026-11-25",
        "duplicate_of": "INV-0" if result == "DUPLICATE" else None,
    }
    out, _ = run("finalize_invoice", finalize_input(match), store=started_store(), erp=erp)
    assert out["outcome"] == outcome
    assert [a.action for a in erp.ap.actions] == [action]
    assert erp.ap.approvals == []


def test_finalize_a_resolution_counts_the_days_from_the_exception_to_the_decision():
    store = started_store()
    raised_at = NOW - timedelta(days=9, hours=2)
    run(
        "match_invoice",
        match_input(),
        store=store,
        now=raised_at,
        erp=erp_with(invoice(("SUP-D", 30, "41.25")), po(("SUP-D", 30, "38.50")), [receipt(30)]),
    )
    decided = {
        "decision": "REQUEST_CREDIT_MEMO",
        "outcome": "CREDIT_MEMO_REQUESTED",
        "actor": "user:ap-clerk-mgarcia",
        "status": "EXCEPTION",
    }
    out, _ = run(
        "finalize_invoice", finalize_input(exception_match(), decision=decided), store=store
    )
    assert out["outcome"] == "CREDIT_MEMO_REQUESTED"
    assert out["detail"]["data"]["days_to_resolve"] == 9
    assert out["reasons"][-1] == "REQUEST_CREDIT_MEMO by user:ap-clerk-mgarcia"


def test_finalize_with_no_decision_from_the_chain_is_unresolved():
    out, _ = run(
        "finalize_invoice",
        finalize_input(exception_match(), escalation_exhausted=True),
        store=started_store(),
    )
    assert out["outcome"] == "UNRESOLVED"
    assert out["reasons"][-1] == "no decision from the escalation chain before its last SLA"


# -- KPIs ----------------------------------------------------------------------------------
def test_kpis_first_pass_rate_aging_by_bucket_and_days_to_resolve():
    store = InMemoryStateStore()

    def instance(n: int, status: InstanceStatus, outcome: str | None) -> Instance:
        return Instance(
            instance_id=f"ie-{n}",
            workflow_id="invoice-exceptions",
            subject_type="invoice",
            subject_id=f"INV-{n}",
            facility_id="fac-north",
            correlation_id=f"c-{n}",
            execution_name=f"ie-{n}",
            status=status,
            outcome=outcome,
            started_at=NOW - timedelta(days=40),
            updated_at=NOW - timedelta(hours=1),
        )

    from careflow.domain.records import AuditEntry

    def audit(n: int, action: str, **detail) -> None:
        store.record_audit(
            AuditEntry(instance_id=f"ie-{n}", at=NOW, actor="x", action=action, detail=detail)
        )

    instances = [
        instance(1, InstanceStatus.COMPLETED, "MATCHED"),
        instance(2, InstanceStatus.COMPLETED, "MATCHED"),
        instance(3, InstanceStatus.COMPLETED, "CREDIT_MEMO_REQUESTED"),
        instance(4, InstanceStatus.COMPLETED, "DUPLICATE"),
        instance(5, InstanceStatus.WAITING, None),
        instance(6, InstanceStatus.WAITING, None),
    ]
    audit(1, "invoice_measured", first_pass=True, days_to_resolve=None)
    audit(2, "invoice_measured", first_pass=True, days_to_resolve=None)
    audit(3, "invoice_measured", first_pass=False, days_to_resolve=12)
    audit(4, "invoice_measured", first_pass=False, days_to_resolve=None)
    audit(5, "invoice_exception_raised", invoice_date="2026-11-20")  # 9 days
    audit(6, "invoice_exception_raised", invoice_date="2026-09-01")  # 89 days
    got = kpis.values(store, instances, NOW - timedelta(days=1), NOW)
    assert got["first_pass_match_rate"] == {"invoices": 3, "matched_first_pass": 2, "rate": RATE}
    assert got["exception_aging"] == {"0-7": 0, "8-30": 1, "31-60": 0, "60+": 1}
    assert got["days_to_resolve"]["resolved"] == 1
    assert got["days_to_resolve"]["p50_days"] == 12
    assert {d.name for d in SPEC.served_kpis} == set(got)


# -- a second person for a large accepted variance -------------------------------------------
@pytest.mark.parametrize(
    ("variance", "second"),
    [("500.00", False), ("500.01", True), ("-500.01", True), ("-500.00", False), ("0", False)],
)
def test_a_second_approval_is_needed_only_above_the_policys_limit(variance, second):
    assert policy().variance_approval_usd == D("500.00")
    assert r.needs_second_approval(D(variance), policy()) is second


def large_match() -> dict:
    task = {
        "purpose": "invoice-exception",
        "title": "Invoice INV-1: contract price variance, 600.00 USD",
        "reasons": ["line 1: 600.00 over"],
        "escalation_chain": ["ap_pricing", "ap_supervisor"],
        "allowed_decisions": ["ACCEPT_VARIANCE", "REQUEST_CREDIT_MEMO", "RETURN"],
        "subject_ref": "invoice/INV-1",
        "facility_id": "fac-north",
        "policy_version": policy().policy_version,
    }
    return exception_match() | {"variance": "600.00", "task": task}


def test_accepting_a_variance_above_the_limit_asks_a_second_person_and_pays_nothing_yet():
    erp = FakeErp()
    out, used = run(
        "apply_invoice_decision",
        {
            "instance_id": "ie-1",
            "invoice_id": "INV-1",
            "policy": policy().model_dump(mode="json"),
            "match": large_match(),
            "ap": {"decision": "ACCEPT_VARIANCE", "actor": "user:ap-clerk-dokoro"},
        },
        erp=erp,
    )
    assert (out["outcome"], out["awaits_approval"]) == ("AWAITING_APPROVAL", True)
    task = out["approval_task"]
    assert task["escalation_chain"] == ["ap_manager", "controller"]
    assert task["allowed_decisions"] == ["APPROVE", "REJECT"]
    assert task["excluded_actors"] == ["user:ap-clerk-dokoro"]
    assert task["facility_id"] == "fac-north"
    assert erp.ap.actions == [] and erp.ap.approvals == []  # the invoice stays held
    [m] = [m for m in used["store"].milestones("ie-1") if m.name == "variance_approval_requested"]
    assert m.status == "PENDING"


def approval_input(decision: str, approver: str) -> dict:
    return {
        "instance_id": "ie-1",
        "invoice_id": "INV-1",
        "policy": policy().model_dump(mode="json"),
        "match": large_match(),
        "decision": {
            "decision": "ACCEPT_VARIANCE",
            "outcome": "AWAITING_APPROVAL",
            "actor": "user:ap-clerk-dokoro",
            "status": "HELD",
            "awaits_approval": True,
        },
        "approval": {"decision": decision, "actor": approver},
    }


def test_approve_variance_records_the_acceptor_and_pays_with_the_approver():
    erp = FakeErp()
    out, used = run("approve_variance", approval_input("APPROVE", "user:ap-mgr-lchen"), erp=erp)
    assert (out["outcome"], out["actor"], out["approved_by"]) == (
        "RESOLVED_ACCEPTED",
        "user:ap-clerk-dokoro",
        "user:ap-mgr-lchen",
    )
    [action] = erp.ap.actions
    assert (action.action, action.actor) == ("ACCEPT_VARIANCE", "user:ap-clerk-dokoro")
    assert [a.approved_by for a in erp.ap.approvals] == ["user:ap-mgr-lchen"]
    names = [m.name for m in used["store"].milestones("ie-1")]
    assert "variance_approved" in names and "exception_decided" in names


def test_a_rejected_approval_requests_a_credit_memo_and_pays_nothing():
    erp = FakeErp()
    out, _ = run("approve_variance", approval_input("REJECT", "user:controller-nhall"), erp=erp)
    assert (out["decision"], out["outcome"]) == ("REQUEST_CREDIT_MEMO", "CREDIT_MEMO_REQUESTED")
    [action] = erp.ap.actions
    assert (action.action, action.actor) == ("REQUEST_CREDIT_MEMO", "user:controller-nhall")
    assert erp.ap.approvals == []


def test_the_acceptor_cannot_approve_their_own_acceptance_nor_answer_something_else():
    with pytest.raises(Exception, match="may not approve"):
        run("approve_variance", approval_input("APPROVE", "user:ap-clerk-dokoro"))
    with pytest.raises(Exception, match="not a decision on a variance approval"):
        run("approve_variance", approval_input("MAYBE", "user:ap-mgr-lchen"))


def test_finalize_after_an_unanswered_approval_is_unresolved_with_the_acceptor_named():
    decided = approval_input("APPROVE", "x")["decision"]
    out, _ = run(
        "finalize_invoice",
        {
            "instance_id": "ie-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "invoice_id": "INV-1",
            "policy": policy().model_dump(mode="json"),
            "match": large_match(),
            "decision": decided,
            "escalation_exhausted": True,
        },
    )
    assert out["outcome"] == "UNRESOLVED"
    assert any("accepted by user:ap-clerk-dokoro, no approval" in r_ for r_ in out["reasons"])


# -- the invoice exception model at receipt (decision 49) ----------------------------------


def FakePredictor(label: str, confidence: float) -> fakes.FakePredictor:
    """Answers every input with one label at one confidence; remembers what it saw."""
    from careflow.workflows.invoice_exceptions import model

    return fakes.FakePredictor(label, confidence, model.CLASSES, ("receipt_posted",))


def ai_policies(tmp_path, mode: str, threshold: float = 0.6) -> FilePolicyStore:
    """The repository's policies with the invoice_exception row of ai-models set."""
    return fakes.ai_models_policies(tmp_path, "invoice_exception", mode, threshold)


def awaiting_erp() -> FakeErp:  # an invoice whose PO has no goods receipt yet
    return erp_with(invoice(("SUP-X", 2, "10.00")), po(("SUP-X", 2, "10.00")), [])


def model_actions(store, instance_id: str = "ie-1") -> list[str]:
    return [a.action for a in store.audit_trail(instance_id) if a.action.startswith("model.")]


def test_a_confident_no_receipt_at_receipt_asks_receiving_at_once(tmp_path):
    predictor, publisher = FakePredictor("no_receipt", 0.81), FakePublisher()
    out, used = run(
        "register_invoice",
        REGISTER,
        erp=awaiting_erp(),
        predictor=predictor,
        publisher=publisher,
        policies=ai_policies(tmp_path, "on"),
    )
    assert out["risk"]["label"] == "no_receipt" and out["risk"]["acts"] is True
    assert out["risk"]["version"] == "1.test"
    seen = predictor.seen[0]
    assert (seen["has_po"], seen["po_known"], seen["receipt_posted"]) == (True, True, False)
    assert seen["line_count"] == 1 and seen["invoice_age_days"] == 3  # 11-25 to 11-28
    assert "INV-1" not in str(seen) and "sup-a" not in str(seen) and "PO-1" not in str(seen)
    store = used["store"]
    [risk] = [m for m in store.milestones("ie-1") if m.name == "exception_risk"]
    assert risk.detail.startswith("no_receipt at 0.81 (invoice_exception 1.test)")
    assert "ap_receiving asked at receipt" in risk.detail
    [task] = store.tasks_for_instance("ie-1")
    assert task.queue == "ap_receiving" and task.allowed_decisions == ()
    assert task.task_token is None  # informational: the execution never waits on it
    # due when the match stops waiting: five days after AP received it (a day ago)
    assert task.due_at == NOW + timedelta(days=4)
    assert task.reasons[0].startswith("likely cause at receipt: no_receipt at 0.81")
    assert task.suggestion is None  # an acknowledgement is no answer to the model
    # scored for the receiving inbox like every task (it sank below them all, unscored)
    assert task.priority is not None and task.value_usd == 20.0
    predicted = [a for a in store.audit_trail("ie-1") if a.action == "model.predicted"]
    assert [a.detail["model_id"] for a in predicted] == ["invoice_exception", "task_priority"]
    assert predicted[1].detail["about"] == task.task_id
    assert predicted[1].detail["features"]["awaits_decision"] is False  # nothing waits


def test_a_confident_no_receipt_with_the_receipt_posted_asks_nobody(tmp_path):
    erp = erp_with(invoice(("SUP-X", 2, "10.00")), po(("SUP-X", 2, "10.00")), [receipt(2)])
    out, used = run(
        "register_invoice",
        REGISTER,
        erp=erp,
        predictor=FakePredictor("no_receipt", 0.9),
        policies=ai_policies(tmp_path, "on"),
    )
    assert out["risk"]["acts"] is True
    assert used["store"].tasks_for_instance("ie-1") == []
    assert "exception_risk" in [m.name for m in used["store"].milestones("ie-1")]


@pytest.mark.parametrize(
    ("mode", "confidence", "audited", "risk"),
    [
        ("on", 0.4, "model.predicted", "below"),  # below the threshold: carried, not acted on
        ("shadow", 0.95, "model.predicted", None),  # predicted and audited, never acts
        ("off", 0.95, "model.skipped", None),  # the kill switch: the rules decide
    ],
)
def test_below_the_threshold_in_shadow_or_off_nothing_is_pre_routed(
    tmp_path, mode, confidence, audited, risk
):
    predictor = FakePredictor("no_receipt", confidence)
    out, used = run(
        "register_invoice",
        REGISTER,
        erp=awaiting_erp(),
        predictor=predictor,
        policies=ai_policies(tmp_path, mode),
    )
    store = used["store"]
    assert store.tasks_for_instance("ie-1") == []
    assert [m.name for m in store.milestones("ie-1")] == ["invoice_received"]
    assert model_actions(store) == [audited]
    assert len(predictor.seen) == (0 if mode == "off" else 1)
    if risk is None:
        assert out["risk"] is None
    else:
        assert out["risk"]["acts"] is False and out["risk"]["label"] == "no_receipt"


def test_without_the_invoice_in_the_erp_the_model_is_not_asked(tmp_path):
    predictor = FakePredictor("no_receipt", 0.9)
    out, used = run(
        "register_invoice", REGISTER, predictor=predictor, policies=ai_policies(tmp_path, "on")
    )
    assert out["risk"] is None and predictor.seen == []
    assert model_actions(used["store"]) == []


def risk_of(label: str, confidence: float, acts: bool) -> dict:
    return {
        "model_id": "invoice_exception",
        "version": "1.test",
        "label": label,
        "confidence": confidence,
        "reasons": ["amount_log10"],
        "ranked": [[label, confidence]],
        "input_hash": "h",
        "mode": "on",
        "acts": acts,
    }


def price_variance_erp() -> FakeErp:
    return erp_with(invoice(("SUP-D", 30, "41.25")), po(("SUP-D", 30, "38.50")), [receipt(30)])


def test_the_exception_task_suggests_the_decision_that_follows_an_agreeing_cause():
    risk = risk_of("price_variance", 0.72, True)
    out, _ = run("match_invoice", match_input(risk=risk), erp=price_variance_erp())
    task = out["task"]
    assert out["queue"] == "ap_pricing"  # the rules' queue
    assert task["suggestion"]["decision"] == "REQUEST_CREDIT_MEMO"
    assert task["suggestion"]["version"] == "1.test"
    assert task["reasons"][-1] == (
        "likely cause at receipt: price_variance at 0.72 (invoice_exception 1.test), "
        "as the match found; REQUEST_CREDIT_MEMO suggested"
    )
    assert task["allowed_decisions"] == ["ACCEPT_VARIANCE", "REQUEST_CREDIT_MEMO", "RETURN"]


def test_the_rules_cause_wins_over_a_confident_other_cause():
    risk = risk_of("quantity_variance", 0.9, True)
    out, _ = run("match_invoice", match_input(risk=risk), erp=price_variance_erp())
    task = out["task"]
    assert out["queue"] == "ap_pricing" and out["causes"] == ["price_variance"]
    assert "decision" not in task["suggestion"]
    assert task["reasons"][-1].endswith("the match found price_variance, which decides")


def test_a_low_confidence_cause_is_shown_below_the_threshold_and_suggests_nothing():
    out, _ = run(
        "match_invoice",
        match_input(risk=risk_of("price_variance", 0.41, False)),
        erp=price_variance_erp(),
    )
    task = out["task"]
    assert "decision" not in task["suggestion"] and task["suggestion"]["acts"] is False
    assert task["reasons"][-1].endswith("below the policy's threshold: the rules decide")


@pytest.mark.parametrize(
    ("mode", "threshold", "shown"),
    [("off", 0.6, False), ("shadow", 0.6, False), ("on", 0.8, True)],
)
def test_the_policy_in_force_at_the_exception_decides_what_the_task_shows(
    tmp_path, mode, threshold, shown
):
    """Registered before the row was switched off (or its threshold raised): the kill
    switch reaches the invoice at its exception."""
    out, _ = run(
        "match_invoice",
        match_input(risk=risk_of("price_variance", 0.72, True)),
        erp=price_variance_erp(),
        policies=ai_policies(tmp_path, mode, threshold),
    )
    task = out["task"]
    assert out["queue"] == "ap_pricing"
    if not shown:
        assert task["suggestion"] is None and len(task["reasons"]) == 1
    else:  # 0.72 is below the raised threshold now: shown, nothing suggested
        assert task["suggestion"]["acts"] is False and "decision" not in task["suggestion"]
        assert task["reasons"][-1].endswith("below the policy's threshold: the rules decide")


def test_without_a_suggestion_the_exception_task_is_as_before():
    out, _ = run("match_invoice", match_input(risk=None), erp=price_variance_erp())
    assert out["task"]["suggestion"] is None
    assert len(out["task"]["reasons"]) == 1
