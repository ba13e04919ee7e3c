"""Supply replenishment's rules against hand-computed values: demand, the stockout risk
(exact Poisson), reorder quantities, cases at risk and the approval table."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from careflow.canonical.inventory import ParLevel
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.supply_replenishment import rules as r

NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # 05:00 in Chicago


@pytest.fixture(scope="module")
def policy() -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=FilePolicyStore())
    return r.replenishment_policy(snapshot)


def level(item="IMP-TKA-FEM-5", klass="stock", **kw) -> ParLevel:
    values = dict(
        facility_id="fac-north",
        location_id="fac-north:or-core",
        item_id=item,
        item_class=klass,
        on_hand=4,
        on_order=0,
        par_level=6,
        reorder_point=3,
        supplier_id="sup-orthoco",
        lead_time_days=3,
        unit_price=Decimal("2450.00"),
    )
    values.update(kw)
    return ParLevel(**values)


def need(case: str, hours: float, item="IMP-TKA-FEM-5", qty=1) -> r.CaseNeed:
    return r.CaseNeed(case_id=case, start=NOW + timedelta(hours=hours), item_id=item, quantity=qty)


# -- demand --------------------------------------------------------------------------------------
def test_day_one_is_the_next_24_hours_and_the_past_counts_as_day_one():
    assert r.day_index(NOW, NOW) == 1
    assert r.day_index(NOW, NOW + timedelta(hours=23, minutes=59)) == 1
    assert r.day_index(NOW, NOW + timedelta(hours=24)) == 2
    assert r.day_index(NOW, NOW - timedelta(hours=5)) == 1


def test_demand_is_cases_in_the_horizon_times_their_preference_card_quantities():
    needs = [
        need("appt-1", 20),
        need("appt-2", 30, qty=2),
        need("appt-2", 30, item="SUP-CEMENT-40", qty=2),
        need("appt-3", 14 * 24),  # just past a 14-day horizon
        need("appt-0", -1),  # already started
    ]
    assert r.demand(needs, NOW, 14) == {"IMP-TKA-FEM-5": 3, "SUP-CEMENT-40": 2}
    assert r.scheduled_by_day(needs, "IMP-TKA-FEM-5", NOW, 3) == (1, 2, 0)


# -- risk ----------------------------------------------------------------------------------------
def test_the_poisson_cdf_is_summed_exactly():
    # P(X <= 3), X ~ Poisson(2) = e^-2 (1 + 2 + 2 + 4/3) = 0.857123460...
    assert r.poisson_cdf(3, 2.0) == pytest.approx(math.exp(-2) * (1 + 2 + 2 + 4 / 3), abs=1e-12)
    assert r.poisson_cdf(3, 2.0) == pytest.approx(0.8571234605, abs=1e-9)
    assert r.poisson_cdf(-1, 2.0) == 0.0
    assert r.poisson_cdf(0, 0.0) == 1.0


def test_stockout_probability_against_hand_computed_values():
    # 5 on hand, 2 scheduled, 1 a day for 2 days: P(Poisson(2) > 3) = 1 - 0.857123 = 0.142877
    assert r.stockout_probability(5, 2, 1.0, 2) == pytest.approx(0.142877, abs=1e-6)
    # 4 on hand, none scheduled, 0.5 a day for 2 days: 1 - e^-1 (1 + 1 + 1/2 + 1/6 + 1/24)
    assert r.stockout_probability(4, 0, 0.5, 2) == pytest.approx(0.003660, abs=1e-6)
    # the schedule alone empties the shelf: certain; no use and enough stock: none
    assert r.stockout_probability(4, 5, 0.0, 3) == 1.0
    assert r.stockout_probability(4, 4, 0.0, 3) == 0.0


def test_the_items_risk_is_at_its_delivery_day_and_the_profile_covers_each_day():
    pos = r.Position(
        level=level(on_hand=5, lead_time_days=1.5), daily_rate=1.0, scheduled=(2, 0, 1)
    )
    assert r.delivery_day(1.5) == 2 and r.delivery_day(0) == 1
    assert r.stockout_risk(pos) == pytest.approx(0.142877, abs=1e-6)
    # day 1: P(Poisson(1) > 3) = 1 - e^-1 (1 + 1 + 1/2 + 1/6) = 0.018988
    # day 3: 5 - 3 = 2 headroom, P(Poisson(3) > 2) = 1 - e^-3 (1 + 3 + 4.5) = 0.576810
    assert r.risk_profile(pos) == pytest.approx((0.018988, 0.142877, 0.576810), abs=1e-6)


# -- reorder -------------------------------------------------------------------------------------
def test_below_the_reorder_point_at_delivery_orders_up_to_par():
    # sutures: 14 on hand, 2 a day, lead 2 days: 14 - 4 = 10 < 15 -> 40 - 10 = 30 boxes
    sutures = level("SUP-SUT-VIC-0", on_hand=14, par_level=40, reorder_point=15, lead_time_days=2)
    assert r.reorder_quantity(r.Position(level=sutures, daily_rate=2.0, scheduled=(0,) * 14)) == 30
    # 10 already on order: 24 expected, above 15: nothing
    ordered = sutures.model_copy(update={"on_order": 10})
    assert r.reorder_quantity(r.Position(level=ordered, daily_rate=2.0, scheduled=(0,) * 14)) == 0
    # 4 knees, 5 booked in the lead time: -1 expected -> 6 - (-1) = 7
    knees = r.Position(level=level(), daily_rate=0.0, scheduled=(3, 2, 0) + (0,) * 11)
    assert r.reorder_quantity(knees) == 7
    # bill-only: never ordered, whatever the shelf
    bill_only = level("IMP-ACL-SCR-9", "bill_only", on_hand=0, par_level=0, reorder_point=0)
    assert r.reorder_quantity(r.Position(level=bill_only, daily_rate=1, scheduled=(1,))) == 0


def test_days_on_hand_is_on_hand_over_expected_daily_use():
    knees = r.Position(level=level(), daily_rate=0.0, scheduled=(3, 2) + (0,) * 12)
    assert r.days_on_hand(knees) == round(4 / (5 / 14), 1) == 11.2
    idle = r.Position(level=level(), daily_rate=0.0, scheduled=(0,) * 14)
    assert r.days_on_hand(idle) is None


# -- cases at risk and the plan -----------------------------------------------------------------
def test_a_case_whose_item_is_short_by_its_day_is_expedited_when_a_standard_delivery_is_late(
    policy,
):
    needs = [need("appt-a", 20, qty=3), need("appt-b", 30, qty=2), need("appt-c", 10 * 24)]
    pos = r.Position(
        level=level(), daily_rate=0.0, scheduled=r.scheduled_by_day(needs, "IMP-TKA-FEM-5", NOW, 14)
    )
    risky = r.cases_at_risk(pos, needs, policy, NOW)
    # appt-a (day 1): 4 - 3 = 1 left, no other use: 0; appt-b (day 2): 4 - 5 < 0: certain,
    # a 3-day delivery is after its start - 12 h: expedite; appt-c (day 11): certain, but
    # a delivery now arrives in time: standard
    assert [(c.case_id, c.stockout_probability, c.action) for c in risky] == [
        ("appt-b", 1.0, "expedite"),
        ("appt-c", 1.0, "standard"),
    ]
    consignment = pos.model_copy(update={"level": level(klass="consignment")})
    assert {c.action for c in r.cases_at_risk(consignment, needs, policy, NOW)} == {"vendor"}


@pytest.mark.parametrize(
    ("klass", "amount", "row", "action", "approver"),
    [
        ("stock", "4999.99", "stock_auto", "REQUISITION", ""),
        ("stock", "5000", "stock_buyer", "APPROVAL", "supply_chain_buyer"),
        ("stock", "24999.99", "stock_buyer", "APPROVAL", "supply_chain_buyer"),
        ("stock", "25000", "stock_director", "APPROVAL", "department_director"),
        ("consignment", "99999", "consignment", "NOTIFY_VENDOR", ""),
        ("bill_only", "410", "bill_only", "NONE", ""),
    ],
)
def test_the_approval_table_decides_by_item_class_and_amount(
    policy, klass, amount, row, action, approver
):
    assert r.decide_order(policy, klass, Decimal(amount)) == (row, action, approver)


def test_the_plan_groups_lines_decides_each_group_and_flags_the_expedite(policy):
    needs = [need("appt-b", 30, qty=5, item="IMP-TKA-FEM-5")]
    core = "fac-north:or-core"
    positions = [
        r.Position(
            level=level(),
            daily_rate=0.0,
            scheduled=r.scheduled_by_day(needs, "IMP-TKA-FEM-5", NOW, 14),
        ),
        r.Position(
            level=level(
                "SUP-CEMENT-40",
                on_hand=5,
                par_level=20,
                reorder_point=6,
                lead_time_days=2,
                unit_price=Decimal("92.00"),
            ),
            daily_rate=0.5,
            scheduled=(0,) * 14,
        ),
        r.Position(
            level=level(
                "IMP-SPN-SCR-6545",
                "consignment",
                on_hand=6,
                par_level=24,
                reorder_point=8,
                supplier_id="sup-spinetech",
                lead_time_days=1,
                unit_price=Decimal("325.00"),
            ),
            daily_rate=0.2,
            scheduled=(0,) * 14,
        ),
    ]
    plan = r.plan("fac-north", positions, {core: needs}, policy, NOW, "2026-12-01")
    orders = {(o.supplier_id, o.item_class): o for o in plan.orders}
    ortho = orders[("sup-orthoco", "stock")]
    # knees: 4 - 5 = -1 -> 7 x 2450; cement: 5 - 1 = 4 < 6 -> ceil(20 - 4) = 16 x 92
    assert [(x.item_id, x.quantity) for x in ortho.lines] == [
        ("IMP-TKA-FEM-5", 7),
        ("SUP-CEMENT-40", 16),
    ]
    assert ortho.amount == Decimal("18622.00")
    assert (ortho.action, ortho.approver, ortho.expedite, ortho.cases) == (
        "APPROVAL",
        "supply_chain_buyer",
        True,
        ("appt-b",),
    )
    assert ortho.reference == "replenish:fac-north:2026-12-01:fac-north:or-core:sup-orthoco"
    assert ortho.needed_by == NOW + timedelta(hours=30 - 12)
    # screws: 6 - 0.2 = 5.8 < 8 -> ceil(24 - 5.8) = 19, the vendor replenishes
    spine = orders[("sup-spinetech", "consignment")]
    assert (spine.action, spine.lines[0].quantity) == ("NOTIFY_VENDOR", 19)


@pytest.mark.parametrize(
    ("kw", "outcome"),
    [
        ({"created": 0, "expedited": 0, "vendor_notices": 0, "approval": None}, "NO_ACTION"),
        ({"created": 2, "expedited": 0, "vendor_notices": 1, "approval": None}, "REORDERED"),
        (
            {"created": 2, "expedited": 1, "vendor_notices": 0, "approval": "APPROVED"},
            "REORDERED_WITH_EXPEDITE",
        ),
        ({"created": 0, "expedited": 0, "vendor_notices": 1, "approval": None}, "VENDOR_NOTIFIED"),
        (
            {"created": 1, "expedited": 0, "vendor_notices": 0, "approval": "REJECTED"},
            "APPROVAL_REJECTED",
        ),
        (
            {"created": 1, "expedited": 0, "vendor_notices": 0, "approval": "EXPIRED"},
            "APPROVAL_EXPIRED",
        ),
    ],
)
def test_the_outcome(kw, outcome):
    assert r.outcome_of(**kw) == outcome


def test_a_later_review_supersedes():
    assert r.superseded([NOW + timedelta(minutes=5)], NOW)
    assert not r.superseded([NOW - timedelta(minutes=5), NOW], NOW)
