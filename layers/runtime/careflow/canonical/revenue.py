"""Revenue-cycle facts the EHR port exchanges after a procedure: what the case used
(implants by lot and serial, supplies), the charges posted for its encounter, whether its
documentation and coding are complete, the account's holds, and the claim handed to
billing. Codes, identifiers, statuses, dates and amounts only: never a name or free text.
Money is :class:`~decimal.Decimal` (USD), never a float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from careflow.canonical.datatypes import Coding, Model


class UsedItem(Model):
    """One item the case record (implant log, ``Procedure.focalDevice``) says was used."""

    item_id: str  # the ERP item (the chargemaster's supply code)
    quantity: int = Field(gt=0)
    implant: bool = False
    bill_only: bool = False  # a bill-only implant: bought after use (PO raised after the case)
    supplier_id: str | None = None
    unit_price: Decimal = Field(default=Decimal(0), ge=0)  # the charge it should carry
    lot: str | None = None
    serial: str | None = None
    udi: str | None = None  # the device identifier (UDI carrier's device id)


class ChargeLine(Model):
    """One ``ChargeItem`` posted for the case's encounter."""

    charge_id: str
    item_id: str  # the chargemaster code the charge carries
    quantity: int = Field(gt=0)
    amount: Decimal = Field(ge=0)
    status: str = "billable"  # ChargeItem.status: only billable / billed count
    entered_at: datetime | None = None


class CaseBilling(Model):
    """What the revenue cycle reads about one completed case, by its appointment id."""

    case_id: str
    encounter_id: str
    facility_id: str
    patient_ref: str  # "Patient/<id>": a reference, never demographics
    coverage_ref: str | None = None
    payer_id: str | None = None
    surgeon_ref: str | None = None
    procedure_end: datetime
    procedure_codes: tuple[Coding, ...] = ()
    diagnosis_codes: tuple[Coding, ...] = ()
    used: tuple[UsedItem, ...] = ()
    charges: tuple[ChargeLine, ...] = ()
    op_note_status: str | None = None  # DocumentReference docStatus: preliminary | final ...
    op_note_signed: bool = False  # final, with an authenticator
    implant_log: bool = False  # the implant log is on the record
    coding_complete: bool = False  # the coder released the case's codes
    account_status: str | None = None  # Account.status
    holds: tuple[str, ...] = ()  # coded holds on the account (e.g. "pfs-review")


class ClaimReceipt(Model):
    """What billing answered when the claim was handed over."""

    claim_id: str
    status: str  # active | draft | ...
    received_at: datetime | None = None
