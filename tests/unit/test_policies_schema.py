"""The file format: the committed JSON Schemas match the models, and bad files are refused
with the field and the rule named."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from careflow.policies import InvalidPolicy, parse_document
from careflow.policies.schema import render, schemas
from careflow.policies.store import FilePolicyStore, default_policy_dir

SCHEMA_DIR = default_policy_dir() / "schema"
ENTERPRISE = json.loads(
    (default_policy_dir() / "enterprise" / "prior-authorization.json").read_text("utf-8")
)


def validator(filename: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / filename).read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def test_the_committed_schemas_are_what_the_models_generate():
    for filename, schema in schemas().items():
        committed = (SCHEMA_DIR / filename).read_text("utf-8")
        assert committed == render(schema), (
            f"{filename} is stale: run python -m careflow.policies.schema"
        )


def test_every_packaged_file_passes_its_schema_and_the_models():
    files = list(FilePolicyStore().files())
    assert {f.facility_id for f in files} == {None, "fac-south"}
    for f in files:
        data = json.loads(f.path.read_text("utf-8"))
        name = "enterprise-policy" if f.facility_id is None else "facility-overlay"
        validator(f"{name}.schema.json").validate(data)
        parse_document(data, str(f.path))


def broken(path: list[Any], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(ENTERPRISE)
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


STRUCTURE = [
    # (document, field named, words of the rule) -- the schema refuses these too
    (broken(["version"], "v2"), "version", "pattern"),
    (broken(["version"], delete=True), "version", "required"),
    (broken(["colour"], "red"), "colour", "unknown field"),
    (
        broken(["tables", "pend_clock", "hit_policy"], "any"),
        "tables.pend_clock.hit_policy",
        "'first'",
    ),
    (
        broken(["tables", "pend_clock", "inputs", "priority"], "date"),
        "tables.pend_clock.inputs.priority",
        "'string'",
    ),
    (
        broken(["tables", "pend_clock", "rows", 1, "id"], delete=True),
        "tables.pend_clock.rows[1].id",
        "required",
    ),
    (
        broken(["values", "appeal_task_seconds", "unit"], "fortnights"),
        "values.appeal_task_seconds.unit",
        "'seconds'",
    ),
    (broken(["effective_from"], "2026-01-01T00:00:00"), "effective_from", "timezone"),
]
RULES = [
    # what only the models check (cross-references and types of values)
    (
        broken(["tables", "pend_clock", "rows", 0, "when"], {"prio": "expedited"}),
        "tables.pend_clock.rows[0].when.prio",
        "not an input of the table (priority)",
    ),
    (
        broken(["tables", "pend_clock", "rows", 0, "when"], {"priority": {"gte": 1}}),
        "tables.pend_clock.rows[0].when.priority",
        "a range applies to numbers",
    ),
    (
        broken(
            ["tables", "queue_routing", "rows", 0, "when"],
            {"days_until_service": {"gte": 5, "lt": 3}},
        ),
        "tables.queue_routing.rows[0].when.days_until_service",
        "empty range",
    ),
    (
        broken(["tables", "queue_routing", "rows", 0, "when"], {"days_until_service": [1, 2]}),
        "tables.queue_routing.rows[0].when.days_until_service",
        'use {"in": [...]}',
    ),
    (
        broken(["tables", "pend_clock", "rows", 0, "then", "decision_clock_seconds"], "72h"),
        "tables.pend_clock.rows[0].then.decision_clock_seconds",
        "must be an integer",
    ),
    (
        broken(["tables", "pend_clock", "rows", 0, "then"], {"decision_clock_seconds": 1}),
        "tables.pend_clock.rows[0].then",
        "missing output 'escalate_after_seconds'",
    ),
    (
        broken(["tables", "pend_clock", "rows", 1, "id"], "expedited"),
        "tables.pend_clock.rows[1].id",
        "duplicate row id",
    ),
    (
        broken(["tables", "pend_clock", "rows", 1, "id"], "default"),
        "tables.pend_clock.rows[1].id",
        "reserved",
    ),
    (
        broken(["values", "appeal_task_seconds", "value"], 1.5),
        "values.appeal_task_seconds.value",
        "whole number",
    ),
    (
        broken(["values", "appeal_chain", "value"], [1, 2]),
        "values.appeal_chain.value",
        "list of strings",
    ),
]


@pytest.mark.parametrize(("doc", "field", "rule"), STRUCTURE + RULES)
def test_a_bad_document_is_refused_naming_field_and_rule(doc, field, rule):
    with pytest.raises(InvalidPolicy) as caught:
        parse_document(doc, "bad.json")
    problems = caught.value.problems
    assert any(p.field == field and rule in p.rule for p in problems), [str(p) for p in problems]
    assert all(str(p).startswith("bad.json: ") for p in problems)


@pytest.mark.parametrize(("doc", "field", "rule"), STRUCTURE)
def test_the_json_schema_refuses_the_structural_problems_too(doc, field, rule):
    errors = list(validator("enterprise-policy.schema.json").iter_errors(doc))
    assert errors


def test_a_document_of_no_known_kind_is_refused_on_kind():
    with pytest.raises(
        InvalidPolicy, match="kind: must be one of 'enterprise', 'facility-overlay'"
    ):
        parse_document({"name": "x"}, "x.json")
    with pytest.raises(InvalidPolicy, match="must be a JSON object"):
        parse_document([1], "x.json")


def test_schema_files_sit_beside_the_policies_and_are_not_policies():
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == [
        "enterprise-policy.schema.json",
        "facility-overlay.schema.json",
    ]
