"""Canonical records read from the EHR, scheduling, payer and supply systems.

The minimum of PHI: a patient is a reference plus allow-listed identifiers (MRN, member
id: :mod:`careflow.canonical.identifiers`), never a name, birth date, address or telecom;
references to patients carry no display. Each record has the ``reference`` it was read
from (``<type>/<id>``) when the source gave an id.
"""

from __future__ import annotations

from decimal import Decimal

from careflow.canonical.datatypes import (
    Coding,
    Concept,
    Identifier,
    Model,
    Money,
    Period,
    Quantity,
    Ref,
    When,
)


class Record(Model):
    reference: str | None = None
    identifiers: tuple[Identifier, ...] = ()


# --- parties and places ---------------------------------------------------------------


class PatientRef(Record):
    """A patient, by reference. Deliberately no demographics."""

    active: bool | None = None


class Provider(Record):
    """A practitioner or a practitioner role."""

    kind: str  # Practitioner | PractitionerRole
    active: bool | None = None
    role_codes: tuple[Concept, ...] = ()
    specialties: tuple[Concept, ...] = ()
    practitioner: Ref | None = None
    organization: Ref | None = None
    locations: tuple[Ref, ...] = ()
    period: Period | None = None


class Organization(Record):
    name: str | None = None
    active: bool | None = None
    types: tuple[Concept, ...] = ()
    part_of: Ref | None = None


class Location(Record):
    """A facility, building, ward, room or vehicle."""

    name: str | None = None
    status: str | None = None
    operational_status: Coding | None = None
    mode: str | None = None
    types: tuple[Concept, ...] = ()
    physical_type: Concept | None = None
    managing_organization: Ref | None = None
    part_of: Ref | None = None


Facility = Location


class Supplier(Record):
    """An organization that supplies items; read from an Organization or from the ERP."""

    name: str | None = None
    active: bool | None = None


class Item(Record):
    """A supply item, with each system's local codes kept side by side."""

    codes: tuple[Coding, ...] = ()
    description: str | None = None
    implant: bool = False


class CostCenter(Record):
    name: str | None = None
    active: bool | None = None
    owner: Ref | None = None


# --- encounters and scheduling --------------------------------------------------------


class EncounterLocation(Model):
    location: Ref
    status: str | None = None  # planned | active | reserved | completed
    physical_type: Concept | None = None
    period: Period | None = None


class StatusPeriod(Model):
    status: str
    period: Period


class Encounter(Record):
    status: str
    status_history: tuple[StatusPeriod, ...] = ()
    encounter_class: Coding | None = None
    types: tuple[Concept, ...] = ()
    service_type: Concept | None = None
    priority: Concept | None = None
    subject: Ref | None = None
    period: Period | None = None
    appointments: tuple[Ref, ...] = ()
    based_on: tuple[Ref, ...] = ()
    locations: tuple[EncounterLocation, ...] = ()
    service_provider: Ref | None = None
    part_of: Ref | None = None


class AppointmentParticipant(Model):
    actor: Ref | None = None
    types: tuple[Concept, ...] = ()
    required: str | None = None  # required | optional | information-only
    status: str
    period: Period | None = None


class AppointmentFacts(Record):
    """What an Appointment says about a (surgical) case: when, what, who, on what basis."""

    status: str
    start: When | None = None
    end: When | None = None
    minutes_duration: int | None = None
    created: When | None = None
    priority: int | None = None
    service_categories: tuple[Concept, ...] = ()
    service_types: tuple[Concept, ...] = ()
    specialties: tuple[Concept, ...] = ()
    appointment_type: Concept | None = None
    participants: tuple[AppointmentParticipant, ...] = ()
    based_on: tuple[Ref, ...] = ()
    slots: tuple[Ref, ...] = ()
    requested_periods: tuple[Period, ...] = ()


class ServiceRequest(Record):
    status: str
    intent: str
    priority: str | None = None
    do_not_perform: bool | None = None
    code: Concept | None = None
    categories: tuple[Concept, ...] = ()
    subject: Ref
    encounter: Ref | None = None
    occurrence: When | None = None
    occurrence_period: Period | None = None
    # occurrenceTiming: its events, and whether it repeats (the repeat rule is not carried)
    occurrence_events: tuple[When, ...] = ()
    occurrence_repeats: bool = False
    authored_on: When | None = None
    requester: Ref | None = None
    performers: tuple[Ref, ...] = ()
    based_on: tuple[Ref, ...] = ()
    replaces: tuple[Ref, ...] = ()
    requisition: Identifier | None = None
    insurance: tuple[Ref, ...] = ()
    supporting_info: tuple[Ref, ...] = ()  # e.g. the SupplyRequests of a preference card


class Slot(Record):
    status: str
    start: When
    end: When
    schedule: Ref
    service_categories: tuple[Concept, ...] = ()
    service_types: tuple[Concept, ...] = ()
    specialties: tuple[Concept, ...] = ()
    overbooked: bool | None = None


class Schedule(Record):
    active: bool | None = None
    actors: tuple[Ref, ...] = ()
    planning_horizon: Period | None = None
    service_categories: tuple[Concept, ...] = ()
    service_types: tuple[Concept, ...] = ()
    specialties: tuple[Concept, ...] = ()


# --- coverage and payer ---------------------------------------------------------------


class CoverageClass(Model):
    type: Concept
    value: str
    name: str | None = None


class Coverage(Record):
    status: str
    type: Concept | None = None
    subscriber_id: Identifier | None = None
    subscriber: Ref | None = None
    beneficiary: Ref
    relationship: Concept | None = None
    period: Period | None = None
    payors: tuple[Ref, ...] = ()
    classes: tuple[CoverageClass, ...] = ()
    order: int | None = None
    network: str | None = None
    contracts: tuple[Ref, ...] = ()


class ClaimItem(Model):
    sequence: int
    product_or_service: Concept
    quantity: Quantity | None = None
    unit_price: Money | None = None
    net: Money | None = None
    serviced: When | None = None
    serviced_period: Period | None = None
    location: Concept | None = None
    location_ref: Ref | None = None


class ClaimInsurance(Model):
    sequence: int
    focal: bool
    coverage: Ref
    identifier: Identifier | None = None
    pre_auth_refs: tuple[str, ...] = ()


class Claim(Record):
    status: str
    type: Concept
    sub_type: Concept | None = None
    use: str
    patient: Ref
    billable_period: Period | None = None
    created: When
    enterer: Ref | None = None
    insurer: Ref | None = None
    provider: Ref
    priority: Concept
    referral: Ref | None = None
    facility: Ref | None = None
    items: tuple[ClaimItem, ...] = ()
    insurance: tuple[ClaimInsurance, ...] = ()
    total: Money | None = None


class Adjudication(Model):
    category: Concept
    reason: Concept | None = None
    amount: Money | None = None
    value: Decimal | None = None
    review_action_codes: tuple[Coding, ...] = ()  # Da Vinci PAS reviewAction (X12 306)
    review_action_number: str | None = None


class ClaimResponseItem(Model):
    item_sequence: int
    adjudications: tuple[Adjudication, ...] = ()
    # Da Vinci PAS extension-itemAuthorizedDetail.productOrServiceCode: what was authorized
    authorized_product: Concept | None = None


class ClaimResponseAddItem(Model):
    item_sequences: tuple[int, ...] = ()
    product_or_service: Concept
    net: Money | None = None
    adjudications: tuple[Adjudication, ...] = ()


class ClaimResponseTotal(Model):
    category: Concept
    amount: Money


class ClaimResponse(Record):
    status: str
    type: Concept
    use: str
    patient: Ref
    created: When
    insurer: Ref
    requestor: Ref | None = None
    request: Ref | None = None
    outcome: str
    disposition: str | None = None
    pre_auth_ref: str | None = None
    pre_auth_period: Period | None = None
    items: tuple[ClaimResponseItem, ...] = ()
    add_items: tuple[ClaimResponseAddItem, ...] = ()
    totals: tuple[ClaimResponseTotal, ...] = ()
    errors: tuple[Concept, ...] = ()


class EligibilityInsurance(Model):
    coverage: Ref
    focal: bool | None = None
    business_arrangement: str | None = None


class EligibilityItem(Model):
    category: Concept | None = None
    product_or_service: Concept | None = None
    provider: Ref | None = None
    facility: Ref | None = None


class CoverageEligibilityRequest(Record):
    status: str
    priority: Concept | None = None
    purposes: tuple[str, ...] = ()
    patient: Ref
    serviced: When | None = None
    serviced_period: Period | None = None
    created: When
    enterer: Ref | None = None
    provider: Ref | None = None
    insurer: Ref
    facility: Ref | None = None
    insurance: tuple[EligibilityInsurance, ...] = ()
    items: tuple[EligibilityItem, ...] = ()


class BenefitAmount(Model):
    """Benefit.allowed[x] / used[x]: a count, a string or money, as the source gives it."""

    unsigned_int: int | None = None
    string: str | None = None
    money: Money | None = None


class Benefit(Model):
    type: Concept
    allowed: BenefitAmount | None = None
    used: BenefitAmount | None = None


class BenefitItem(Model):
    category: Concept | None = None
    product_or_service: Concept | None = None
    excluded: bool | None = None
    name: str | None = None
    network: Concept | None = None
    unit: Concept | None = None
    term: Concept | None = None
    benefits: tuple[Benefit, ...] = ()
    authorization_required: bool | None = None
    authorization_supporting: tuple[Concept, ...] = ()
    authorization_url: str | None = None


class EligibilityResponseInsurance(Model):
    coverage: Ref
    inforce: bool | None = None
    benefit_period: Period | None = None
    items: tuple[BenefitItem, ...] = ()


class CoverageEligibilityResponse(Record):
    status: str
    purposes: tuple[str, ...] = ()
    patient: Ref
    serviced: When | None = None
    serviced_period: Period | None = None
    created: When
    requestor: Ref | None = None
    request: Ref
    outcome: str
    disposition: str | None = None
    insurer: Ref
    insurance: tuple[EligibilityResponseInsurance, ...] = ()
    pre_auth_ref: str | None = None
    errors: tuple[Concept, ...] = ()


# --- supply and finance ---------------------------------------------------------------


class SupplyRequest(Record):
    status: str | None = None
    category: Concept | None = None
    priority: str | None = None
    item: Concept | None = None
    item_ref: Ref | None = None
    quantity: Quantity
    occurrence: When | None = None
    occurrence_period: Period | None = None
    authored_on: When | None = None
    requester: Ref | None = None
    suppliers: tuple[Ref, ...] = ()
    reasons: tuple[Concept, ...] = ()
    deliver_from: Ref | None = None
    deliver_to: Ref | None = None


class SupplyDelivery(Record):
    status: str | None = None
    based_on: tuple[Ref, ...] = ()
    part_of: tuple[Ref, ...] = ()
    patient: Ref | None = None
    type: Concept | None = None
    quantity: Quantity | None = None
    item: Concept | None = None
    item_ref: Ref | None = None
    occurrence: When | None = None
    occurrence_period: Period | None = None
    supplier: Ref | None = None
    destination: Ref | None = None
    receivers: tuple[Ref, ...] = ()


class InvoiceParticipant(Model):
    role: Concept | None = None
    actor: Ref


class Invoice(Record):
    status: str
    type: Concept | None = None
    subject: Ref | None = None
    recipient: Ref | None = None
    date: When | None = None
    participants: tuple[InvoiceParticipant, ...] = ()
    issuer: Ref | None = None
    account: Ref | None = None
    total_net: Money | None = None
    total_gross: Money | None = None


class Task(Record):
    status: str
    intent: str
    priority: str | None = None
    code: Concept | None = None
    business_status: Concept | None = None
    status_reason: Concept | None = None
    focus: Ref | None = None
    for_: Ref | None = None
    encounter: Ref | None = None
    authored_on: When | None = None
    last_modified: When | None = None
    execution_period: Period | None = None
    requester: Ref | None = None
    owner: Ref | None = None
    based_on: tuple[Ref, ...] = ()
    part_of: tuple[Ref, ...] = ()
    group_identifier: Identifier | None = None
    input_types: tuple[Concept, ...] = ()
    output_types: tuple[Concept, ...] = ()
