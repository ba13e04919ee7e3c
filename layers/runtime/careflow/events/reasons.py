"""Why an event was refused, as a sentence: the one map from pydantic's error types.

A reason names the field and the rule it broke, never the value it carried (a value may
be PHI: a name, a date of birth). It ends up in the parked record, the parking queue's
message attribute, a log line and the ``careflow parked`` listing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

# A field name may be quoted in a reason only when it looks like a field name: an
# unknown key chosen by a producer could itself carry a value ("Jane Doe": "...").
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# pydantic error type -> "<what is wrong>" (the rule follows after a colon).
_WRONG: Mapping[str, str] = {
    "missing": "is missing",
    "extra_forbidden": "is not a field of this event",
    "model_type": "is not a JSON object",
    "model_attributes_type": "is not a JSON object",
    "dict_type": "is not a JSON object",
    "string_type": "is not a string",
    "string_too_short": "is too short",
    "string_too_long": "is too long",
    "string_pattern_mismatch": "does not have the expected form",
    "literal_error": "is not one of the allowed values",
    "enum": "is not one of the allowed values",
    "datetime_parsing": "is not an ISO 8601 date-time",
    "datetime_from_date_parsing": "is not an ISO 8601 date-time",
    "datetime_type": "is not an ISO 8601 date-time",
    "naive_datetime": "has no UTC offset",
    "list_type": "is not a JSON array",
    "tuple_type": "is not a JSON array",
    "too_short": "has too few items",
    "too_long": "has too many items",
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "bool_parsing": "is not true or false",
    "bool_type": "is not true or false",
}


def _location(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _SAFE_NAME.match(str(part)):
            parts.append(str(part))
        else:
            parts.append("<an unknown field>")
    return ".".join(parts).replace(".[", "[")


def _field_description(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str | None:
    """The schema's own description of the field at ``loc`` (nested models followed)."""
    current: Any = model
    description = None
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return None
        description = fields[part].description
        current = fields[part].annotation
    return description


def _rule(err: Mapping[str, Any], subject: str, description: str | None) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{subject} takes only the fields of its schema (unknown fields are refused)"
    if kind == "literal_error" and isinstance(ctx.get("expected"), str):
        return f"{subject} allows {ctx['expected']}"  # the schema's values, not the event's
    if kind in ("string_too_short", "too_short") and "min_length" in ctx:
        return f"{subject} requires at least {ctx['min_length']}"
    if kind in ("string_too_long", "too_long") and "max_length" in ctx:
        return f"{subject} allows at most {ctx['max_length']}"
    if kind == "naive_datetime":
        return f"{subject} requires a time with its UTC offset"
    if description:
        return f"{subject} requires {description}"
    return f"{subject} requires it"


def describe(error: ValidationError, *, prefix: str, subject: str, model: Any = None) -> str:
    """Every error of ``error`` as a sentence, ``; ``-separated, in pydantic's order.

    ``subject`` names whose rule it is (``Appointment.Booked``, ``the envelope``);
    ``model`` gives field descriptions (``Field(description=...)``) to say what is needed.
    """
    sentences = []
    for err in error.errors(include_input=False, include_url=False):
        loc = tuple(err["loc"])
        wrong = _WRONG.get(err["type"], "is not valid")
        described = _field_description(model, loc) if isinstance(model, type) else None
        sentences.append(f"{_location(prefix, loc)} {wrong}: {_rule(err, subject, described)}")
    return "; ".join(sentences)
