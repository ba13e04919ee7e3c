"""Which identifiers enter careflow: the allow-list, in one place.

An identifier of a **person** (on a Patient, Practitioner, PractitionerRole, RelatedPerson,
Person or Coverage, in a reference to one of those, or in a reference whose target cannot
be told) is kept only when it is one careflow works with:

- a medical record number: type ``MR`` in HL7 v2 table 0203;
- a payer member id: type ``MB`` in v2-0203 (``Coverage.subscriberId`` is one by definition);
- an id the facility itself assigns: its system is one of the facility's configured
  systems (``CAREFLOW_FACILITY_ID_SYSTEMS``, see :mod:`careflow.settings`).

Anything else about a person (social security, driver's licence, passport, national
citizen numbers, professional register numbers, identifiers with no type and an unknown
system) stops in the mapper. An identifier of a **record** (an order, a claim, an
appointment, an organization, a location: what careflow correlates on) is kept when it has
a system: a bare value cannot be correlated on, and the HL7 examples show what such values
hold (``Encounter_Roel_20130404``: a patient's name). Every identifier needs a value.

Whatever the configuration says, an identifier typed or namespaced as a personal document
number (:data:`REFUSED_TYPES`, :data:`REFUSED_SYSTEMS`) is never kept, on a person or on a
record: a misconfigured system cannot let an SSN in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from careflow.canonical.datatypes import Identifier

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0203_SYSTEMS = frozenset({V2_0203, "http://hl7.org/fhir/v2/0203"})

MEDICAL_RECORD_NUMBER = "MR"
MEMBER_NUMBER = "MB"
ADMITTED_TYPES = frozenset({MEDICAL_RECORD_NUMBER, MEMBER_NUMBER})

# v2-0203 codes of personal document and national numbers (any coding system: a code that
# says "social security number" is refused whoever wrote it).
REFUSED_TYPES = frozenset(
    {
        "SS",  # social security number
        "DL",  # driver's license number
        "PPN",  # passport number
        "NI",  # national unique individual identifier
        "NH",  # national health plan identifier (a person's, e.g. the UK NHS number)
        "CZ",  # citizenship card
        "TAX",  # tax id number
        "BCT",  # birth certificate
        "SB",  # social beneficiary identifier
        "MI",  # military id number
    }
)
SSN_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/us-ssn", "urn:oid:2.16.840.1.113883.4.1"})
REFUSED_SYSTEMS = SSN_SYSTEMS | frozenset(
    {
        "urn:oid:2.16.840.1.113883.2.4.6.3",  # Dutch citizen service number (BSN)
    }
)
REFUSED_SYSTEM_PREFIXES = (
    "http://hl7.org/fhir/sid/passport-",  # passport numbers by country
    "urn:oid:2.16.840.1.113883.4.330.",  # passport numbers by country (OIDs)
    "urn:oid:2.16.840.1.113883.4.3.",  # US driver's licences by state
)

# Resource types whose identifiers name a person.
PERSON_TYPES = frozenset(
    {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person", "Coverage"}
)


def type_codes(identifier: Identifier) -> frozenset[tuple[str | None, str]]:
    """(system, code) of each coding of the identifier's type."""
    if identifier.type is None:
        return frozenset()
    return frozenset((c.system, c.code) for c in identifier.type.codings if c.code is not None)


def refused(identifier: Identifier) -> bool:
    """A personal document or national number: never kept, whatever is configured."""
    system = identifier.system or ""
    if system in REFUSED_SYSTEMS or system.startswith(REFUSED_SYSTEM_PREFIXES):
        return True
    return any(code in REFUSED_TYPES for _, code in type_codes(identifier))


@dataclass(frozen=True)
class IdentifierPolicy:
    """The allow-list for identifiers of people: v2-0203 type codes, and the facility's
    own identifier systems."""

    type_codes: frozenset[str] = ADMITTED_TYPES
    systems: frozenset[str] = frozenset()

    @classmethod
    def with_systems(cls, systems: Iterable[str]) -> IdentifierPolicy:
        return cls(systems=frozenset(s for s in systems if s))

    def admits(self, identifier: Identifier, *, person: bool) -> bool:
        if identifier.value is None or refused(identifier):
            return False
        if not person:
            return identifier.system is not None
        if identifier.system is not None and identifier.system in self.systems:
            return True
        return any(
            system in V2_0203_SYSTEMS and code in self.type_codes
            for system, code in type_codes(identifier)
        )

    def admit(self, identifier: Identifier | None, *, person: bool) -> Identifier | None:
        """The identifier if careflow may hold it, else None."""
        if identifier is None or not self.admits(identifier, person=person):
            return None
        return identifier


DEFAULT_POLICY = IdentifierPolicy()
