"""Building blocks of the canonical records: codes, identifiers, references, periods, amounts.

They keep what the source system said, as it said it: codes and identifiers keep their
system (which may be absent in the source: local codes, identifiers of a record known only
to its system), references keep their exact string (``Patient/example``, ``#contained``,
absolute URLs), times keep their precision and their UTC offset.

Which identifiers may be held at all is decided in one place,
:mod:`careflow.canonical.identifiers`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "Coding",
    "Concept",
    "Identifier",
    "Model",
    "Money",
    "Period",
    "Quantity",
    "Ref",
    "When",
]


class Model(BaseModel):
    """Every canonical record: immutable, and no field it does not declare."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


_PARTIAL = re.compile(r"^\d{4}(-\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_when(value: Any) -> Any:
    """A FHIR date/dateTime/instant at the precision the source gave.

    ``datetime`` (timezone kept) when a time is given, ``date`` for a full date, and the
    string itself for a partial date (``2013`` or ``2013-05``), which no Python type holds.
    """
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        if _PARTIAL.match(value):
            return value
        if _DATE.match(value):
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    raise ValueError("expected a date, a datetime or a partial date string")


When = Annotated[datetime | date | str, BeforeValidator(_parse_when)]


class Coding(Model):
    """One code. FHIR allows a coding without a system (local codes); so does this."""

    system: str | None = None
    code: str | None = None
    display: str | None = None


class Concept(Model):
    """A CodeableConcept: its codings and its text."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None

    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codings if c.code is not None)

    def has(self, system: str, code: str) -> bool:
        return any(c.system == system and c.code == code for c in self.codings)


class Identifier(Model):
    """An identifier as the source gave it: system (when given), value, use and type.

    Built by the mappers only through :func:`careflow.canonical.identifiers.admit`, the
    allow-list: an SSN, a driver's licence or a passport number never becomes one.
    """

    system: str | None = None
    value: str | None = None
    use: str | None = None
    type: Concept | None = None


class Ref(Model):
    """A reference: the string exactly as in the source, plus type, logical identifier, display.

    ``display`` is kept by the mappers only when the target is known and is not a person
    (an organization, a place): elsewhere it is usually someone's name.
    """

    reference: str | None = None
    type: str | None = None
    identifier: Identifier | None = None
    display: str | None = None

    @property
    def target_type(self) -> str | None:
        """The resource type the reference points to, when it can be told."""
        if self.type:
            return self.type
        if self.reference and not self.reference.startswith("#"):
            parts = self.reference.split("/")
            if "_history" in parts:
                parts = parts[: parts.index("_history")]
            if len(parts) >= 2:
                return parts[-2]
        return None


class Period(Model):
    start: When | None = None
    end: When | None = None


class Money(Model):
    value: Decimal | None = None
    currency: str | None = None


class Quantity(Model):
    value: Decimal | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None
