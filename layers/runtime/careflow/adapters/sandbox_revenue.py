"""The in-process EHR sandbox's revenue cycle: completed surgical cases with what they
used (implants by lot and serial), the charges posted for their encounters, their
documentation, coding and account holds, and the claims handed to billing. Mixed into
:class:`careflow.adapters.sandbox.Sandbox`; the demo and the tests add cases and change
them (a charge posted, a note signed) as the people in the story do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from careflow.canonical.datatypes import Coding
from careflow.canonical.revenue import CaseBilling, ChargeLine, ClaimReceipt, UsedItem
from careflow.ports import ConnectorError

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"

# item: (price charged per unit, implant, bill-only, supplier, device identifier)
CHARGEMASTER: dict[str, tuple[str, bool, bool, str, str | None]] = {
    "IMP-TKA-FEM-5": ("2450.00", True, False, "sup-orthoco", "00844588012345"),
    "IMP-TKA-TIB-4": ("2450.00", True, False, "sup-orthoco", "00844588012352"),
    "IMP-THA-STEM-12": ("1980.00", True, False, "sup-jointworks", "00888912345678"),
    "IMP-THA-CUP-52": ("1420.00", True, False, "sup-jointworks", "00888912345685"),
    "IMP-SPN-SCR-6545": ("325.00", True, False, "sup-spinetech", "00611234567890"),
    "IMP-SPN-ROD-120": ("610.00", True, False, "sup-spinetech", "00611234567906"),
    "IMP-ACL-SCR-9": ("410.00", True, True, "sup-arthrex", "00888867001234"),
    "SUP-DRAPE-ORTHO": ("38.50", False, False, "sup-medline", None),
    "SUP-CEMENT-40": ("92.00", False, False, "sup-orthoco", None),
}


def used_item(
    item_id: str, quantity: int, *, lot: str | None = None, serial: str | None = None
) -> UsedItem:
    price, implant, bill_only, supplier, udi = CHARGEMASTER[item_id]
    return UsedItem(
        item_id=item_id,
        quantity=quantity,
        implant=implant,
        bill_only=bill_only,
        supplier_id=supplier,
        unit_price=Decimal(price),
        lot=lot,
        serial=serial,
        udi=udi,
    )


@dataclass(frozen=True)
class RevenueSeed:
    """A completed case as the demo tells it: what it used and which of those the charge
    capture posted (``uncharged``: items left without a charge), and its record's state."""

    case_id: str
    facility_id: str
    procedure: Coding
    diagnosis: Coding
    used: tuple[UsedItem, ...]
    uncharged: tuple[str, ...] = ()
    op_note_signed: bool = True
    implant_log: bool = True
    coding_complete: bool = True
    holds: tuple[str, ...] = ()
    charge_lag: timedelta = timedelta(days=1)  # from the procedure's end to the charges
    coverage: bool = True


@dataclass
class RevenueState:
    cases: dict[str, CaseBilling] = field(default_factory=dict)
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, ClaimReceipt] = field(default_factory=dict)


def _charges(
    case_id: str, used: tuple[UsedItem, ...], skip: tuple[str, ...], at: datetime
) -> tuple[ChargeLine, ...]:
    return tuple(
        ChargeLine(
            charge_id=f"chg-{case_id}-{n}",
            item_id=u.item_id,
            quantity=u.quantity,
            amount=u.unit_price * u.quantity,
            entered_at=at,
        )
        for n, u in enumerate(used, start=1)
        if u.item_id not in skip
    )


class RevenueSandbox:
    """EHR port methods for the revenue cycle, on the sandbox's own lock and faults."""

    if TYPE_CHECKING:
        lock: threading.RLock

        def _fault(self, port: str, op: str) -> None: ...

    @property
    def revenue(self) -> RevenueState:
        state = self.__dict__.get("_revenue")
        if state is None:
            state = self.__dict__["_revenue"] = RevenueState()
        return state

    # -- demo and test controls --------------------------------------------------------------
    def add_completed_case(
        self, seed: RevenueSeed, *, encounter_id: str, procedure_end: datetime
    ) -> CaseBilling:
        number = seed.case_id.rsplit("-", 1)[-1]
        case = CaseBilling(
            case_id=seed.case_id,
            encounter_id=encounter_id,
            facility_id=seed.facility_id,
            patient_ref=f"Patient/pat-{number}",
            coverage_ref=f"Coverage/cov-{number}" if seed.coverage else None,
            payer_id=("payer-lakeshore" if int(number) % 2 else "payer-summit")
            if seed.coverage
            else None,
            surgeon_ref="Practitioner/dr-okafor",
            procedure_end=procedure_end,
            procedure_codes=(seed.procedure,),
            diagnosis_codes=(seed.diagnosis,),
            used=seed.used,
            charges=_charges(
                seed.case_id, seed.used, seed.uncharged, procedure_end + seed.charge_lag
            ),
            op_note_status="final" if seed.op_note_signed else "preliminary",
            op_note_signed=seed.op_note_signed,
            implant_log=seed.implant_log,
            coding_complete=seed.coding_complete,
            account_status="active",
            holds=seed.holds,
        )
        with self.lock:
            self.revenue.cases[case.case_id] = case
        return case

    def _change(self, case_id: str, **update: Any) -> CaseBilling:
        with self.lock:
            case = self.revenue.cases[case_id].model_copy(update=update)
            self.revenue.cases[case_id] = case
            return case

    def post_missing_charges(self, case_id: str, at: datetime) -> CaseBilling:
        """Charge capture posts a charge for every used item without one."""
        with self.lock:
            case = self.revenue.cases[case_id]
            charged = {c.item_id for c in case.charges}
            added = _charges(
                f"{case_id}-late",
                tuple(u for u in case.used if u.item_id not in charged),
                (),
                at,
            )
            return self._change(case_id, charges=case.charges + added)

    def sign_op_note(self, case_id: str) -> CaseBilling:
        return self._change(case_id, op_note_status="final", op_note_signed=True)

    def release_coding(self, case_id: str) -> CaseBilling:
        return self._change(case_id, coding_complete=True)

    def release_holds(self, case_id: str) -> CaseBilling:
        return self._change(case_id, holds=())

    def claims_received(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.revenue.claims)

    # -- the port ------------------------------------------------------------------------------
    def case_billing(self, case_id: str) -> CaseBilling | None:
        self._fault("ehr", "case_billing")
        with self.lock:
            return self.revenue.cases.get(case_id)

    def submit_claim(self, claim: Any) -> ClaimReceipt:
        self._fault("ehr", "submit_claim")
        from fhir.resources.R4B.claim import Claim

        try:
            parsed = Claim.model_validate(dict(claim))
        except Exception:
            raise ConnectorError("billing: the claim is not a valid FHIR Claim") from None
        claim_id = str(parsed.id)
        with self.lock:
            found = self.revenue.receipts.get(claim_id)
            if found is not None:
                return found
            self.revenue.claims[claim_id] = dict(claim)
            receipt = ClaimReceipt(claim_id=claim_id, status="active", received_at=parsed.created)
            self.revenue.receipts[claim_id] = receipt
            return receipt
