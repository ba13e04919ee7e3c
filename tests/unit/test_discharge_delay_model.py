"""The discharge delay model: its examples read discharge records as the workflow writes
them, its generator is seeded, its baseline is today's rules at the A16."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from careflow.workflows.discharge_coordination import model

AT = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # a Saturday


def record(outcome: str, delays: list[tuple[str, int]], *, scored: dict | None = None) -> dict:
    audit = [
        {"action": "delay_recorded", "reason": "x", "detail": {"dependency": d, "minutes": m}}
        for d, m in delays
    ]
    if scored is not None:
        audit.append(
            {
                "action": "model.predicted",
                "detail": {"model_id": "discharge_delay", "features": scored},
            }
        )
    return {
        "workflow": "discharge-coordination",
        "facility_id": "fac-north",
        "instance": {"instance_id": "dc-9", "outcome": outcome},
        "milestones": [
            {
                "name": "discharge_pending",
                "at": AT.isoformat(),
                "detail": "encounter V9 disposition 03 expected 2026-11-28T17:00:00+00:00",
            },
            {"name": "transport_arranged", "at": AT.isoformat()},
            {"name": "post_acute_authorization_requested", "at": AT.isoformat()},
            {"name": "billing_not_ready", "at": AT.isoformat()},
        ],
        "tasks": [],
        "audit": audit,
    }


def test_examples_read_the_workflows_records_and_label_by_the_longest_delay():
    found = model.examples(
        [
            record("DISCHARGED", [("transport", 30), ("post_acute_authorization", 90)]),
            record("DISCHARGED", []),
            record("NOT_DISCHARGED", [("transport", 30)]),  # no departure: no answer
            {**record("DISCHARGED", []), "workflow": "invoice-exceptions"},
        ]
    )
    assert [label for _, label in found] == ["post_acute_authorization", "on_time"]
    features = found[0][0]
    assert features["disposition"] == "03"
    assert features["hours_to_expected"] == 3.0
    assert features["expected_hour"] == 11  # 17:00 UTC in Chicago (fac-north)
    assert features["weekend"] is True
    assert (features["needs_transport"], features["needs_post_acute_authorization"]) == (
        True,
        True,
    )
    assert (features["needs_pharmacy"], features["needs_dme"], features["needs_billing"]) == (
        False,
        False,
        True,
    )


def test_examples_prefer_the_features_audited_at_the_a16():
    scored = {"disposition": "06", "hours_to_expected": 12.0}
    [(features, label)] = model.examples([record("DISCHARGED", [("dme", 40)], scored=scored)])
    assert (features, label) == (scored, "dme")


def test_the_generator_is_seeded_and_writes_what_examples_read():
    one = model.generate(random.Random("s"), 300)
    assert one == model.generate(random.Random("s"), 300)
    assert one != model.generate(random.Random("t"), 300)
    found = model.examples(one)
    discharged = [r for r in one if r["instance"]["outcome"] == "DISCHARGED"]
    assert len(found) == len(discharged) < 300
    assert {label for _, label in found} <= set(model.CLASSES)
    assert len({label for _, label in found}) >= 4
    assert all("MRN" not in str(f) and "enc-" not in str(f) for f, _ in found)


def test_the_baseline_is_on_time_every_time():
    scores = model.baseline({"disposition": "03"})
    assert max(scores, key=lambda c: scores[c]) == "on_time"
    assert set(scores) == set(model.CLASSES)
