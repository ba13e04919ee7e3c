"""Policy documents: an enterprise policy per name, facility overlays on top of it.

Two layers of checks. Pydantic checks the structure (the same rules the JSON Schemas under
``policies/schema/`` state); :func:`parse_document` then checks what a schema cannot:
that rows only use declared inputs, that conditions and outputs have the declared types,
that row ids are unique. Every problem names its file, its field and the rule.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from careflow.policies.errors import InvalidPolicy, Problem
from careflow.policies.versions import FACILITY_PATTERN, NAME_PATTERN, VERSION_PATTERN

KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
ROW_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
DEFAULT_ROW_ID = "default"  # the row id a decision reports when the table's default applied
WILDCARD = "*"

Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=64)]
RowId = Annotated[str, StringConstraints(pattern=ROW_ID_PATTERN, max_length=64)]
InputType = Literal["string", "integer", "number", "boolean"]
OutputType = Literal["string", "integer", "number", "boolean", "string_list"]

_SCALAR_SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "boolean"},
]
_VALUE_SCHEMA = {"anyOf": [*_SCALAR_SCHEMAS, {"type": "array", "items": {"type": "string"}}]}
_CONDITION_SCHEMA = {
    "description": (
        'A value (equality), "*" (any), {"in": [values]}, or a numeric range '
        'with one or two of "gte", "gt", "lte", "lt".'
    ),
    "anyOf": [
        *_SCALAR_SCHEMAS,
        {
            "type": "object",
            "properties": {
                "in": {"type": "array", "minItems": 1, "items": {"anyOf": _SCALAR_SCHEMAS}}
            },
            "required": ["in"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {k: {"type": "number"} for k in ("gte", "gt", "lte", "lt")},
            "minProperties": 1,
            "additionalProperties": False,
        },
    ],
}
Value = Annotated[Any, WithJsonSchema(_VALUE_SCHEMA)]
Condition = Annotated[Any, WithJsonSchema(_CONDITION_SCHEMA)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyValue(_Model):
    """A plain typed value (an SLA in seconds, a queue, a list of decisions)."""

    value: Value
    unit: Literal["seconds", "days", "hours", "percent", "count", "usd"] | None = None
    description: str = ""


class Row(_Model):
    id: RowId
    when: dict[Key, Condition] = Field(
        default_factory=dict, description="input -> condition; an input left out matches any"
    )
    then: dict[Key, Value]
    note: str = ""


class DecisionTable(_Model):
    """Rows checked top to bottom; the first whose every condition holds decides (``first``)."""

    description: str = ""
    inputs: dict[Key, InputType] = Field(min_length=1)
    outputs: dict[Key, OutputType] = Field(min_length=1)
    hit_policy: Literal["first"] = "first"
    rows: tuple[Row, ...] = ()
    default: dict[Key, Value] | None = Field(
        default=None, description="the outputs when no row matches; none: no match is an error"
    )

    def decide(self, inputs: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The id of the row that decided (``"default"`` for the default) and its outputs."""
        from careflow.policies.errors import BadDecisionInput, NoMatchingRow

        unknown = sorted(set(inputs) - set(self.inputs))
        missing = sorted(set(self.inputs) - set(inputs))
        if unknown or missing:
            parts = [f"unknown input {', '.join(unknown)}"] if unknown else []
            parts += [f"missing input {', '.join(missing)}"] if missing else []
            raise BadDecisionInput("; ".join(parts) + f" (inputs: {', '.join(self.inputs)})")
        for name, kind in self.inputs.items():
            if not conforms(inputs[name], kind):
                raise BadDecisionInput(f"input {name} must be {_a(kind)}, got {inputs[name]!r}")
        for row in self.rows:
            if all(matches(cond, inputs[name]) for name, cond in row.when.items()):
                return row.id, _copy(row.then)
        if self.default is None:
            raise NoMatchingRow(f"no row matches {dict(inputs)!r} and the table has no default")
        return DEFAULT_ROW_ID, _copy(self.default)


def _copy(outputs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in outputs.items()}


class EnterprisePolicy(_Model):
    kind: Literal["enterprise"]
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=64)]
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
    effective_from: AwareDatetime | None = Field(
        default=None, description="applies to instances starting at or after this time"
    )
    description: str = ""
    values: dict[Key, PolicyValue] = Field(default_factory=dict)
    tables: dict[Key, DecisionTable] = Field(default_factory=dict)

    @property
    def facility_id(self) -> None:
        return None


class ValueOverride(_Model):
    value: Value
    description: str = Field(default="", description="why this facility differs")


class TableOverride(_Model):
    """Rows whose id is in the enterprise table replace that row where it stands; the
    others go before the enterprise rows, in this order. ``remove_rows`` drops rows by id;
    ``default`` replaces the default."""

    rows: tuple[Row, ...] = ()
    remove_rows: tuple[RowId, ...] = ()
    default: dict[Key, Value] | None = None


class FacilityOverlay(_Model):
    kind: Literal["facility-overlay"]
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=64)]
    facility_id: Annotated[str, StringConstraints(pattern=FACILITY_PATTERN)]
    version: Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
    effective_from: AwareDatetime | None = None
    description: str = ""
    values: dict[Key, ValueOverride] = Field(default_factory=dict)
    tables: dict[Key, TableOverride] = Field(default_factory=dict)


Document = EnterprisePolicy | FacilityOverlay
KINDS: dict[str, type[EnterprisePolicy] | type[FacilityOverlay]] = {
    "enterprise": EnterprisePolicy,
    "facility-overlay": FacilityOverlay,
}


# -- types and conditions -------------------------------------------------------------------
def value_type(value: Any) -> str | None:
    """The policy type of a JSON value, or None when policies do not allow it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "string_list"
    return None


def conforms(value: Any, declared: str) -> bool:
    actual = value_type(value)
    return actual == declared or (declared == "number" and actual == "integer")


def _a(kind: str) -> str:
    return {"integer": "an integer", "string_list": "a list of strings"}.get(kind, f"a {kind}")


def _is_number(value: Any) -> bool:
    return value_type(value) in ("integer", "number")


_RANGE_KEYS = {"gte", "gt", "lte", "lt"}


def matches(condition: Any, value: Any) -> bool:
    if condition == WILDCARD:
        return True
    if isinstance(condition, dict):
        if "in" in condition:
            return any(_equal(value, c) for c in condition["in"])
        checks = {
            "gte": lambda bound: value >= bound,
            "gt": lambda bound: value > bound,
            "lte": lambda bound: value <= bound,
            "lt": lambda bound: value < bound,
        }
        return all(checks[k](bound) for k, bound in condition.items())
    return _equal(value, condition)


def _equal(a: Any, b: Any) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def condition_problem(condition: Any, kind: str) -> str | None:
    """Why ``condition`` cannot apply to an input of type ``kind``, or None."""
    if condition == WILDCARD:
        return None
    if isinstance(condition, list):
        return 'a list is not a condition: use {"in": [...]}'
    if isinstance(condition, dict):
        keys = set(condition)
        if keys == {"in"}:
            options = condition["in"]
            if not isinstance(options, list) or not options:
                return '"in" takes a non-empty list'
            bad = [o for o in options if not conforms(o, kind)]
            return f'"in" values must each be {_a(kind)}, got {bad[0]!r}' if bad else None
        if keys and keys <= _RANGE_KEYS:
            if kind not in ("integer", "number"):
                return f"a range applies to numbers, and this input is {_a(kind)}"
            if not all(_is_number(b) for b in condition.values()):
                return "range bounds must be numbers"
            if {"gte", "gt"} <= keys or {"lte", "lt"} <= keys:
                return "a range takes at most one lower bound (gte/gt) and one upper (lte/lt)"
            lower = condition.get("gte", condition.get("gt"))
            upper = condition.get("lte", condition.get("lt"))
            closed = {"gte", "lte"} <= keys
            if (
                lower is not None
                and upper is not None
                and (lower > upper or (lower == upper and not closed))
            ):
                return f"empty range: nothing is between {lower} and {upper}"
            return None
        return 'a condition object is {"in": [...]} or a range of gte/gt/lte/lt'
    if not conforms(condition, kind):
        return f"must be {_a(kind)} (or a condition), got {condition!r}"
    return None


# -- checks a schema cannot express ----------------------------------------------------------
def row_problems(
    row: Row, inputs: Mapping[str, str], outputs: Mapping[str, str], where: str
) -> list[tuple[str, str]]:
    """(field, rule) for each way ``row`` does not fit a table with these inputs/outputs."""
    found: list[tuple[str, str]] = []
    if row.id == DEFAULT_ROW_ID:
        found.append((f"{where}.id", f"{DEFAULT_ROW_ID!r} is reserved for the table's default"))
    for name, cond in row.when.items():
        if name not in inputs:
            found.append((f"{where}.when.{name}", f"not an input of the table ({_list(inputs)})"))
            continue
        problem = condition_problem(cond, inputs[name])
        if problem:
            found.append((f"{where}.when.{name}", problem))
    found.extend(outputs_problems(row.then, outputs, f"{where}.then"))
    return found


def outputs_problems(
    then: Mapping[str, Any], outputs: Mapping[str, str], where: str
) -> list[tuple[str, str]]:
    found = [
        (f"{where}.{name}", f"not an output of the table ({_list(outputs)})")
        for name in then
        if name not in outputs
    ]
    found += [
        (where, f"missing output {name!r}: every row and the default set every output")
        for name in outputs
        if name not in then
    ]
    found += [
        (f"{where}.{name}", f"must be {_a(outputs[name])}, got {value!r}")
        for name, value in then.items()
        if name in outputs and not conforms(value, outputs[name])
    ]
    return found


def _list(names: Mapping[str, str]) -> str:
    return ", ".join(names) or "none"


def table_problems(table: DecisionTable, where: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, row in enumerate(table.rows):
        if row.id in seen:
            found.append((f"{where}.rows[{i}].id", f"duplicate row id {row.id!r}"))
        seen.add(row.id)
        found.extend(row_problems(row, table.inputs, table.outputs, f"{where}.rows[{i}]"))
    if table.default is not None:
        found.extend(outputs_problems(table.default, table.outputs, f"{where}.default"))
    if not table.rows and table.default is None:
        found.append((where, "a table needs rows or a default"))
    return found


def value_problems(name: str, value: Any, unit: str | None, where: str) -> list[tuple[str, str]]:
    if value_type(value) is None:
        return [(where, "must be a string, a number, a boolean or a list of strings")]
    if unit in ("seconds", "days", "hours", "count") and (
        value_type(value) != "integer" or value < 0
    ):
        return [(where, f"{unit} must be a whole number, zero or more, got {value!r}")]
    return []


# Tables whose shape the runtime relies on, whatever policy holds them.
RESERVED_TABLES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    # who may work a human task's queue, and who supervises it (careflow.domain.tasks)
    "queue_roles": ({"queue": "string"}, {"work": "string_list", "supervise": "string_list"}),
}


def reserved_table_problems(name: str, table: DecisionTable, where: str) -> list[tuple[str, str]]:
    if name not in RESERVED_TABLES:
        return []
    inputs, outputs = RESERVED_TABLES[name]
    found = []
    if dict(table.inputs) != inputs:
        found.append((f"{where}.inputs", f"table {name} takes exactly {inputs}"))
    if dict(table.outputs) != outputs:
        found.append((f"{where}.outputs", f"table {name} gives exactly {outputs}"))
    return found


def document_problems(doc: Document) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(doc, EnterprisePolicy):
        for name, v in doc.values.items():
            found.extend(value_problems(name, v.value, v.unit, f"values.{name}.value"))
        for name, table in doc.tables.items():
            found.extend(table_problems(table, f"tables.{name}"))
            found.extend(reserved_table_problems(name, table, f"tables.{name}"))
        return found
    for name, o in doc.values.items():
        found.extend(value_problems(name, o.value, None, f"values.{name}.value"))
    for name, t in doc.tables.items():
        ids = [r.id for r in t.rows]
        for i, row_id in enumerate(ids):
            if row_id in ids[:i]:
                found.append((f"tables.{name}.rows[{i}].id", f"duplicate row id {row_id!r}"))
        for row_id in set(ids) & set(t.remove_rows):
            found.append(
                (f"tables.{name}.remove_rows", f"row {row_id!r} is both replaced and removed")
            )
    return found


# -- parsing ----------------------------------------------------------------------------------
def field_path(loc: Sequence[int | str]) -> str:
    """``("tables", "x", "rows", 0, "then")`` -> ``tables.x.rows[0].then``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (key)"
        else:
            out += f".{part}" if out else str(part)
    return out


def _rule(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (not in the format)"
    if error["type"] == "missing":
        return "required field is missing"
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def parse_document(data: Any, source: str) -> Document:
    """A validated document from decoded JSON; raises :class:`InvalidPolicy` naming each
    problem's field and rule."""
    if not isinstance(data, dict):
        raise InvalidPolicy([Problem(source, "", "the document must be a JSON object")])
    kind = data.get("kind")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        rule = f"must be one of {', '.join(repr(k) for k in KINDS)}"
        got = " (missing)" if kind is None else f", got {kind!r}"
        raise InvalidPolicy([Problem(source, "kind", rule + got)])
    try:
        doc: Document = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidPolicy(
            [Problem(source, field_path(e["loc"]), _rule(e)) for e in exc.errors()]
        ) from None
    problems = [Problem(source, f, r) for f, r in document_problems(doc)]
    if problems:
        raise InvalidPolicy(problems)
    return doc


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def document_hash(doc: Document) -> str:
    """Of everything in the document; two publications of one version must agree on it."""
    return content_hash(doc.model_dump(mode="json"))


def effective_at(doc: Document, at: datetime) -> bool:
    return doc.effective_from is None or doc.effective_from <= at
