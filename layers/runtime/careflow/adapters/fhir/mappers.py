"""Map FHIR R4 resources to canonical records.

Documents are read with ``fhir.resources.R4B`` (R4-compatible), never the package's
default R5 models, which reject many R4 documents. Each resource type's module is imported
on first use only: a handler that maps Appointments does not pay for importing Claim.

Every function accepts an R4B model instance or the raw JSON dict, and the identifier
allow-list to apply (:mod:`careflow.canonical.identifiers`; every identifier a mapper keeps
passes through ``_Ctx._admit``). Names, addresses, telecom and birth dates are never read.
Errors never quote values from the document (they may be PHI); they name the resource type
and field path.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from careflow.canonical import datatypes as dt
from careflow.canonical import records as rec
from careflow.canonical.identifiers import (
    DEFAULT_POLICY,
    MEMBER_NUMBER,
    PERSON_TYPES,
    V2_0203,
    IdentifierPolicy,
)

__all__ = [
    "SUPPORTED_TYPES",
    "FhirMappingError",
    "InvalidResource",
    "UnsupportedResource",
    "appointment",
    "claim",
    "claim_response",
    "coverage",
    "coverage_eligibility_request",
    "coverage_eligibility_response",
    "encounter",
    "invoice",
    "location",
    "organization",
    "parse",
    "patient_ref",
    "provider",
    "schedule",
    "service_request",
    "slot",
    "supplier",
    "supply_delivery",
    "supply_request",
    "task",
    "to_canonical",
]

R4B_PACKAGE = "fhir.resources.R4B"
REVIEW_ACTION_URL = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewAction"
ITEM_AUTHORIZED_DETAIL_URL = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-itemAuthorizedDetail"
)
REVIEW_ACTION_CODE_URL = (
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-reviewActionCode"
)
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")

Resource = Any  # an R4B model instance; typed loosely: fhir.resources builds fields at runtime


class FhirMappingError(ValueError):
    """A FHIR document careflow cannot turn into a canonical record."""


class UnsupportedResource(FhirMappingError):
    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type
        supported = ", ".join(sorted(SUPPORTED_TYPES))
        super().__init__(
            f"unsupported FHIR resource type {resource_type!r}; careflow maps: {supported}"
        )


class InvalidResource(FhirMappingError):
    """The document is not a valid R4 resource. The message names the path, never a value."""

    def __init__(self, resource_type: str, path: str, reason: str, more: int = 0) -> None:
        self.resource_type = resource_type
        self.path = path
        self.reason = reason
        self.more = more
        extra = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        super().__init__(f"invalid {resource_type} at {path or '<root>'}: {reason}{extra}")


# --- parsing --------------------------------------------------------------------------


def _model_class(resource_type: str) -> type[Any]:
    """The R4B model class for a resource type, importing only its module."""
    if not _TYPE_NAME.match(resource_type):
        raise UnsupportedResource(resource_type)
    try:
        module = importlib.import_module(f"{R4B_PACKAGE}.{resource_type.lower()}")
    except ModuleNotFoundError:
        raise UnsupportedResource(resource_type) from None
    cls = getattr(module, resource_type, None)
    if not isinstance(cls, type):
        raise UnsupportedResource(resource_type)
    return cls


def _loc(parts: Iterable[int | str]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _redact(message: str, value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 2 and text in message:
            return message.replace(text, "<redacted>")
    return message


def _invalid(resource_type: str, error: ValidationError) -> InvalidResource:
    errors = error.errors(include_url=False)
    first = errors[0]
    reason = _redact(first["msg"].splitlines()[0], first.get("input"))
    return InvalidResource(resource_type, _loc(first["loc"]), reason, len(errors) - 1)


def parse(raw: Mapping[str, Any]) -> Resource:
    """Build the R4B model of a raw FHIR JSON document (a dict)."""
    if not isinstance(raw, Mapping):
        raise InvalidResource("resource", "", "expected a JSON object")
    resource_type = raw.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidResource("resource", "resourceType", "missing or not a string")
    cls = _model_class(resource_type)
    try:
        return cls.model_validate(dict(raw))
    except ValidationError as exc:
        raise _invalid(resource_type, exc) from None


def _as_model(resource: Mapping[str, Any] | Resource, expected: str | tuple[str, ...]) -> Resource:
    model = parse(resource) if isinstance(resource, Mapping) else resource
    kind = _resource_type(model)
    allowed = (expected,) if isinstance(expected, str) else expected
    if kind not in allowed:
        raise FhirMappingError(f"expected {' or '.join(allowed)}, got {kind}")
    return model


def _resource_type(model: Resource) -> str:
    module = type(model).__module__
    if not module.startswith(f"{R4B_PACKAGE}."):
        raise FhirMappingError(
            f"expected a {R4B_PACKAGE} model, got {type(model).__qualname__} from {module}"
        )
    getter = getattr(model, "get_resource_type", None)
    if getter is None:
        raise FhirMappingError(f"{type(model).__qualname__} is not a FHIR resource")
    return str(getter())


# --- datatypes ------------------------------------------------------------------------


class _Ctx:
    """Per-resource context: the identifier allow-list, and the contained resources' types
    (to know where a ``#ref`` points)."""

    def __init__(self, model: Resource, policy: IdentifierPolicy) -> None:
        self.policy = policy
        self.kind = str(model.get_resource_type())
        self.contained: dict[str, str] = {}
        for item in getattr(model, "contained", None) or ():
            if getattr(item, "id", None):
                self.contained[f"#{item.id}"] = str(item.get_resource_type())

    # -- identifiers: every one the mappers keep passes here ---------------------------

    def _admit(self, value: Resource | None, *, person: bool) -> dt.Identifier | None:
        if value is None:
            return None
        identifier = dt.Identifier(
            system=value.system, value=value.value, use=value.use, type=_concept(value.type)
        )
        return self.policy.admit(identifier, person=person)

    def identifier(self, value: Resource | None) -> dt.Identifier | None:
        """An identifier of the resource being mapped (or of one of its parts)."""
        return self._admit(value, person=self.kind in PERSON_TYPES)

    def identifiers(self, values: Iterable[Resource] | None) -> tuple[dt.Identifier, ...]:
        return tuple(i for i in (self.identifier(v) for v in values or ()) if i is not None)

    def member_id(self, value: str | None) -> dt.Identifier | None:
        """``Coverage.subscriberId``: a payer member id by definition (type MB)."""
        if value is None:
            return None
        member = dt.Concept(codings=(dt.Coding(system=V2_0203, code=MEMBER_NUMBER),))
        return self.policy.admit(dt.Identifier(value=value, type=member), person=True)

    # -- references --------------------------------------------------------------------

    def ref(self, value: Resource | None, *, person: bool = False) -> dt.Ref | None:
        if value is None:
            return None
        ref = dt.Ref(reference=value.reference, type=value.type, display=value.display)
        target = ref.target_type or self.contained.get(ref.reference or "")
        if value.identifier is not None:
            # a logical reference whose target cannot be told may be a person's
            of_person = person or target is None or target in PERSON_TYPES
            admitted = self._admit(value.identifier, person=of_person)
            ref = ref.model_copy(update={"identifier": admitted})
        if ref.display is not None and (person or target is None or target in PERSON_TYPES):
            # a display is free text, usually a name: kept only for a known non-person
            # target (an organization, a place)
            ref = ref.model_copy(update={"display": None})
        return ref

    def refs(
        self, values: Iterable[Resource] | None, *, person: bool = False
    ) -> tuple[dt.Ref, ...]:
        out = (self.ref(v, person=person) for v in values or ())
        return tuple(r for r in out if r is not None)

    def person(self, value: Resource | None) -> dt.Ref | None:
        return self.ref(value, person=True)


def _coding(value: Resource | None) -> dt.Coding | None:
    if value is None:
        return None
    return dt.Coding(system=value.system, code=value.code, display=value.display)


def _concept(value: Resource | None) -> dt.Concept | None:
    if value is None:
        return None
    codings = tuple(c for c in (_coding(x) for x in value.coding or ()) if c is not None)
    return dt.Concept(codings=codings, text=value.text)


def _concepts(values: Iterable[Resource] | None) -> tuple[dt.Concept, ...]:
    return tuple(c for c in (_concept(v) for v in values or ()) if c is not None)


def _period(value: Resource | None) -> dt.Period | None:
    if value is None:
        return None
    return dt.Period(start=value.start, end=value.end)


def _money(value: Resource | None) -> dt.Money | None:
    if value is None:
        return None
    return dt.Money(value=value.value, currency=value.currency)


def _quantity(value: Resource | None) -> dt.Quantity | None:
    if value is None:
        return None
    return dt.Quantity(value=value.value, unit=value.unit, system=value.system, code=value.code)


def _self_ref(model: Resource) -> str | None:
    return f"{model.get_resource_type()}/{model.id}" if model.id else None


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(resource_type: str) -> Callable[[F], F]:
    """Turn a canonical-model validation failure into ``InvalidResource`` (path, no value)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def mapped(resource: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(resource, *args, **kwargs)
            except ValidationError as exc:
                raise _invalid(resource_type, exc) from None

        return cast(F, mapped)

    return wrap


# --- parties and places ---------------------------------------------------------------


@_guarded("Patient")
def patient_ref(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.PatientRef:
    """A Patient as a reference and its identifiers: no name, birth date, address, telecom."""
    m = _as_model(resource, "Patient")
    ctx = _Ctx(m, policy)
    return rec.PatientRef(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        active=m.active,
    )


@_guarded("Practitioner")
def provider(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Provider:
    """A Practitioner or a PractitionerRole."""
    m = _as_model(resource, ("Practitioner", "PractitionerRole"))
    ctx = _Ctx(m, policy)
    kind = m.get_resource_type()
    if kind == "Practitioner":
        roles = _concepts(q.code for q in m.qualification or ())
        return rec.Provider(
            reference=_self_ref(m),
            identifiers=ctx.identifiers(m.identifier),
            kind=kind,
            active=m.active,
            role_codes=roles,
        )
    return rec.Provider(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        kind=kind,
        active=m.active,
        role_codes=_concepts(m.code),
        specialties=_concepts(m.specialty),
        practitioner=ctx.ref(m.practitioner),
        organization=ctx.ref(m.organization),
        locations=ctx.refs(m.location),
        period=_period(m.period),
    )


@_guarded("Organization")
def organization(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Organization:
    m = _as_model(resource, "Organization")
    ctx = _Ctx(m, policy)
    return rec.Organization(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        name=m.name,
        active=m.active,
        types=_concepts(m.type),
        part_of=ctx.ref(m.partOf),
    )


@_guarded("Organization")
def supplier(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Supplier:
    """An Organization read as a supplier (the caller knows it is one)."""
    m = _as_model(resource, "Organization")
    ctx = _Ctx(m, policy)
    return rec.Supplier(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        name=m.name,
        active=m.active,
    )


@_guarded("Location")
def location(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Location:
    m = _as_model(resource, "Location")
    ctx = _Ctx(m, policy)
    return rec.Location(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        name=m.name,
        status=m.status,
        operational_status=_coding(m.operationalStatus),
        mode=m.mode,
        types=_concepts(m.type),
        physical_type=_concept(m.physicalType),
        managing_organization=ctx.ref(m.managingOrganization),
        part_of=ctx.ref(m.partOf),
    )


# --- encounters and scheduling --------------------------------------------------------


@_guarded("Encounter")
def encounter(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Encounter:
    m = _as_model(resource, "Encounter")
    ctx = _Ctx(m, policy)
    return rec.Encounter(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        status_history=tuple(
            rec.StatusPeriod(status=h.status, period=_period(h.period))
            for h in m.statusHistory or ()
        ),
        encounter_class=_coding(m.class_fhir),
        types=_concepts(m.type),
        service_type=_concept(m.serviceType),
        priority=_concept(m.priority),
        subject=ctx.person(m.subject),
        period=_period(m.period),
        appointments=ctx.refs(m.appointment),
        based_on=ctx.refs(m.basedOn),
        locations=tuple(
            rec.EncounterLocation(
                location=ctx.ref(loc.location),
                status=loc.status,
                physical_type=_concept(loc.physicalType),
                period=_period(loc.period),
            )
            for loc in m.location or ()
        ),
        service_provider=ctx.ref(m.serviceProvider),
        part_of=ctx.ref(m.partOf),
    )


@_guarded("Appointment")
def appointment(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.AppointmentFacts:
    m = _as_model(resource, "Appointment")
    ctx = _Ctx(m, policy)
    participants = tuple(
        rec.AppointmentParticipant(
            actor=ctx.ref(p.actor),
            types=_concepts(p.type),
            required=p.required,
            status=p.status,
            period=_period(p.period),
        )
        for p in m.participant or ()
    )
    return rec.AppointmentFacts(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        start=m.start,
        end=m.end,
        minutes_duration=m.minutesDuration,
        created=m.created,
        priority=m.priority,
        service_categories=_concepts(m.serviceCategory),
        service_types=_concepts(m.serviceType),
        specialties=_concepts(m.specialty),
        appointment_type=_concept(m.appointmentType),
        participants=participants,
        based_on=ctx.refs(m.basedOn),
        slots=ctx.refs(m.slot),
        requested_periods=tuple(p for p in (_period(x) for x in m.requestedPeriod or ()) if p),
    )


@_guarded("ServiceRequest")
def service_request(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.ServiceRequest:
    m = _as_model(resource, "ServiceRequest")
    ctx = _Ctx(m, policy)
    return rec.ServiceRequest(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        intent=m.intent,
        priority=m.priority,
        do_not_perform=m.doNotPerform,
        code=_concept(m.code),
        categories=_concepts(m.category),
        subject=ctx.person(m.subject),
        encounter=ctx.ref(m.encounter),
        occurrence=m.occurrenceDateTime,
        occurrence_period=_period(m.occurrencePeriod),
        occurrence_events=tuple(m.occurrenceTiming.event or ()) if m.occurrenceTiming else (),
        occurrence_repeats=bool(m.occurrenceTiming and m.occurrenceTiming.repeat),
        authored_on=m.authoredOn,
        requester=ctx.ref(m.requester),
        performers=ctx.refs(m.performer),
        based_on=ctx.refs(m.basedOn),
        replaces=ctx.refs(m.replaces),
        requisition=ctx.identifier(m.requisition),
        insurance=ctx.refs(m.insurance),
        supporting_info=ctx.refs(m.supportingInfo),
    )


@_guarded("Slot")
def slot(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Slot:
    m = _as_model(resource, "Slot")
    ctx = _Ctx(m, policy)
    return rec.Slot(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        start=m.start,
        end=m.end,
        schedule=ctx.ref(m.schedule),
        service_categories=_concepts(m.serviceCategory),
        service_types=_concepts(m.serviceType),
        specialties=_concepts(m.specialty),
        overbooked=m.overbooked,
    )


@_guarded("Schedule")
def schedule(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Schedule:
    m = _as_model(resource, "Schedule")
    ctx = _Ctx(m, policy)
    return rec.Schedule(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        active=m.active,
        actors=ctx.refs(m.actor),
        planning_horizon=_period(m.planningHorizon),
        service_categories=_concepts(m.serviceCategory),
        service_types=_concepts(m.serviceType),
        specialties=_concepts(m.specialty),
    )


# --- coverage and payer ---------------------------------------------------------------


@_guarded("Coverage")
def coverage(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Coverage:
    m = _as_model(resource, "Coverage")
    ctx = _Ctx(m, policy)
    classes = tuple(
        rec.CoverageClass(type=_concept(c.type), value=c.value, name=c.name)
        for c in m.class_fhir or ()
    )
    return rec.Coverage(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        type=_concept(m.type),
        subscriber_id=ctx.member_id(m.subscriberId),
        subscriber=ctx.person(m.subscriber),
        beneficiary=ctx.person(m.beneficiary),
        relationship=_concept(m.relationship),
        period=_period(m.period),
        payors=ctx.refs(m.payor),
        classes=classes,
        order=m.order,
        network=m.network,
        contracts=ctx.refs(m.contract),
    )


@_guarded("Claim")
def claim(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Claim:
    m = _as_model(resource, "Claim")
    ctx = _Ctx(m, policy)
    items = tuple(
        rec.ClaimItem(
            sequence=i.sequence,
            product_or_service=_concept(i.productOrService),
            quantity=_quantity(i.quantity),
            unit_price=_money(i.unitPrice),
            net=_money(i.net),
            serviced=i.servicedDate,
            serviced_period=_period(i.servicedPeriod),
            location=_concept(i.locationCodeableConcept),
            location_ref=ctx.ref(i.locationReference),
        )
        for i in m.item or ()
    )
    insurance = tuple(
        rec.ClaimInsurance(
            sequence=i.sequence,
            focal=i.focal,
            coverage=ctx.ref(i.coverage),
            identifier=ctx.identifier(i.identifier),
            pre_auth_refs=tuple(i.preAuthRef or ()),
        )
        for i in m.insurance or ()
    )
    return rec.Claim(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        type=_concept(m.type),
        sub_type=_concept(m.subType),
        use=m.use,
        patient=ctx.person(m.patient),
        billable_period=_period(m.billablePeriod),
        created=m.created,
        enterer=ctx.ref(m.enterer),
        insurer=ctx.ref(m.insurer),
        provider=ctx.ref(m.provider),
        priority=_concept(m.priority),
        referral=ctx.ref(m.referral),
        facility=ctx.ref(m.facility),
        items=items,
        insurance=insurance,
        total=_money(m.total),
    )


def _review_action(adjudication: Resource) -> tuple[tuple[dt.Coding, ...], str | None]:
    codes: list[dt.Coding] = []
    number: str | None = None
    for ext in adjudication.extension or ():
        if ext.url != REVIEW_ACTION_URL:
            continue
        for sub in ext.extension or ():
            if sub.url in (REVIEW_ACTION_CODE_URL, "code", "reviewActionCode"):
                concept = _concept(sub.valueCodeableConcept)
                if concept is not None:
                    codes.extend(concept.codings)
            elif sub.url == "number":
                number = sub.valueString
    return tuple(codes), number


def _authorized_product(item: Resource) -> dt.Concept | None:
    for ext in item.extension or ():
        if ext.url == ITEM_AUTHORIZED_DETAIL_URL:
            for sub in ext.extension or ():
                if sub.url == "productOrServiceCode":
                    return _concept(sub.valueCodeableConcept)
    return None


def _adjudications(values: Iterable[Resource] | None) -> tuple[rec.Adjudication, ...]:
    out = []
    for a in values or ():
        codes, number = _review_action(a)
        out.append(
            rec.Adjudication(
                category=_concept(a.category),
                reason=_concept(a.reason),
                amount=_money(a.amount),
                value=a.value,
                review_action_codes=codes,
                review_action_number=number,
            )
        )
    return tuple(out)


@_guarded("ClaimResponse")
def claim_response(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.ClaimResponse:
    m = _as_model(resource, "ClaimResponse")
    ctx = _Ctx(m, policy)
    items = tuple(
        rec.ClaimResponseItem(
            item_sequence=i.itemSequence,
            adjudications=_adjudications(i.adjudication),
            authorized_product=_authorized_product(i),
        )
        for i in m.item or ()
    )
    add_items = tuple(
        rec.ClaimResponseAddItem(
            item_sequences=tuple(a.itemSequence or ()),
            product_or_service=_concept(a.productOrService),
            net=_money(a.net),
            adjudications=_adjudications(a.adjudication),
        )
        for a in m.addItem or ()
    )
    totals = tuple(
        rec.ClaimResponseTotal(category=_concept(t.category), amount=_money(t.amount))
        for t in m.total or ()
    )
    return rec.ClaimResponse(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        type=_concept(m.type),
        use=m.use,
        patient=ctx.person(m.patient),
        created=m.created,
        insurer=ctx.ref(m.insurer),
        requestor=ctx.ref(m.requestor),
        request=ctx.ref(m.request),
        outcome=m.outcome,
        disposition=m.disposition,
        pre_auth_ref=m.preAuthRef,
        pre_auth_period=_period(m.preAuthPeriod),
        items=items,
        add_items=add_items,
        totals=totals,
        errors=_concepts(e.code for e in m.error or ()),
    )


@_guarded("CoverageEligibilityRequest")
def coverage_eligibility_request(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.CoverageEligibilityRequest:
    m = _as_model(resource, "CoverageEligibilityRequest")
    ctx = _Ctx(m, policy)
    insurance = tuple(
        rec.EligibilityInsurance(
            coverage=ctx.ref(i.coverage),
            focal=i.focal,
            business_arrangement=i.businessArrangement,
        )
        for i in m.insurance or ()
    )
    items = tuple(
        rec.EligibilityItem(
            category=_concept(i.category),
            product_or_service=_concept(i.productOrService),
            provider=ctx.ref(i.provider),
            facility=ctx.ref(i.facility),
        )
        for i in m.item or ()
    )
    return rec.CoverageEligibilityRequest(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        priority=_concept(m.priority),
        purposes=tuple(m.purpose or ()),
        patient=ctx.person(m.patient),
        serviced=m.servicedDate,
        serviced_period=_period(m.servicedPeriod),
        created=m.created,
        enterer=ctx.ref(m.enterer),
        provider=ctx.ref(m.provider),
        insurer=ctx.ref(m.insurer),
        facility=ctx.ref(m.facility),
        insurance=insurance,
        items=items,
    )


def _benefit_amount(value: Resource, name: str) -> rec.BenefitAmount | None:
    unsigned = getattr(value, f"{name}UnsignedInt", None)
    string = getattr(value, f"{name}String", None)
    money = _money(getattr(value, f"{name}Money", None))
    if unsigned is None and string is None and money is None:
        return None
    return rec.BenefitAmount(unsigned_int=unsigned, string=string, money=money)


def _benefit_items(values: Iterable[Resource] | None) -> tuple[rec.BenefitItem, ...]:
    return tuple(
        rec.BenefitItem(
            category=_concept(i.category),
            product_or_service=_concept(i.productOrService),
            excluded=i.excluded,
            name=i.name,
            network=_concept(i.network),
            unit=_concept(i.unit),
            term=_concept(i.term),
            benefits=tuple(
                rec.Benefit(
                    type=_concept(b.type),
                    allowed=_benefit_amount(b, "allowed"),
                    used=_benefit_amount(b, "used"),
                )
                for b in i.benefit or ()
            ),
            authorization_required=i.authorizationRequired,
            authorization_supporting=_concepts(i.authorizationSupporting),
            authorization_url=i.authorizationUrl,
        )
        for i in values or ()
    )


@_guarded("CoverageEligibilityResponse")
def coverage_eligibility_response(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.CoverageEligibilityResponse:
    m = _as_model(resource, "CoverageEligibilityResponse")
    ctx = _Ctx(m, policy)
    insurance = tuple(
        rec.EligibilityResponseInsurance(
            coverage=ctx.ref(i.coverage),
            inforce=i.inforce,
            benefit_period=_period(i.benefitPeriod),
            items=_benefit_items(i.item),
        )
        for i in m.insurance or ()
    )
    return rec.CoverageEligibilityResponse(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        purposes=tuple(m.purpose or ()),
        patient=ctx.person(m.patient),
        serviced=m.servicedDate,
        serviced_period=_period(m.servicedPeriod),
        created=m.created,
        requestor=ctx.ref(m.requestor),
        request=ctx.ref(m.request),
        outcome=m.outcome,
        disposition=m.disposition,
        insurer=ctx.ref(m.insurer),
        insurance=insurance,
        pre_auth_ref=m.preAuthRef,
        errors=_concepts(e.code for e in m.error or ()),
    )


# --- supply and finance ---------------------------------------------------------------


@_guarded("SupplyRequest")
def supply_request(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.SupplyRequest:
    m = _as_model(resource, "SupplyRequest")
    ctx = _Ctx(m, policy)
    return rec.SupplyRequest(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        category=_concept(m.category),
        priority=m.priority,
        item=_concept(m.itemCodeableConcept),
        item_ref=ctx.ref(m.itemReference),
        quantity=_quantity(m.quantity),
        occurrence=m.occurrenceDateTime,
        occurrence_period=_period(m.occurrencePeriod),
        authored_on=m.authoredOn,
        requester=ctx.ref(m.requester),
        suppliers=ctx.refs(m.supplier),
        reasons=_concepts(m.reasonCode),
        deliver_from=ctx.ref(m.deliverFrom),
        deliver_to=ctx.ref(m.deliverTo),
    )


@_guarded("SupplyDelivery")
def supply_delivery(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.SupplyDelivery:
    m = _as_model(resource, "SupplyDelivery")
    ctx = _Ctx(m, policy)
    supplied = m.suppliedItem
    return rec.SupplyDelivery(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        based_on=ctx.refs(m.basedOn),
        part_of=ctx.refs(m.partOf),
        patient=ctx.person(m.patient),
        type=_concept(m.type),
        quantity=_quantity(supplied.quantity) if supplied else None,
        item=_concept(supplied.itemCodeableConcept) if supplied else None,
        item_ref=ctx.ref(supplied.itemReference) if supplied else None,
        occurrence=m.occurrenceDateTime,
        occurrence_period=_period(m.occurrencePeriod),
        supplier=ctx.ref(m.supplier),
        destination=ctx.ref(m.destination),
        receivers=ctx.refs(m.receiver),
    )


@_guarded("Invoice")
def invoice(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Invoice:
    m = _as_model(resource, "Invoice")
    ctx = _Ctx(m, policy)
    participants = tuple(
        rec.InvoiceParticipant(role=_concept(p.role), actor=ctx.ref(p.actor))
        for p in m.participant or ()
    )
    return rec.Invoice(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        type=_concept(m.type),
        subject=ctx.person(m.subject),
        recipient=ctx.ref(m.recipient),
        date=m.date,
        participants=participants,
        issuer=ctx.ref(m.issuer),
        account=ctx.ref(m.account),
        total_net=_money(m.totalNet),
        total_gross=_money(m.totalGross),
    )


@_guarded("Task")
def task(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> rec.Task:
    m = _as_model(resource, "Task")
    ctx = _Ctx(m, policy)
    return rec.Task(
        reference=_self_ref(m),
        identifiers=ctx.identifiers(m.identifier),
        status=m.status,
        intent=m.intent,
        priority=m.priority,
        code=_concept(m.code),
        business_status=_concept(m.businessStatus),
        status_reason=_concept(m.statusReason),
        focus=ctx.ref(m.focus),
        for_=ctx.person(m.for_fhir),
        encounter=ctx.ref(m.encounter),
        authored_on=m.authoredOn,
        last_modified=m.lastModified,
        execution_period=_period(m.executionPeriod),
        requester=ctx.ref(m.requester),
        owner=ctx.ref(m.owner),
        based_on=ctx.refs(m.basedOn),
        part_of=ctx.refs(m.partOf),
        group_identifier=ctx.identifier(m.groupIdentifier),
        input_types=_concepts(i.type for i in m.input or ()),
        output_types=_concepts(o.type for o in m.output or ()),
    )


# --- dispatch -------------------------------------------------------------------------

_MAPPERS: dict[str, Callable[..., BaseModel]] = {
    "Appointment": appointment,
    "Claim": claim,
    "ClaimResponse": claim_response,
    "Coverage": coverage,
    "CoverageEligibilityRequest": coverage_eligibility_request,
    "CoverageEligibilityResponse": coverage_eligibility_response,
    "Encounter": encounter,
    "Invoice": invoice,
    "Location": location,
    "Organization": organization,
    "Patient": patient_ref,
    "Practitioner": provider,
    "PractitionerRole": provider,
    "Schedule": schedule,
    "ServiceRequest": service_request,
    "Slot": slot,
    "SupplyDelivery": supply_delivery,
    "SupplyRequest": supply_request,
    "Task": task,
}

SUPPORTED_TYPES: frozenset[str] = frozenset(_MAPPERS)


def to_canonical(
    resource: Mapping[str, Any] | Resource, policy: IdentifierPolicy = DEFAULT_POLICY
) -> BaseModel:
    """The canonical record of a FHIR R4 resource (an R4B model or its raw JSON dict),
    keeping the identifiers ``policy`` admits."""
    if isinstance(resource, Mapping):
        kind = resource.get("resourceType")
        if isinstance(kind, str) and kind and kind not in _MAPPERS:
            raise UnsupportedResource(kind)  # before paying for parsing it
        resource = parse(resource)
    kind = _resource_type(resource)
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        raise UnsupportedResource(kind)
    return mapper(resource, policy)
