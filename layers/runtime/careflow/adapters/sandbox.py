"""Seeded in-process sandboxes for the EHR, payer, ERP, sterile processing, transport and
pharmacy ports.

They implement the same ports as the protocol adapters (FHIR R4, Da Vinci PAS,
ERP REST) and hold realistic, generated data: three facilities, surgeons, rooms,
implants with suppliers and lead times, payers with their behaviours. Time comes
from the clock, so a payer that "answers in two days" answers after two days of
virtual time. Faults can be switched on per port.
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from careflow.adapters.sandbox_inventory import InventorySandbox
from careflow.adapters.sandbox_payables import PayablesSandbox  # payables (issue 11)
from careflow.adapters.sandbox_procurement import ProcurementSandbox  # -- procurement (issue 11) --
from careflow.adapters.sandbox_revenue import RevenueSandbox
from careflow.canonical.cases import (
    Participant,
    ParticipantStatus,
    Priority,
    SupplyNeed,
    SurgicalCase,
)
from careflow.canonical.datatypes import Coding
from careflow.canonical.payer import (
    AuthDecision,
    ClinicalDocument,
    EligibilityRequest,
    EligibilityResponse,
    EncounterCoverage,
    PriorAuthItem,
    PriorAuthRequest,
    PriorAuthResponse,
)
from careflow.canonical.services import ServiceBooking, ServiceRequest
from careflow.canonical.supply import Requisition, RequisitionRequest, StockPosition, TrayStatus
from careflow.ports import ConnectorError, ConnectorUnavailable

CPT = "http://www.ama-assn.org/go/cpt"
REVIEW_ACTION = {
    AuthDecision.APPROVED: "A1",
    AuthDecision.DENIED: "A3",
    AuthDecision.PENDED: "A4",
    AuthDecision.MODIFIED: "A6",
}

FACILITIES = {
    "fac-north": "North Valley Medical Center",
    "fac-south": "South Bay Hospital",
    "fac-asc": "Riverside Surgery Center",
}

# item id: (description, supplier, lead time in days, consignment)
ITEMS: dict[str, tuple[str, str, float, bool]] = {
    "IMP-TKA-FEM-5": ("Knee femoral component, size 5", "sup-orthoco", 3, False),
    "IMP-TKA-TIB-4": ("Knee tibial baseplate, size 4", "sup-orthoco", 3, False),
    "IMP-THA-STEM-12": ("Hip femoral stem, size 12", "sup-jointworks", 5, False),
    "IMP-THA-CUP-52": ("Acetabular cup, 52 mm", "sup-jointworks", 5, False),
    "IMP-SPN-SCR-6545": ("Pedicle screw 6.5 x 45 mm", "sup-spinetech", 1, True),
    "IMP-SPN-ROD-120": ("Spinal rod 120 mm", "sup-spinetech", 1, True),
    "SUP-DRAPE-ORTHO": ("Orthopedic drape pack", "sup-medline", 2, False),
    "SUP-CEMENT-40": ("Bone cement, 40 g", "sup-orthoco", 2, False),
    # durable medical equipment, ordered for a discharge and delivered to the home or bedside
    "DME-WALKER-STD": ("Standard walker", "sup-homemed", 0.125, False),
    "DME-O2-CONC": ("Home oxygen concentrator", "sup-homemed", 0.25, False),
    # -- inventory (issue 11) --
    "SUP-SUT-VIC-0": ("Braided absorbable suture 0, box of 36", "sup-medline", 2, False),
    "SUP-SUT-NYL-30": ("Nylon suture 3-0, box of 36", "sup-medline", 2, False),
}

# How long, per facility, a transport vendor and the pharmacy take from a request to
# ready (pickup possible; medications at the bedside). A demo or test changes them.
TRANSPORT_LEAD: dict[str, timedelta] = {
    "fac-north": timedelta(minutes=90),
    "fac-south": timedelta(hours=2),
    "fac-asc": timedelta(minutes=60),
}
PHARMACY_LEAD: dict[str, timedelta] = {
    "fac-north": timedelta(minutes=45),
    "fac-south": timedelta(hours=1),
    "fac-asc": timedelta(minutes=30),
}

# Instrument trays sterile processing knows (any other tray is reported missing).
TRAYS = frozenset({"TRAY-KNEE-01", "TRAY-HIP-01", "TRAY-SPINE-02", "TRAY-SCOPE-01"})

# facility -> item -> (on hand, reserved for other cases, par level)
STOCK: dict[str, dict[str, tuple[int, int, int]]] = {
    "fac-north": {
        "IMP-TKA-FEM-5": (4, 1, 3),
        "IMP-TKA-TIB-4": (4, 1, 3),
        "IMP-THA-STEM-12": (3, 0, 2),
        "IMP-THA-CUP-52": (3, 0, 2),
        "IMP-SPN-SCR-6545": (0, 0, 0),
        "IMP-SPN-ROD-120": (0, 0, 0),
        "SUP-DRAPE-ORTHO": (40, 6, 30),
        "SUP-CEMENT-40": (25, 4, 20),
    },
    "fac-south": {
        "IMP-TKA-FEM-5": (2, 0, 2),
        "IMP-TKA-TIB-4": (2, 0, 2),
        "IMP-THA-STEM-12": (1, 1, 2),
        "IMP-THA-CUP-52": (2, 0, 2),
        "SUP-DRAPE-ORTHO": (20, 2, 15),
        "SUP-CEMENT-40": (10, 0, 8),
    },
    "fac-asc": {
        "IMP-TKA-FEM-5": (1, 0, 1),
        "IMP-TKA-TIB-4": (1, 0, 1),
        "SUP-DRAPE-ORTHO": (12, 0, 10),
        "SUP-CEMENT-40": (6, 0, 5),
    },
}


def _payer_for(key: str) -> str:
    """The payer the sandbox gives a case or an encounter: by the parity of its number (as
    ``Sandbox.add_case`` does), or of a stable hash when it has no trailing digits."""
    digits = re.search(r"(\d+)$", key)
    number = int(digits.group(1)) if digits else zlib.crc32(key.encode())
    return "payer-lakeshore" if number % 2 else "payer-summit"


def fhir_id(value: str) -> str:
    """A visit number as part of a FHIR id (``[A-Za-z0-9.-]``, at most 64 with a prefix)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", value)[:56]


def default_encounter_coverage(encounter_id: str) -> EncounterCoverage:
    """What the sandbox EHR holds for an encounter nobody set up: a patient of its own and
    one active coverage with a demo payer."""
    key = fhir_id(encounter_id)
    return EncounterCoverage(
        encounter_id=encounter_id,
        patient_ref=f"Patient/pat-enc-{key}",
        coverage_ref=f"Coverage/cov-enc-{key}",
        payer_id=_payer_for(encounter_id),
    )


LOINC = "http://loinc.org"
# The chart every sandbox patient has (ids under the patient's): two documents whose type is
# coded (the H&P, a progress note) and three an EHR left uncoded, with a title only.
CHART: tuple[tuple[str, str | None, str], ...] = (
    ("hp", "34117-2", "History and physical note"),
    ("progress", "11506-3", "Progress note"),
    ("opnote", None, "Operative note: arthroscopic meniscectomy of right knee, no complications"),
    ("mri", None, "MRI of lumbar spine with and without contrast: impression disc herniation"),
    ("cbc", None, "Lab results: complete blood count, basic metabolic panel"),
)


def default_documents(patient_ref: str) -> tuple[ClinicalDocument, ...]:
    """The sandbox chart of a patient nobody set documents for (see :data:`CHART`)."""
    key = fhir_id(patient_ref.rsplit("/", maxsplit=1)[-1])
    return tuple(
        ClinicalDocument(
            document_id=f"DocumentReference/{key}-{suffix}",
            type_codings=(Coding(system=LOINC, code=code, display=text),) if code else (),
            text=text,
        )
        for suffix, code, text in CHART
    )


@dataclass(frozen=True)
class PayerRule:
    decision: AuthDecision
    pend_for: timedelta | None = None  # a pend that the payer decides after this long
    final: AuthDecision | None = None  # the decision it then sends (None: never answers)
    # Asks for these documents first; the resubmission that attaches them gets ``decision``.
    documents: tuple[str, ...] = ()
    # The PAS rules its responses break (as ``pas.read_response_bundle`` would list them).
    conformance: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaseSeed:
    appointment_id: str
    facility_id: str
    procedure: Coding
    service_line: str
    starts_in: timedelta
    payer_rule: PayerRule
    supplies: tuple[SupplyNeed, ...]
    trays: tuple[str, ...]
    surgeon: str
    room: str
    priority: Priority = Priority.ROUTINE
    participants_status: ParticipantStatus = ParticipantStatus.ACCEPTED


def _cpt(code: str, display: str) -> Coding:
    return Coding(system=CPT, code=code, display=display)


def _need(item: str, qty: int) -> SupplyNeed:
    return SupplyNeed(
        item_id=item, quantity=qty, implant=item.startswith("IMP-"), description=ITEMS[item][0]
    )


KNEE = (
    _need("IMP-TKA-FEM-5", 1),
    _need("IMP-TKA-TIB-4", 1),
    _need("SUP-DRAPE-ORTHO", 1),
    _need("SUP-CEMENT-40", 2),
)
HIP = (_need("IMP-THA-STEM-12", 1), _need("IMP-THA-CUP-52", 1), _need("SUP-DRAPE-ORTHO", 1))
SPINE = (_need("IMP-SPN-SCR-6545", 4), _need("IMP-SPN-ROD-120", 2), _need("SUP-DRAPE-ORTHO", 1))

DEMO_CASES: tuple[CaseSeed, ...] = (
    CaseSeed(
        "appt-1001",
        "fac-north",
        _cpt("27447", "Total knee arthroplasty"),
        "orthopedics",
        timedelta(days=10),
        PayerRule(AuthDecision.APPROVED),
        KNEE,
        ("TRAY-KNEE-01",),
        "Practitioner/dr-okafor",
        "Location/or-north-3",
    ),
    CaseSeed(
        "appt-1002",
        "fac-north",
        _cpt("22630", "Lumbar interbody fusion"),
        "spine",
        timedelta(days=12),
        PayerRule(AuthDecision.PENDED, timedelta(days=2), AuthDecision.APPROVED),
        SPINE,
        ("TRAY-SPINE-02",),
        "Practitioner/dr-lindqvist",
        "Location/or-north-5",
    ),
    CaseSeed(
        "appt-1003",
        "fac-south",
        _cpt("27130", "Total hip arthroplasty"),
        "orthopedics",
        timedelta(days=5),
        PayerRule(AuthDecision.APPROVED),
        HIP,
        ("TRAY-HIP-01",),
        "Practitioner/dr-castellanos",
        "Location/or-south-1",
    ),
    CaseSeed(
        "appt-1004",
        "fac-asc",
        _cpt("29881", "Knee arthroscopy with meniscectomy"),
        "orthopedics",
        timedelta(days=9),
        PayerRule(AuthDecision.DENIED),
        (),
        ("TRAY-SCOPE-01",),
        "Practitioner/dr-okafor",
        "Location/or-asc-2",
    ),
    CaseSeed(
        "appt-1005",
        "fac-north",
        _cpt("63047", "Lumbar laminectomy, decompression"),
        "spine",
        timedelta(days=6),
        PayerRule(AuthDecision.PENDED),
        SPINE,
        ("TRAY-SPINE-02",),
        "Practitioner/dr-lindqvist",
        "Location/or-north-5",
        priority=Priority.EXPEDITED,
    ),
)


@dataclass
class Faults:
    """Switchable faults: the next ``fail_next`` calls raise ConnectorUnavailable."""

    fail_next: int = 0
    fail_always: bool = False

    def check(self, port: str) -> None:
        if self.fail_always:
            raise ConnectorUnavailable(f"{port} sandbox unavailable (fault injected)")
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ConnectorUnavailable(f"{port} sandbox unavailable (fault injected)")


@dataclass
class _Pend:
    preauth_ref: str
    due_at: datetime | None
    final: AuthDecision | None
    items: tuple[PriorAuthItem, ...]


@dataclass
# issue 11: the ERP's payables (adapters/sandbox_payables.py), procurement
# (adapters/sandbox_procurement.py) and inventory (adapters/sandbox_inventory.py) sides
class Sandbox(PayablesSandbox, ProcurementSandbox, InventorySandbox, RevenueSandbox):
    seeded_at: datetime
    cases: dict[str, SurgicalCase] = field(default_factory=dict)
    participants: dict[str, list[Participant]] = field(default_factory=dict)
    payer_rules: dict[str, PayerRule] = field(default_factory=dict)
    stock: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    requisitions: dict[str, Requisition] = field(default_factory=dict)
    pends: dict[str, _Pend] = field(default_factory=dict)
    decided: dict[str, PriorAuthResponse] = field(default_factory=dict)
    # every prior authorization request the payer received, by case id (what tests inspect)
    submissions: dict[str, list[PriorAuthRequest]] = field(default_factory=dict)
    faults: dict[str, Faults] = field(default_factory=dict)
    transport_lead: dict[str, timedelta] = field(default_factory=lambda: dict(TRANSPORT_LEAD))
    pharmacy_lead: dict[str, timedelta] = field(default_factory=lambda: dict(PHARMACY_LEAD))
    bookings: dict[str, ServiceBooking] = field(default_factory=dict)
    # Encounters set up by a demo or a test (by visit number); None: unknown to the EHR.
    # Any other encounter has the default coverage (``default_encounter_coverage``).
    encounters: dict[str, EncounterCoverage | None] = field(default_factory=dict)
    # A patient's documents set up by a demo or a test; any other has ``default_documents``.
    documents: dict[str, tuple[ClinicalDocument, ...]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def seeded(cls, now: datetime, cases: Sequence[CaseSeed] = DEMO_CASES) -> Sandbox:
        sb = cls(seeded_at=now)
        sb.stock = {
            fac: {item: list(v) for item, v in items.items()} for fac, items in STOCK.items()
        }
        for seed in cases:
            sb.add_case(seed, now)
        return sb

    def add_case(self, seed: CaseSeed, now: datetime) -> SurgicalCase:
        number = seed.appointment_id.split("-")[-1]
        start = (now + seed.starts_in).replace(minute=0, second=0, microsecond=0)
        case = SurgicalCase(
            case_id=seed.appointment_id,
            appointment_id=seed.appointment_id,
            facility_id=seed.facility_id,
            patient_ref=f"Patient/pat-{number}",
            scheduled_start=start,
            procedure_codes=(seed.procedure,),
            service_line=seed.service_line,
            priority=seed.priority,
            coverage_ref=f"Coverage/cov-{number}",
            payer_id="payer-lakeshore" if int(number) % 2 else "payer-summit",
            surgeon_ref=seed.surgeon,
            room_ref=seed.room,
            supplies=seed.supplies,
            tray_ids=seed.trays,
        )
        with self.lock:
            self.cases[case.appointment_id] = case
            self.payer_rules[case.case_id] = seed.payer_rule
            self.participants[case.appointment_id] = [
                Participant(role="surgeon", ref=seed.surgeon, status=seed.participants_status),
                Participant(
                    role="anesthesia",
                    ref="Practitioner/dr-nakamura",
                    status=ParticipantStatus.ACCEPTED,
                ),
                Participant(role="room", ref=seed.room, status=ParticipantStatus.ACCEPTED),
            ]
        return case

    def fault(self, target: str) -> Faults:
        """The switch for a port (``erp``) or one of its operations (``erp.stock_positions``)."""
        return self.faults.setdefault(target, Faults())

    def clear_faults(self) -> None:
        self.faults.clear()

    def _fault(self, port: str, op: str) -> None:
        for key in (port, f"{port}.{op}"):
            switch = self.faults.get(key)
            if switch is not None:
                switch.check(key)

    # -- EHR (FHIR Appointment and its participants) ------------------------------------------
    def get_surgical_case(self, appointment_id: str) -> SurgicalCase:
        self._fault("ehr", "get_surgical_case")
        with self.lock:
            case = self.cases.get(appointment_id)
        if case is None:
            raise ConnectorError(f"Appointment/{appointment_id} not found")
        return case

    def appointment_participants(self, appointment_id: str) -> Sequence[Participant]:
        self._fault("ehr", "appointment_participants")
        with self.lock:
            return tuple(self.participants.get(appointment_id, ()))

    def encounter_coverage(self, encounter_id: str) -> EncounterCoverage | None:
        self._fault("ehr", "encounter_coverage")
        return self.encounter_record(encounter_id)

    def patient_documents(self, patient_ref: str) -> Sequence[ClinicalDocument]:
        self._fault("ehr", "patient_documents")
        return self.documents_of(patient_ref)

    def documents_of(self, patient_ref: str) -> tuple[ClinicalDocument, ...]:
        """The patient's documents without faults (the FHIR sandbox server serves them)."""
        with self.lock:
            found = self.documents.get(patient_ref)
        return found if found is not None else default_documents(patient_ref)

    def set_documents(self, patient_ref: str, documents: Sequence[ClinicalDocument]) -> None:
        with self.lock:
            self.documents[patient_ref] = tuple(documents)

    def encounter_record(self, encounter_id: str) -> EncounterCoverage | None:
        """What the EHR holds for an encounter, without faults (the FHIR sandbox server
        serves it too)."""
        if not encounter_id.strip():
            raise ConnectorError("encounter_coverage needs a visit number")
        with self.lock:
            if encounter_id in self.encounters:
                return self.encounters[encounter_id]
        return default_encounter_coverage(encounter_id)

    def set_encounter(self, coverage: EncounterCoverage) -> EncounterCoverage:
        """Sets what the EHR holds for ``coverage.encounter_id``."""
        with self.lock:
            self.encounters[coverage.encounter_id] = coverage
        return coverage

    def set_self_pay(self, encounter_id: str) -> EncounterCoverage:
        """The encounter's patient has no active coverage: coverage and payer None."""
        default = default_encounter_coverage(encounter_id)
        return self.set_encounter(
            default.model_copy(update={"coverage_ref": None, "payer_id": None})
        )

    def set_unknown_encounter(self, encounter_id: str) -> None:
        """The EHR has no such encounter: ``encounter_coverage`` answers None."""
        with self.lock:
            self.encounters[encounter_id] = None

    def reset_encounter(self, encounter_id: str) -> None:
        """Back to the default coverage."""
        with self.lock:
            self.encounters.pop(encounter_id, None)

    # -- payer (Da Vinci PAS and CoverageEligibility) -------------------------------------------
    def submit_prior_auth(self, request: PriorAuthRequest) -> PriorAuthResponse:
        self._fault("payer", "submit_prior_auth")
        from careflow import clock

        with self.lock:
            self.submissions.setdefault(request.case_id, []).append(request)
            rule = self.payer_rules.get(request.case_id, PayerRule(AuthDecision.APPROVED))
            ref = f"PA-{request.case_id}"
            if rule.documents and not request.attachments:
                return PriorAuthResponse(
                    decision=AuthDecision.PENDED,
                    preauth_ref=ref,
                    documents_requested=rule.documents,
                    reason="additional documentation requested",
                )
            items = tuple(
                PriorAuthItem(
                    sequence=i + 1,
                    code=c.code,
                    decision=rule.decision,
                    review_action=REVIEW_ACTION.get(rule.decision),
                )
                for i, c in enumerate(request.procedure_codes)
            )
            if rule.decision is AuthDecision.PENDED and ref not in self.pends:
                due = clock.now() + rule.pend_for if rule.pend_for else None
                self.pends[ref] = _Pend(ref, due, rule.final, items)
            return PriorAuthResponse(
                decision=rule.decision,
                preauth_ref=ref,
                items=items,
                conformance=rule.conformance,
            )

    def inquire(self, preauth_ref: str) -> PriorAuthResponse:
        self._fault("payer", "inquire")
        from careflow import clock

        now = clock.now()
        with self.lock:
            pend = self.pends.get(preauth_ref)
            if pend and pend.due_at is not None and pend.final is not None and pend.due_at <= now:
                # decided by now: the inquiry reads it (the notification may still be on its way)
                items = tuple(
                    i.model_copy(
                        update={"decision": pend.final, "review_action": REVIEW_ACTION[pend.final]}
                    )
                    for i in pend.items
                )
                self.decided[preauth_ref] = PriorAuthResponse(
                    decision=pend.final, preauth_ref=preauth_ref, items=items
                )
                del self.pends[preauth_ref]
        with self.lock:
            if preauth_ref in self.decided:
                return self.decided[preauth_ref]
            if preauth_ref in self.pends:
                p = self.pends[preauth_ref]
                return PriorAuthResponse(
                    decision=AuthDecision.PENDED, preauth_ref=preauth_ref, items=p.items
                )
        raise ConnectorError(f"no authorization {preauth_ref}")

    def due_decisions(self, now: datetime) -> list[PriorAuthResponse]:
        """Pended authorizations the payer decides by ``now`` (their notifications to send)."""
        out = []
        with self.lock:
            for ref, pend in list(self.pends.items()):
                if pend.due_at is not None and pend.final is not None and pend.due_at <= now:
                    items = tuple(
                        i.model_copy(
                            update={
                                "decision": pend.final,
                                "review_action": REVIEW_ACTION[pend.final],
                            }
                        )
                        for i in pend.items
                    )
                    decision = PriorAuthResponse(decision=pend.final, preauth_ref=ref, items=items)
                    self.decided[ref] = decision
                    del self.pends[ref]
                    out.append(decision)
        return out

    def check_eligibility(self, request: EligibilityRequest) -> EligibilityResponse:
        self._fault("payer", "check_eligibility")
        if request.coverage_ref is None:
            return EligibilityResponse(active=False, covered=False, reason="no coverage on file")
        return EligibilityResponse(active=True, covered=True, auth_required=True)

    # -- ERP (items, on hand, requisitions) -----------------------------------------------------
    def stock_positions(self, facility_id: str, item_ids: Sequence[str]) -> Sequence[StockPosition]:
        self._fault("erp", "stock_positions")
        out = []
        with self.lock:
            fac = self.stock.get(facility_id, {})
            for item in item_ids:
                if item not in ITEMS or item not in fac:
                    if item in ITEMS:
                        _, supplier, lead, consignment = ITEMS[item]
                        out.append(
                            StockPosition(
                                facility_id=facility_id,
                                item_id=item,
                                on_hand=0,
                                reserved=0,
                                par_level=0,
                                supplier_id=supplier,
                                lead_time_days=lead,
                                consignment=consignment,
                            )
                        )
                    continue
                on_hand, reserved, par = fac[item]
                _, supplier, lead, consignment = ITEMS[item]
                out.append(
                    StockPosition(
                        facility_id=facility_id,
                        item_id=item,
                        on_hand=on_hand,
                        reserved=reserved,
                        par_level=par,
                        supplier_id=supplier,
                        lead_time_days=lead,
                        consignment=consignment,
                    )
                )
        return out

    def create_requisition(self, request: RequisitionRequest) -> Requisition:
        self._fault("erp", "create_requisition")
        from careflow import clock

        with self.lock:
            existing = self.requisitions.get(request.reference)
            if existing is not None:  # the ERP de-duplicates on the caller's reference
                return existing
            lead = max(ITEMS[line.item_id][2] for line in request.lines)
            req = Requisition(
                requisition_id=f"REQ-{len(self.requisitions) + 5001}",
                status="SUBMITTED",
                expected_delivery=clock.now() + timedelta(days=lead),
            )
            self.requisitions[request.reference] = req
            return req

    def transfer_stock(
        self, item_id: str, quantity: int, from_facility: str, to_facility: str
    ) -> None:
        """An inter-facility transfer, as a buyer would arrange it."""
        with self.lock:
            src = self.stock[from_facility][item_id]
            if src[0] - src[1] < quantity:
                raise ConnectorError(f"{from_facility} cannot spare {quantity} x {item_id}")
            src[0] -= quantity
            dst = self.stock[to_facility].setdefault(item_id, [0, 0, 0])
            dst[0] += quantity

    # -- sterile processing ---------------------------------------------------------------------
    def tray_status(self, facility_id: str, tray_ids: Sequence[str]) -> Sequence[TrayStatus]:
        self._fault("sterile", "tray_status")
        return tuple(
            TrayStatus(tray_id=t, status="ready" if t in TRAYS else "missing") for t in tray_ids
        )

    # -- transport vendor and pharmacy --------------------------------------------------------
    def _book(self, port: str, prefix: str, lead: timedelta, request: ServiceRequest) -> Any:
        from careflow import clock

        with self.lock:
            key = f"{port}|{request.reference}"
            existing = self.bookings.get(key)
            if existing is not None:  # the vendor de-duplicates on the caller's reference
                return existing
            booking = ServiceBooking(
                booking_id=f"{prefix}-{len(self.bookings) + 3001}",
                status="BOOKED",
                # not before it is needed, and not before the vendor can make it
                ready_at=max(clock.now() + lead, request.needed_by),
            )
            self.bookings[key] = booking
            return booking

    def book_transport(self, request: ServiceRequest) -> ServiceBooking:
        self._fault("transport", "book_transport")
        lead = self.transport_lead.get(request.facility_id, timedelta(hours=2))
        booking: ServiceBooking = self._book("transport", "TRN", lead, request)
        return booking

    def meds_to_beds(self, request: ServiceRequest) -> ServiceBooking:
        self._fault("pharmacy", "meds_to_beds")
        lead = self.pharmacy_lead.get(request.facility_id, timedelta(hours=1))
        # meds to beds: ready as soon as filled, before the patient leaves
        booking: ServiceBooking = self._book(
            "pharmacy", "RX", lead, request.model_copy(update={"needed_by": self.seeded_at})
        )
        return booking


_SANDBOX: Sandbox | None = None
_LOCK = threading.Lock()


def sandbox() -> Sandbox:
    """The process's sandbox, seeded on first use at the clock's time."""
    global _SANDBOX
    with _LOCK:
        if _SANDBOX is None:
            from careflow import clock

            _SANDBOX = Sandbox.seeded(clock.now())
        return _SANDBOX


def reset_sandbox(sb: Sandbox | None = None) -> Sandbox | None:
    global _SANDBOX
    with _LOCK:
        _SANDBOX = sb
    return sb
