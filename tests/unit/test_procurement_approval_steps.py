"""Every step of procurement approval through the kit's entry point with in-memory fakes,
and its rules (pure): normalization across two facilities' item codes, approval routing at
the amount boundaries, the capital threshold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import TypeAdapter

from careflow.adapters.sandbox_procurement import CATALOG
from careflow.canonical.procurement import ItemIdentifiers, ItemMatch
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.procurement_approval import rules as r
from tests.fakes import FakeErp, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
STEPS = "careflow.workflows.procurement_approval.steps"
POLICIES = FilePolicyStore()
FEMORAL = CATALOG["IMP-TKA-FEM-5"]
TIBIAL = CATALOG["IMP-TKA-TIB-4"]


def policy(facility: str = "fac-north") -> r.Policy:
    return r.procurement_policy(resolve(r.POLICY, facility, at=NOW, store=POLICIES))


def run(name: str, event: dict, **given):
    base = {
        "store": InMemoryStateStore(),
        "policies": POLICIES,
        "now": NOW,
        "erp": FakeErp(),
        "publisher": FakePublisher(),
    }
    base.update(given)
    return invoke(f"{STEPS}:{name}", event, ports=base.__getitem__), base


# -- rules: normalization ---------------------------------------------------------------------
def test_two_facilities_codes_normalize_to_the_same_canonical_item():
    erp = FakeErp()
    north = erp.crosswalk(ItemIdentifiers(facility_id="fac-north", local_code="NV-10442"))
    south = erp.crosswalk(ItemIdentifiers(facility_id="fac-south", local_code="SB-7781"))
    assert r.normalize(north).item == r.normalize(south).item == FEMORAL
    # the other facility's code means nothing here
    assert (
        r.normalize(
            erp.crosswalk(ItemIdentifiers(facility_id="fac-north", local_code="SB-7781"))
        ).item
        is None
    )


def test_manufacturer_and_catalog_number_are_trusted_first_whatever_the_spelling():
    erp = FakeErp()
    ids = ItemIdentifiers(
        facility_id="fac-south", manufacturer="Stryker Orthopaedics", catalog_number="5510F501"
    )
    found = r.normalize(erp.crosswalk(ids))
    assert (found.item, found.matched_on) == (FEMORAL, "manufacturer_catalog")
    by_gtin = r.normalize(
        erp.crosswalk(ItemIdentifiers(facility_id="fac-south", gtin=FEMORAL.gtin[1:]))
    )
    assert (by_gtin.item, by_gtin.matched_on) == (FEMORAL, "gtin")


def test_identifiers_naming_different_items_are_a_conflict_not_a_guess():
    found = r.normalize(
        [
            ItemMatch(matched_on="manufacturer_catalog", item=FEMORAL),
            ItemMatch(matched_on="local_code", item=TIBIAL),
        ]
    )
    assert found.item is None and "different items" in found.reason


def test_unspsc_alone_normalizes_only_one_item_of_its_class():
    one = r.normalize([ItemMatch(matched_on="unspsc", item=CATALOG["SUP-DRAPE-ORTHO"])])
    assert one.item == CATALOG["SUP-DRAPE-ORTHO"] and one.matched_on == "unspsc"
    two = r.normalize(
        [ItemMatch(matched_on="unspsc", item=FEMORAL), ItemMatch(matched_on="unspsc", item=TIBIAL)]
    )
    assert two.item is None and "fits 2 items" in two.reason
    # a more trusted identifier decides over a UNSPSC that fits several
    both = r.normalize(
        [
            ItemMatch(matched_on="gtin", item=TIBIAL),
            *[ItemMatch(matched_on="unspsc", item=i) for i in (FEMORAL, TIBIAL)],
        ]
    )
    assert both.item == TIBIAL
    assert r.normalize([]).reason == "no identifier matches an item of the catalog"


# -- rules: routing ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "levels"),
    [
        ("0.01", ("department_manager",)),
        ("5000.00", ("department_manager",)),
        ("5000.01", ("department_manager", "department_director")),
        ("50000.00", ("department_manager", "department_director")),
        ("50000.01", ("department_manager", "department_director", "cfo")),
    ],
)
def test_approval_levels_at_the_enterprise_boundaries(amount, levels):
    assert r.approval_levels(Decimal(amount), False, policy()) == levels


@pytest.mark.parametrize(
    ("amount", "levels"),
    [
        ("2500.00", ("department_manager",)),
        ("2500.01", ("department_manager", "department_director")),
        ("25000.00", ("department_manager", "department_director")),
        ("25000.01", ("department_manager", "department_director", "cfo")),
    ],
)
def test_south_bays_overlay_lowers_the_limits(amount, levels):
    assert r.approval_levels(Decimal(amount), False, policy("fac-south")) == levels


def test_capital_threshold_and_capital_item_class():
    p = policy()
    assert not r.is_capital(Decimal("25000.00"), ["equipment"], p)
    assert r.is_capital(Decimal("25000.01"), ["equipment"], p)
    assert r.is_capital(Decimal("100.00"), ["supply", "capital_equipment"], p)
    assert r.is_capital(Decimal("15000.01"), [], policy("fac-south"))
    assert r.approval_levels(Decimal("68500.00"), True, p)[-1] == "capital_committee"
    assert r.approval_levels(Decimal("100.00"), True, p) == (
        "department_manager",
        "capital_committee",
    )


def test_a_policy_naming_a_level_with_no_task_state_is_refused():
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=POLICIES)

    class Renamed:
        version = snapshot.version

        def value(self, name):
            return "vp_supply_chain" if name == "capital_review_level" else snapshot.value(name)

        def table(self, name):
            return snapshot.table(name)

    with pytest.raises(ValueError, match="vp_supply_chain"):
        r.procurement_policy(Renamed())


def test_decisions():
    assert r.after_decision("APPROVE") is None
    assert r.after_decision("REJECT") == r.REJECTED
    assert r.after_decision("RETURN") == r.RETURNED_FOR_CHANGES
    with pytest.raises(ValueError):
        r.after_decision("MAYBE")
    assert r.next_level(("a", "b"), ("a",)) == "b" and r.next_level(("a",), ("a",)) is None


# -- steps ------------------------------------------------------------------------------------
LINES = [
    {"line_number": 1, "quantity": 2, "local_code": "SB-7781"},
    {"line_number": 2, "quantity": 10, "manufacturer": "Medline", "catalog_number": "DYNJP2401"},
]


def registered(store=None, facility="fac-south", lines=LINES) -> tuple[dict, dict]:
    store = store or InMemoryStateStore()
    out, used = run(
        "register_requisition",
        {
            "instance_id": "pa-1",
            "correlation_id": "c-1",
            "facility_id": facility,
            "occurred_at": NOW.isoformat(),
            "requisition_id": "RQ-1",
            "cost_center_id": f"cc-{facility}-ortho",
            "lines": lines,
        },
        store=store,
    )
    return out, used


def test_register_requisition_pins_the_facility_policy():
    out, used = registered()
    assert out["policy"]["policy_version"].startswith("procurement-approval@")
    assert out["policy"]["capital_threshold"] == "15000"
    assert used["store"].get_instance("pa-1").subject_id == "RQ-1"


def test_normalize_requisition_prices_lines_at_contract_prices():
    state, _ = registered()
    out, _used = run("normalize_requisition", state)
    assert out["normalized"] is True and out["amount"] == "5285.00"  # 2 x 2450 + 10 x 38.50
    assert [x["matched_on"] for x in out["lines"]] == ["local_code", "manufacturer_catalog"]
    assert out["task"] is None


def test_normalize_requisition_opens_an_item_master_task_for_an_unknown_item():
    state, _ = registered(lines=[{"line_number": 1, "quantity": 1, "local_code": "SB-0000"}])
    out, _ = run("normalize_requisition", state)
    assert out["normalized"] is False and out["task"]["purpose"] == "item-master"
    assert out["task"]["escalation_chain"] == ["item_master", "supply_chain_manager"]
    assert out["reasons"] == ["line 1: no identifier matches an item of the catalog"]


def test_apply_item_master_decision():
    out, used = run(
        "apply_item_master_decision", {"instance_id": "pa-1", "item_master": {"decision": "REFUSE"}}
    )
    assert out == {"decision": "REFUSE"}
    assert [m.name for m in used["store"].milestones("pa-1")] == ["item_master_decided"]


def _planned(facility="fac-south"):
    state, _ = registered(facility=facility)
    state["normalized"], _ = run("normalize_requisition", state)
    route, used = run("plan_approvals", state)
    return state, route, used


def test_plan_approvals_routes_by_the_facilitys_policy():
    _state, route, used = _planned()
    # $5,285.00 at South Bay: above the manager's $2,500
    assert route["levels"] == ["department_manager", "department_director"]
    assert route["pending"] == "department_manager" and route["capital"] is False
    assert route["task"]["escalation_chain"] == ["department_manager", "department_director"]
    assert route["due_in_seconds"] == 86400
    assert route["task"]["purpose"] == "approval-department_manager"  # one task per level
    assert [a.action for a in used["store"].audit_trail("pa-1")] == ["approval_routed"]


def test_apply_approval_decision_moves_level_by_level_then_ends():
    state, route, _ = _planned()
    approve = {**state, "route": route, "approval": {"decision": "APPROVE"}}
    route2, _ = run("apply_approval_decision", approve)
    assert (
        route2["approved"] == ["department_manager"] and route2["pending"] == "department_director"
    )
    route3, _ = run("apply_approval_decision", {**approve, "route": route2})
    assert route3["done"] is True and route3["task"] is None
    returned, _ = run(
        "apply_approval_decision",
        {**approve, "route": route2, "approval": {"decision": "RETURN", "note": "wrong size"}},
    )
    assert (returned["ended"], returned["outcome"]) == (True, "RETURNED_FOR_CHANGES")
    assert returned["reasons"] == ["department director decided RETURN: wrong size"]


def _reserve(cost_center: str, amount: str, erp=None, **more):
    erp = erp or FakeErp()
    route = {"amount": amount, "capital": False, "levels": ["department_manager"], "done": True}
    event = {
        "instance_id": "pa-1",
        "facility_id": "fac-north",
        "requisition_id": "RQ-1",
        "cost_center_id": cost_center,
        "route": route,
        **more,
    }
    out, used = run("reserve_budget", event, erp=erp)
    return out, used


def test_reserve_budget_reserves_once():
    erp = FakeErp()
    out, _ = _reserve("cc-fac-north-ortho", "4900.00", erp)
    again, _ = _reserve("cc-fac-north-ortho", "4900.00", erp)
    assert out["reserved"] is True and out["reservation_id"] == again["reservation_id"]
    assert erp.budget("cc-fac-north-ortho").committed == Decimal("4900.00")


def test_reserve_budget_short_of_funds_or_unknown_cost_center_is_an_exception():
    out, _used = _reserve("cc-fac-north-endo", "4900.00")
    assert out["reserved"] is False
    assert out["reasons"] == ["cc-fac-north-endo has $2,750.00 available, $4,900.00 needed"]
    unknown, _ = _reserve("cc-fac-south-ortho", "10.00")  # South Bay's, not North Valley's
    assert unknown["reserved"] is False and "not one of the facility's" in unknown["reasons"][0]


def test_short_of_funds_under_a_budget_office_opens_its_task_once():
    pinned = policy().model_dump(mode="json")
    assert pinned["budget_office"]["chain"] == ["budget_office", "cfo"]
    out, used = _reserve("cc-fac-north-endo", "4900.00", policy=pinned)
    assert (out["reserved"], out["escalate"], out["attempt"]) == (False, True, 1)
    assert out["task"]["escalation_chain"] == ["budget_office", "cfo"]
    assert out["task"]["allowed_decisions"] == ["FUNDS_TRANSFERRED", "DECLINE"]
    assert out["task"]["purpose"] == "budget-exception"
    assert out["due_in_seconds"] == 172800
    [short] = [m for m in used["store"].milestones("pa-1") if m.name == "budget_short"]
    assert short.status == "PENDING"
    # the second attempt (after a transfer) still short: the exception, no second task
    again, used = _reserve("cc-fac-north-endo", "4900.00", policy=pinned, attempt=2)
    assert (again["reserved"], again["escalate"], again["task"]) == (False, False, None)
    assert "budget_exception" in [m.name for m in used["store"].milestones("pa-1")]


def test_the_second_attempt_is_a_reservation_of_its_own():
    erp = FakeErp()
    first, _ = _reserve("cc-fac-north-ortho", "100.00", erp, policy=policy().model_dump())
    second, _ = _reserve(
        "cc-fac-north-ortho", "100.00", erp, policy=policy().model_dump(), attempt=2
    )
    assert first["reservation_id"] != second["reservation_id"]


def test_create_purchase_orders_one_per_supplier_and_release_budget():
    erp = FakeErp()
    state, _route, _ = _planned(facility="fac-north")
    state, _ = registered(
        facility="fac-north",
        lines=[
            *LINES[:1],
            {"line_number": 2, "quantity": 10, "local_code": "NV-20031"},
            {"line_number": 3, "quantity": 1, "local_code": "NV-10442"},
        ],
    )
    state["normalized"], _ = run("normalize_requisition", state, erp=erp)
    budget, _ = _reserve("cc-fac-north-ortho", state["normalized"]["amount"], erp)
    out, _used = run("create_purchase_orders", {**state, "budget": budget}, erp=erp)
    assert len(out["po_ids"]) == 2  # sup-medline and sup-orthoco
    assert erp.budget("cc-fac-north-ortho").committed == Decimal(state["normalized"]["amount"])
    released, _ = run(
        "release_budget",
        {"instance_id": "pa-1", "budget": budget, "error": {"Error": "X"}},
        erp=erp,
    )
    assert released == {"released": True}  # consumed by the PO: nothing left to give back
    assert run("release_budget", {"instance_id": "pa-1", "budget": {"reserved": False}})[0] == {
        "released": False
    }


@pytest.mark.parametrize("outcome", r.OUTCOMES)
def test_finalize_requisition_ends_the_instance_and_tells_the_facility(outcome):
    erp = FakeErp()
    state, route, used = _planned()
    store = used["store"]
    purchase = None
    if outcome == r.PO_CREATED:
        budget, _ = _reserve("cc-fac-north-ortho", "10.00", erp)
        state_north, _ = registered(store=store, facility="fac-north")
        state_north["normalized"], _ = run("normalize_requisition", state_north, erp=erp)
        purchase, _ = run("create_purchase_orders", {**state_north, "budget": budget}, erp=erp)
    registered(store=store)
    event = {
        **state,
        "route": route,
        "purchase": purchase,
        "verdict": {"outcome": outcome, "reasons": ["why"]},
    }
    out, _ = run("finalize_requisition", event, store=store, erp=erp)
    assert out["outcome"] == outcome and out["detail_type"] == "Requisition.StatusChanged"
    data = out["detail"]["data"]
    assert data["status"] == outcome and data["requisition_id"] == "RQ-1"
    assert (data["po_status"] == "OPEN") is (outcome == r.PO_CREATED)
    assert store.get_instance("pa-1").outcome == outcome
    assert "requisition_measured" in [a.action for a in store.audit_trail("pa-1")]


def test_the_status_event_matches_its_model_and_the_kpis_read_the_audit_trail():
    from datetime import timedelta

    from careflow.workflows.procurement_approval import kpis
    from careflow.workflows.procurement_approval.events import RequisitionStatusChanged

    store, erp = InMemoryStateStore(), FakeErp()
    state, route, _ = _planned()
    registered(store=store)
    approve = {**state, "route": route, "approval": {"decision": "APPROVE"}}
    route2, _ = run("apply_approval_decision", approve, store=store)
    later = NOW + timedelta(hours=30)
    out, _ = run(
        "finalize_requisition",
        {**state, "route": route2, "verdict": {"outcome": "BUDGET_EXCEPTION", "reasons": ["x"]}},
        store=store,
        erp=erp,
        now=later,
    )
    RequisitionStatusChanged.model_validate(out["detail"]["data"])
    instance = store.get_instance("pa-1")
    got = kpis.values(store, [instance], NOW, later)
    assert got["requisition_cycle_time"] == {
        "requisitions": 1,
        "p50_hours": 30.0,
        "p90_hours": 30.0,
    }
    assert got["approvals_by_level"] == {"department_manager": {"APPROVE": 1}}
    assert got["budget_exceptions"] == {
        "requisitions": 1,
        "budget_exceptions": 1,
        "amount": "5285.00",
    }
    for definition in kpis.DEFINITIONS:  # each value is its documented type
        TypeAdapter(definition.model).validate_python(got[definition.name])
