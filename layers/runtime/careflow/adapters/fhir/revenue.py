"""The revenue cycle's FHIR R4 reads: a completed case's encounter, procedure (its codes,
diagnoses, end, implanted devices and the supplies it used), the devices (UDI, lot,
serial; bill-only when the implant log marks them so), the encounter's charges
(``ChargeItem``), the chargemaster's prices (``ChargeItemDefinition``), the operative note
and implant log (``DocumentReference``), and the account's status and holds (``Account``).

Each resource is read with ``fhir.resources.R4B`` (:func:`careflow.adapters.fhir.mappers.
parse`) into a small record of codes, references, statuses, dates and amounts: never a
name, a narrative or a note. :func:`read_case_billing` composes a
:class:`~careflow.canonical.revenue.CaseBilling` from them.

How the EHR says it (the sandbox EHR and the HL7 examples alike):

- the case's Encounter names its Appointment (``Encounter.appointment``), its visit number
  (``identifier``), the facility (``serviceProvider``) and its account (``account``);
- the Procedure (``encounter``) holds the CPT code (``code``), the ICD-10 diagnoses
  (``reasonCode``: coded only once coding released them), the end (``performedPeriod.end``
  or ``performedDateTime``), the implants (``focalDevice.manipulated`` → Device) and the
  supplies (``usedCode``, one entry per unit, coded with the ERP item);
- a Device's ERP item is its ``type`` coding in the ERP item system; a vendor-owned
  implant bought after use carries the property ``urn:careflow:item-class|bill_only`` and
  its supplier as ``owner``;
- the operative note is a DocumentReference of LOINC 11504-8, *signed* when its
  ``docStatus`` is final and it has an ``authenticator``; the implant log is one of type
  ``urn:careflow:document-type|implant-log``;
- an Account ``on-hold`` is held; ``meta.tag`` codes in ``urn:careflow:account-hold``
  name why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.adapters.fhir.mappers import FhirMappingError, parse
from careflow.canonical.datatypes import Coding
from careflow.canonical.revenue import CaseBilling, ChargeLine, ClaimReceipt, UsedItem

ERP_ITEM = "urn:careflow:erp:item"
ITEM_CLASS = "urn:careflow:item-class"
DOCUMENT_TYPE = "urn:careflow:document-type"
ACCOUNT_HOLD = "urn:careflow:account-hold"
LOINC = "http://loinc.org"
OP_NOTE = "11504-8"  # LOINC: Surgical operation note
IMPLANT_LOG = "implant-log"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProcedureFacts(_Record):
    status: str
    codes: tuple[Coding, ...]
    diagnoses: tuple[Coding, ...]
    end: datetime | None
    devices: tuple[str, ...]  # Device references, implanted
    supplies: tuple[str, ...]  # ERP items used, one entry a unit
    surgeon_ref: str | None


class DeviceFacts(_Record):
    item_id: str | None
    udi: str | None
    lot: str | None
    serial: str | None
    bill_only: bool
    owner_ref: str | None


class ChargeFacts(_Record):
    charge_id: str
    status: str
    code: Coding | None
    quantity: int
    amount: Decimal | None
    entered_at: datetime | None


class DocumentFacts(_Record):
    types: tuple[Coding, ...]
    status: str
    doc_status: str | None
    signed: bool


class AccountFacts(_Record):
    status: str
    holds: tuple[str, ...]
    coverage_refs: tuple[str, ...]


def _codings(concept: Any) -> tuple[Coding, ...]:
    if concept is None:
        return ()
    return tuple(Coding(system=c.system, code=c.code) for c in (concept.coding or []) if c.code)


def _model(raw: Mapping[str, Any] | Any, kind: str) -> Any:
    model = parse(raw) if isinstance(raw, Mapping) else raw
    if model.get_resource_type() != kind:
        raise FhirMappingError(f"expected {kind}, got {model.get_resource_type()}")
    return model


def _ref(reference: Any) -> str | None:
    return str(reference.reference) if reference is not None and reference.reference else None


def _aware(value: Any) -> datetime | None:
    """A FHIR dateTime as an aware datetime (a bare date: its midnight UTC, as the
    server's zone is unknown)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        from datetime import UTC

        return datetime.combine(value, time(0), tzinfo=UTC)
    return None


def procedure(raw: Mapping[str, Any] | Any) -> ProcedureFacts:
    m = _model(raw, "Procedure")
    end = None
    if m.performedPeriod is not None:
        end = _aware(m.performedPeriod.end or m.performedPeriod.start)
    elif m.performedDateTime is not None:
        end = _aware(m.performedDateTime)
    devices = tuple(
        ref
        for fd in m.focalDevice or []
        if (ref := _ref(fd.manipulated))
        and not any(
            c.code in ("explanted", "removed")
            for c in (fd.action.coding if fd.action else []) or []
        )
    )
    supplies = tuple(
        c.code
        for concept in m.usedCode or []
        for c in concept.coding or []
        if c.system == ERP_ITEM and c.code
    )
    diagnoses = tuple(c for concept in m.reasonCode or [] for c in _codings(concept))
    surgeon = next((_ref(p.actor) for p in m.performer or [] if _ref(p.actor)), None)
    return ProcedureFacts(
        status=str(m.status),
        codes=_codings(m.code),
        diagnoses=diagnoses,
        end=end,
        devices=devices,
        supplies=supplies,
        surgeon_ref=surgeon,
    )


def device(raw: Mapping[str, Any] | Any) -> DeviceFacts:
    m = _model(raw, "Device")
    item = next((c.code for c in _codings(m.type) if c.system == ERP_ITEM), None)
    udi = next((u.deviceIdentifier for u in m.udiCarrier or [] if u.deviceIdentifier), None)
    bill_only = any(
        c.system == ITEM_CLASS and c.code == "bill_only"
        for p in m.property or []
        for c in _codings(p.type)
    )
    return DeviceFacts(
        item_id=item,
        udi=udi,
        lot=m.lotNumber,
        serial=m.serialNumber,
        bill_only=bill_only,
        owner_ref=_ref(m.owner),
    )


def charge_item(raw: Mapping[str, Any] | Any) -> ChargeFacts:
    m = _model(raw, "ChargeItem")
    code = next(iter(_codings(m.code)), None)
    quantity = int(m.quantity.value) if m.quantity is not None and m.quantity.value else 1
    amount = (
        Decimal(str(m.priceOverride.value))
        if m.priceOverride and m.priceOverride.value is not None
        else None
    )
    return ChargeFacts(
        charge_id=str(m.id or ""),
        status=str(m.status),
        code=code,
        quantity=max(1, quantity),
        amount=amount,
        entered_at=_aware(m.enteredDate),
    )


def document(raw: Mapping[str, Any] | Any) -> DocumentFacts:
    m = _model(raw, "DocumentReference")
    return DocumentFacts(
        types=_codings(m.type),
        status=str(m.status),
        doc_status=m.docStatus,
        signed=m.docStatus == "final" and m.authenticator is not None,
    )


def account(raw: Mapping[str, Any] | Any) -> AccountFacts:
    m = _model(raw, "Account")
    holds: tuple[str, ...] = ()
    if m.status == "on-hold":
        tags = tuple(
            t.code
            for t in (m.meta.tag if m.meta else None) or []
            if t.system == ACCOUNT_HOLD and t.code
        )
        holds = tags or ("on-hold",)
    coverages = tuple(ref for c in m.coverage or [] if (ref := _ref(c.coverage)))
    return AccountFacts(status=str(m.status), holds=holds, coverage_refs=coverages)


def base_price(raw: Mapping[str, Any] | Any) -> tuple[str | None, Decimal | None]:
    """A ChargeItemDefinition's ERP item and its base price."""
    m = _model(raw, "ChargeItemDefinition")
    item = next((c.code for c in _codings(m.code) if c.system == ERP_ITEM), None)
    for group in m.propertyGroup or []:
        for component in group.priceComponent or []:
            if (
                component.type == "base"
                and component.amount is not None
                and component.amount.value is not None
            ):
                return item, Decimal(str(component.amount.value))
    return item, None


# -- composing the case ---------------------------------------------------------------------
Search = Callable[[str, Mapping[str, str]], Iterable[Mapping[str, Any]]]
Read = Callable[[str, str], Mapping[str, Any]]


def _id(reference: str) -> tuple[str, str]:
    rtype, _, rid = reference.rstrip("/").rpartition("/")
    return rtype.rsplit("/", 1)[-1], rid


def _used(proc: ProcedureFacts, read: Read, price: Callable[[str], Decimal]) -> list[UsedItem]:
    """The implanted devices (grouped by item, lot, serial) and the supplies used."""
    used: dict[tuple[str, bool, str | None, str | None, str | None, str | None], int] = {}
    for ref in proc.devices:
        d = device(read(*_id(ref)))
        if not d.item_id:
            raise FhirMappingError(f"{ref}: Device.type has no ERP item")
        supplier = _id(d.owner_ref)[1] if d.bill_only and d.owner_ref else None
        key = (d.item_id, d.bill_only, supplier, d.lot, d.serial, d.udi)
        used[key] = used.get(key, 0) + 1
    items = [
        UsedItem(
            item_id=item,
            quantity=qty,
            implant=True,
            bill_only=bill_only,
            supplier_id=supplier,
            unit_price=price(item),
            lot=lot,
            serial=serial,
            udi=udi,
        )
        for (item, bill_only, supplier, lot, serial, udi), qty in used.items()
    ]
    supplies: dict[str, int] = {}
    for item in proc.supplies:
        supplies[item] = supplies.get(item, 0) + 1
    return items + [
        UsedItem(item_id=i, quantity=q, unit_price=price(i)) for i, q in supplies.items()
    ]


def _charges(search: Search, enc_ref: str, price: Callable[[str], Decimal]) -> list[ChargeLine]:
    """The encounter's charges that carry an ERP item (the chargemaster's supply codes)."""
    charges = []
    for raw in search("ChargeItem", {"context": enc_ref}):
        c = charge_item(raw)
        if c.code is None or c.code.system != ERP_ITEM:
            continue
        amount = c.amount if c.amount is not None else price(str(c.code.code)) * c.quantity
        charges.append(
            ChargeLine(
                charge_id=c.charge_id,
                item_id=str(c.code.code),
                quantity=c.quantity,
                amount=amount,
                status=c.status,
                entered_at=c.entered_at,
            )
        )
    return charges


def read_case_billing(
    case_id: str, *, search: Search, read: Read, payer_of: Callable[[str], str | None]
) -> CaseBilling | None:
    """The case's billing record; None when no Encounter names its Appointment."""
    encounters = list(search("Encounter", {"appointment": f"Appointment/{case_id}"}))
    if not encounters:
        return None
    if len(encounters) > 1:
        raise FhirMappingError(f"Encounter?appointment: {len(encounters)} Encounters, not one")
    enc = _model(encounters[0], "Encounter")
    visit = next((i.value for i in enc.identifier or [] if i.value), None)
    patient = _ref(enc.subject)
    facility = _ref(enc.serviceProvider)
    if not visit or not patient or not facility:
        raise FhirMappingError("Encounter: identifier, subject and serviceProvider are required")
    enc_ref = f"Encounter/{enc.id}"
    procs = [procedure(p) for p in search("Procedure", {"encounter": enc_ref})]
    done = [p for p in procs if p.status == "completed"]
    if not done or done[0].end is None:
        raise FhirMappingError("Procedure: no completed procedure with its end for the encounter")
    proc = done[0]
    prices: dict[str, Decimal] = {}

    def price(item: str) -> Decimal:
        if item not in prices:
            found = Decimal(0)
            for definition in search("ChargeItemDefinition", {"code": item}):
                code, amount = base_price(definition)
                if code == item and amount is not None:
                    found = amount
                    break
            prices[item] = found
        return prices[item]

    items = _used(proc, read, price)
    charges = _charges(search, enc_ref, price)
    docs = [document(raw) for raw in search("DocumentReference", {"encounter": enc_ref})]
    docs = [d for d in docs if d.status == "current"]
    notes = [d for d in docs if any(t.system == LOINC and t.code == OP_NOTE for t in d.types)]
    implant_log = any(
        any(t.system == DOCUMENT_TYPE and t.code == IMPLANT_LOG for t in d.types) for d in docs
    )
    acct: AccountFacts | None = None
    account_ref = next((r for a in enc.account or [] if (r := _ref(a))), None)
    if account_ref:
        acct = account(read(*_id(account_ref)))
    coverage_ref = acct.coverage_refs[0] if acct and acct.coverage_refs else None
    return CaseBilling(
        case_id=case_id,
        encounter_id=visit,
        facility_id=_id(facility)[1],
        patient_ref=patient,
        coverage_ref=coverage_ref,
        payer_id=payer_of(coverage_ref) if coverage_ref else None,
        surgeon_ref=proc.surgeon_ref,
        procedure_end=proc.end,
        procedure_codes=tuple(c for c in proc.codes if c.system == CPT),
        diagnosis_codes=tuple(c for c in proc.diagnoses if c.system in ICD10),
        used=tuple(items),
        charges=tuple(charges),
        op_note_status=notes[0].doc_status if notes else None,
        op_note_signed=any(n.signed for n in notes),
        implant_log=implant_log,
        coding_complete=any(c.system == CPT for c in proc.codes)
        and any(c.system in ICD10 for c in proc.diagnoses),
        account_status=acct.status if acct else None,
        holds=acct.holds if acct else (),
    )


def claim_receipt(raw: Mapping[str, Any], sent: Mapping[str, Any]) -> ClaimReceipt:
    m = _model(raw, "Claim")
    return ClaimReceipt(
        claim_id=str(sent.get("id") or m.id), status=str(m.status), received_at=_aware(m.created)
    )


def identifiers(claim: Mapping[str, Any]) -> Sequence[str]:
    return [str(i.get("value")) for i in claim.get("identifier") or [] if i.get("value")]
