"""The post-procedure revenue cycle's rules: missing charges, the charge lag against
hand-computed facility dates, the DNFB causes in the policy's precedence, the waits, and
the FHIR Claim (validated by fhir.resources R4B)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from careflow.adapters.sandbox_revenue import CPT, ICD10, used_item
from careflow.canonical.datatypes import Coding
from careflow.canonical.revenue import CaseBilling, ChargeLine
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.revenue_cycle import rules as r

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
CHICAGO = ZoneInfo("America/Chicago")
D = Decimal


def policy() -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=FilePolicyStore())
    return r.revenue_policy(snapshot, facility_id="fac-north", time_zone="America/Chicago")


def charge(item: str, qty: int, amount: str, at: datetime | None = None, status: str = "billable"):
    return ChargeLine(
        charge_id=f"c-{item}",
        item_id=item,
        quantity=qty,
        amount=D(amount),
        entered_at=at,
        status=status,
    )


def case(**update) -> CaseBilling:
    base = CaseBilling(
        case_id="case-1",
        encounter_id="V1",
        facility_id="fac-north",
        patient_ref="Patient/p1",
        coverage_ref="Coverage/c1",
        payer_id="payer-summit",
        procedure_end=NOW - timedelta(days=1),
        procedure_codes=(Coding(system=CPT, code="27447"),),
        diagnosis_codes=(Coding(system=ICD10, code="M17.11"),),
        used=(used_item("IMP-TKA-FEM-5", 1, lot="L1", serial="S1"), used_item("SUP-CEMENT-40", 2)),
        charges=(),
        op_note_signed=True,
        implant_log=True,
        coding_complete=True,
    )
    return base.model_copy(update=update)


def test_the_policy_resolves_queues_precedence_and_the_cost_center():
    p = policy()
    assert p.queues[r.MISSING_CHARGES] == "charge_capture"
    assert p.queues[r.ACCOUNT_HOLD] == "patient_financial_services"
    assert p.precedence[0] == r.ACCOUNT_HOLD and set(p.precedence) == set(r.CAUSES)
    assert p.documentation_wait_s == 48 * 3600 and p.coding_wait_s == 72 * 3600
    assert p.bill_only_cost_center == "cc-fac-north-ortho"


@pytest.mark.parametrize(
    ("charges", "missing"),
    [
        ((), [("IMP-TKA-FEM-5", 1, "2450.00"), ("SUP-CEMENT-40", 2, "184.00")]),
        ((charge("IMP-TKA-FEM-5", 1, "2450.00"), charge("SUP-CEMENT-40", 2, "184.00")), []),
        (
            (charge("IMP-TKA-FEM-5", 1, "2450.00"), charge("SUP-CEMENT-40", 1, "92.00")),
            [("SUP-CEMENT-40", 1, "92.00")],
        ),
        # a credited (or entered-in-error) charge charges nothing
        (
            (
                charge("IMP-TKA-FEM-5", 1, "2450.00", status="entered-in-error"),
                charge("SUP-CEMENT-40", 2, "184.00"),
            ),
            [("IMP-TKA-FEM-5", 1, "2450.00")],
        ),
        # charged more than used: not missing (over-charging is another review)
        ((charge("IMP-TKA-FEM-5", 2, "4900.00"), charge("SUP-CEMENT-40", 3, "276.00")), []),
    ],
)
def test_missing_charges_are_used_quantities_without_a_charge(charges, missing):
    found = r.missing_charges(case().used, charges)
    assert [(m.item_id, m.quantity, str(m.amount)) for m in found] == missing


@pytest.mark.parametrize(
    ("end", "posted", "days"),
    [
        # 17:30 CST on 27 Nov; posted 09:00 CST 28 Nov: one calendar day in Chicago
        (datetime(2026, 11, 27, 23, 30, tzinfo=UTC), datetime(2026, 11, 28, 15, 0, tzinfo=UTC), 1),
        # 20:00 CST on 27 Nov is 02:00 UTC on 28 Nov; posted 23:00 CST the same day: 0
        (datetime(2026, 11, 28, 2, 0, tzinfo=UTC), datetime(2026, 11, 28, 5, 0, tzinfo=UTC), 0),
        # posted four days later
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), datetime(2026, 11, 28, 15, 0, tzinfo=UTC), 4),
    ],
)
def test_charge_lag_is_whole_facility_days_to_the_first_charge(end, posted, days):
    charges = (charge("A", 1, "1", posted + timedelta(days=2)), charge("B", 1, "1", posted))
    assert r.charge_lag_days(end, charges, CHICAGO) == days


def test_no_charge_posted_has_no_lag():
    assert r.charge_lag_days(NOW, (), CHICAGO) is None


def _causes(c: CaseBilling, **kw) -> tuple[str, ...]:
    args = {
        "missing": r.missing_charges(c.used, c.charges),
        "authorization": "PA-1",
        "auth_required": True,
        "eligible": True,
    }
    args.update(kw)
    return r.findings(c, policy=policy(), **args)


def test_dnfb_causes_come_in_the_policys_precedence():
    c = case(op_note_signed=False, implant_log=False, coding_complete=False, holds=("pfs-review",))
    assert _causes(c, authorization=None, eligible=False) == (
        r.ACCOUNT_HOLD,
        r.NOT_ELIGIBLE,
        r.NO_AUTHORIZATION,
        r.MISSING_CHARGES,
        r.OP_NOTE_UNSIGNED,
        r.IMPLANT_LOG_MISSING,
        r.CODING_INCOMPLETE,
    )


def test_a_clean_case_has_no_cause_and_no_auth_is_fine_when_not_required():
    charged = case().model_copy(
        update={
            "charges": (charge("IMP-TKA-FEM-5", 1, "2450.00"), charge("SUP-CEMENT-40", 2, "184.00"))
        }
    )
    assert _causes(charged) == ()
    assert _causes(charged, authorization=None, auth_required=False) == ()
    assert _causes(charged.model_copy(update={"holds": ("courtesy-flag",)})) == ()  # not blocking


def test_documentation_and_coding_are_waited_for_until_their_limits():
    p, end = policy(), NOW - timedelta(hours=10)
    assert r.assess((), end, NOW, p) == r.READY
    assert r.assess((r.OP_NOTE_UNSIGNED,), end, NOW, p) == r.WAITING
    assert r.assess((r.OP_NOTE_UNSIGNED,), end, end + timedelta(hours=48), p) == r.BLOCKED
    assert r.assess((r.CODING_INCOMPLETE,), end, end + timedelta(hours=50), p) == r.WAITING
    assert r.assess((r.MISSING_CHARGES, r.OP_NOTE_UNSIGNED), end, NOW, p) == r.BLOCKED
    # the cause a person works is the first past its wait, not one still waited for
    causes = (r.OP_NOTE_UNSIGNED, r.CODING_INCOMPLETE)
    assert r.first_blocking(causes, end, end + timedelta(hours=72), p) == r.OP_NOTE_UNSIGNED
    late = (r.MISSING_CHARGES, r.OP_NOTE_UNSIGNED)
    assert r.first_blocking(late, end, NOW, p) == r.MISSING_CHARGES


def test_the_claim_is_a_valid_fhir_claim_with_the_authorization_and_the_implant():
    from fhir.resources.R4B.claim import Claim

    claim = r.build_claim(
        case(), claim_id="clm-case-1", authorization="PA-case-1", policy=policy(), created=NOW
    )
    parsed = Claim.model_validate(claim)
    assert parsed.insurance[0].preAuthRef == ["PA-case-1"]
    assert parsed.type.coding[0].code == "institutional"
    implant = next(i for i in parsed.item if i.productOrService.coding[0].code == "IMP-TKA-FEM-5")
    device = next(d for d in claim["contained"] if "#" + d["id"] == implant.udi[0].reference)
    assert (device["lotNumber"], device["serialNumber"]) == ("L1", "S1")
    assert parsed.total.value == pytest.approx(2634.0)
    assert [d.diagnosisCodeableConcept.coding[0].code for d in parsed.diagnosis] == ["M17.11"]


def test_a_claim_without_coverage_is_refused_clearly():
    with pytest.raises(ValueError, match="no coverage"):
        r.build_claim(
            case(coverage_ref=None), claim_id="x", authorization=None, policy=policy(), created=NOW
        )
