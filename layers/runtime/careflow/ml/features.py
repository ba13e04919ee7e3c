"""What a model may see: declared features only, no identifiers, text scrubbed.

A model declares its features (:class:`Feature`); :func:`checked` refuses an input with a
feature it did not declare, a feature whose name says it is an identifier (a name, an
address, an SSN, a phone number, a record number), a category value that looks like one,
and scrubs free text of the identifiers a clinical note carries (SSNs, phone numbers, email
addresses, long digit runs such as record numbers, and "Name: ..." headers) before any model
sees it. The input hash is taken after the check, so the audit names exactly what the model saw.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["number", "flag", "category", "text"]

# Feature names a model may never declare: identifiers it does not need to decide anything.
FORBIDDEN = frozenset(
    {
        "name",
        "patient_name",
        "family",
        "given",
        "address",
        "street",
        "line",
        "city",
        "postal_code",
        "zip",
        "ssn",
        "social_security_number",
        "phone",
        "telecom",
        "email",
        "birth_date",
        "birthdate",
        "dob",
        "mrn",
        "medical_record_number",
        "patient_id",
        "member_id",
        "subscriber_id",
        "account_number",
    }
)
_FORBIDDEN_PARTS = ("name", "address", "ssn", "phone", "email", "birth", "mrn", "member_id")

_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_PHONE = re.compile(r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_DIGITS = re.compile(r"\b\d{6,}\b")  # record, account and member numbers
_LABELLED = re.compile(
    r"\b(?:patient(?: name)?|name|mrn|dob|date of birth|address|ssn|member id)\s*[:#]\s*[^\n;]*",
    re.IGNORECASE,
)
_CATEGORY = re.compile(r"^[A-Za-z0-9_.:/ +-]{0,64}$")


class FeatureRefused(ValueError):
    """The input had a feature the model does not declare, or one it may not see. The
    message names the feature, never its value."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    description: str

    def __post_init__(self) -> None:
        if forbidden(self.name):
            raise FeatureRefused(f"feature {self.name} is an identifier: no model may declare it")


def forbidden(name: str) -> bool:
    low = name.lower()
    return low in FORBIDDEN or any(part in low for part in _FORBIDDEN_PARTS)


def scrub(text: str) -> str:
    """Free text with the identifiers a note carries replaced by placeholders."""
    text = _LABELLED.sub(" [id] ", text)
    text = _EMAIL.sub(" [email] ", text)
    text = _SSN.sub(" [ssn] ", text)
    text = _PHONE.sub(" [phone] ", text)
    return _DIGITS.sub(" [number] ", text)


def checked(features: Sequence[Feature], values: Mapping[str, Any]) -> dict[str, Any]:
    """The input as the model may see it, or :class:`FeatureRefused`."""
    declared = {f.name: f for f in features}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise FeatureRefused(f"undeclared feature(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, feature in declared.items():
        value = values.get(name)
        if value is None:
            out[name] = None
        elif feature.kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise FeatureRefused(f"feature {name} is not a finite number")
            out[name] = number
        elif feature.kind == "flag":
            out[name] = bool(value)
        elif feature.kind == "category":
            text = str(value)
            if not _CATEGORY.match(text) or _SSN.search(text) or _DIGITS.search(text):
                raise FeatureRefused(f"feature {name} is not a code")
            out[name] = text
        else:
            out[name] = scrub(str(value))
    return out


def input_hash(values: Mapping[str, Any]) -> str:
    """sha256 of the checked input (canonical JSON), 32 hex characters."""
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
