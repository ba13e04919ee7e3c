"""Facility overlays: what they may change, and exactly how a table's rows are merged."""

from __future__ import annotations

from typing import Any

import pytest

from careflow.policies import InvalidPolicy, parse_document, resolve
from careflow.policies.snapshot import build_snapshot
from careflow.policies.store import FilePolicyStore

BASE: dict[str, Any] = {
    "kind": "enterprise",
    "name": "routing",
    "version": "1.0",
    "values": {
        "task_seconds": {"value": 14400, "unit": "seconds"},
        "ratio": {"value": 0.25},
        "queue": {"value": "general"},
    },
    "tables": {
        "route": {
            "inputs": {"line": "string"},
            "outputs": {"queue": "string"},
            "rows": [
                {"id": "a", "when": {"line": "a"}, "then": {"queue": "qa"}},
                {"id": "b", "when": {"line": "b"}, "then": {"queue": "qb"}},
                {"id": "c", "when": {"line": "c"}, "then": {"queue": "qc"}},
            ],
            "default": {"queue": "general"},
        }
    },
}


def overlay(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "facility-overlay",
        "name": "routing",
        "facility_id": "fac-x",
        "version": "7",
        **kw,
    }


def merged(data: dict[str, Any]):
    base = parse_document(BASE, "base.json")
    return build_snapshot(
        base, parse_document(data, "overlay.json"), "fac-x", source="overlay.json"
    )


def test_a_value_override_replaces_the_value_and_an_integer_may_stand_for_a_number():
    s = merged(overlay(values={"task_seconds": {"value": 7200}, "ratio": {"value": 1}}))
    assert s.values == {"task_seconds": 7200, "ratio": 1, "queue": "general"}
    assert s.version == "routing@1.0+fac-x@7"


def test_rows_with_a_known_id_replace_in_place_new_rows_go_first_removed_rows_go():
    s = merged(
        overlay(
            tables={
                "route": {
                    "rows": [
                        {"id": "z", "when": {"line": "z"}, "then": {"queue": "qz"}},
                        {"id": "b", "when": {"line": "b"}, "then": {"queue": "qb-local"}},
                        {"id": "y", "when": {"line": "*"}, "then": {"queue": "qy"}},
                    ],
                    "remove_rows": ["c"],
                    "default": {"queue": "local"},
                }
            }
        )
    )
    table = s.tables["route"]
    assert [(r.id, r.then["queue"]) for r in table.rows] == [
        ("z", "qz"),
        ("y", "qy"),
        ("a", "qa"),
        ("b", "qb-local"),
    ]
    assert table.default == {"queue": "local"}
    assert table.inputs == {"line": "string"}  # the enterprise's, always


def test_without_an_overlay_the_facility_gets_the_enterprise_policy():
    s = resolve("surgical-readiness", "fac-north", store=FilePolicyStore())
    assert s.version == "surgical-readiness@2026.12.1"
    assert s.facility_id == "fac-north"
    assert s.value("coordinator_task_seconds") == 14400


def test_the_packaged_fac_south_overlays_change_what_they_say():
    files = FilePolicyStore()
    south = resolve("surgical-readiness", "fac-south", store=files)
    assert south.version == "surgical-readiness@2026.12.1+fac-south@3"
    assert south.value("coordinator_task_seconds") == 2 * 3600
    auth = resolve("prior-authorization", "fac-south", store=files).table("queue_routing")
    assert [r.id for r in auth.definition.rows] == [
        "cardiology",
        "imminent",
        "imaging",
        "infusion",
        "surgery",
    ]
    infusion = auth.decide({"service_line": "infusion", "days_until_service": 10})
    assert (infusion.row_id, infusion.outputs) == (
        "infusion",
        {"queue": "south_infusion_center_auth"},
    )
    # an added row goes first, so it wins even over "imminent"
    assert (
        auth.decide({"service_line": "cardiology", "days_until_service": 1}).row_id == "cardiology"
    )


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"values": {"nope": {"value": 1}}}, "values.nope", "has no value 'nope'"),
        (
            {"values": {"queue": {"value": 3}}},
            "values.queue.value",
            "must keep the enterprise type string",
        ),
        ({"values": {"ratio": {"value": "x"}}}, "values.ratio.value", "type number"),
        ({"values": {"task_seconds": {"value": 1.5}}}, "values.task_seconds.value", "whole number"),
        ({"values": {"task_seconds": {"value": -1}}}, "values.task_seconds.value", "whole number"),
        ({"tables": {"nope": {"rows": []}}}, "tables.nope", "has no table 'nope'"),
        (
            {
                "tables": {
                    "route": {"rows": [{"id": "n", "when": {"lane": "x"}, "then": {"queue": "q"}}]}
                }
            },
            "tables.route.rows[0].when.lane",
            "not an input of the table",
        ),
        (
            {"tables": {"route": {"rows": [{"id": "n", "then": {"queue": 1}}]}}},
            "tables.route.rows[0].then.queue",
            "must be a string",
        ),
        (
            {"tables": {"route": {"remove_rows": ["zz"]}}},
            "tables.route.remove_rows",
            "has no row 'zz'",
        ),
        (
            {"tables": {"route": {"default": {}}}},
            "tables.route.default",
            "missing output 'queue'",
        ),
    ],
)
def test_an_overlay_that_does_not_fit_is_refused_naming_its_field(change, field, rule):
    with pytest.raises(InvalidPolicy) as caught:
        merged(overlay(**change))
    problems = caught.value.problems
    assert any(
        p.source == "overlay.json" and p.field == field and rule in p.rule for p in problems
    ), problems


def test_an_overlay_may_not_replace_and_remove_the_same_row():
    with pytest.raises(InvalidPolicy, match="both replaced and removed"):
        parse_document(
            overlay(
                tables={
                    "route": {
                        "rows": [{"id": "a", "then": {"queue": "q"}}],
                        "remove_rows": ["a"],
                    }
                }
            ),
            "overlay.json",
        )
