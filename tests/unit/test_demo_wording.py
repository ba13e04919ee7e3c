"""What the demo shows a person: words, the facility's own time, and passed deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from careflow.domain.records import Milestone
from careflow.localcloud.demo import Wording, deadline_notes, humanize, local_time

START = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)  # 07:30 in Chicago (CST)
WORDS = Wording(
    milestones={"requisition_created": "Replenishment ordered"},
    outcomes={"AT_RISK": "At risk"},
    deadlines={"clock_expired": "The decision clock ran out"},
    start="case start",
)


def when(at: datetime) -> str:
    return local_time(at, "fac-south")


def milestone(name: str, at: datetime, status: str = "DONE", detail: str = "") -> Milestone:
    return Milestone(instance_id="i-1", name=name, at=at, status=status, detail=detail)


def test_times_are_the_facilitys_own_to_the_minute():
    assert local_time(START, "fac-south") == "Tue 1 Dec 07:30 CST"
    assert local_time(START + timedelta(days=200), "fac-south") == "Sat 19 Jun 08:30 CDT"
    assert local_time(START, "fac-unknown") == "Tue 1 Dec 13:30 UTC"


def test_milestones_and_codes_read_as_words():
    assert WORDS.label("requisition_created") == "Replenishment ordered"
    assert WORDS.label("task_escalated") == "Task escalated"  # the kit's task loop
    assert WORDS.label("sterile_processing_checked") == "Sterile processing checked"
    assert humanize("AT_RISK") == "At risk"


def test_a_delivery_due_after_the_case_start_is_noted():
    due = START + timedelta(days=2, hours=1)
    notes = deadline_notes(
        [
            milestone(
                "requisition_created",
                START - timedelta(days=1),
                detail=f"REQ-1 expected {due.isoformat()}",
            )
        ],
        START,
        WORDS,
        when,
    )
    assert notes == [
        "Replenishment ordered: due Thu 3 Dec 08:30 CST, after the case start (Tue 1 Dec 07:30 CST)"
    ]


def test_escalations_expired_clocks_and_work_after_the_start_are_noted():
    early = START - timedelta(days=2)
    notes = deadline_notes(
        [
            milestone("readiness_started", early),
            milestone("task_escalated", early + timedelta(hours=5), status="ESCALATED"),
            milestone("clock_expired", START + timedelta(minutes=5), status="FAILED"),
            milestone("case_at_risk", START + timedelta(minutes=6), status="FAILED"),
        ],
        START,
        WORDS,
        when,
    )
    assert notes == [
        "SLA passed at Sun 29 Nov 12:30 CST: task escalated",
        "The decision clock ran out at Tue 1 Dec 07:35 CST",
        "Still being worked after the case start (Tue 1 Dec 07:30 CST): 2 step(s) after it, "
        "the last (case at risk) at Tue 1 Dec 07:36 CST",
    ]


def test_a_case_that_met_every_deadline_has_no_note():
    done = [milestone("readiness_started", START - timedelta(days=3))]
    assert deadline_notes(done, START, WORDS, when) == []
