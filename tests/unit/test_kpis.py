"""The workflows' KPIs, hand-computed on a seeded in-memory store (exact numbers)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from careflow import kpis
from careflow.domain.records import HumanTask, Instance, InstanceStatus, Milestone, TaskStatus
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
SINCE = NOW - 7 * D
SCR, PA = "surgical-case-readiness", "prior-authorization"


def _instance(
    store: InMemoryStateStore,
    iid: str,
    workflow: str,
    started: datetime,
    updated: datetime,
    status: InstanceStatus,
    facility: str = "fac-north",
) -> None:
    store.instances[iid] = Instance(
        instance_id=iid,
        workflow_id=workflow,
        subject_type="case",
        subject_id=f"s-{iid}",
        facility_id=facility,
        status=status,
        started_at=started,
        updated_at=updated,
        correlation_id=iid,
        execution_name=iid,
    )


def _task(
    store: InMemoryStateStore,
    tid: str,
    iid: str,
    queue: str,
    created: datetime,
    due: datetime,
    status: TaskStatus = TaskStatus.OPEN,
    completed: datetime | None = None,
) -> None:
    instance = store.instances[iid]
    store.tasks[tid] = HumanTask(
        task_id=tid,
        instance_id=iid,
        workflow_id=instance.workflow_id,
        facility_id=instance.facility_id,
        queue=queue,
        title="t",
        subject_ref=f"case/{iid}",
        created_at=created,
        due_at=due,
        status=status,
        completed_at=completed,
    )


def _concluded(store: InMemoryStateStore, iid: str, started: datetime, after: timedelta) -> None:
    _instance(store, iid, PA, started, started + after, InstanceStatus.COMPLETED)
    store.record(
        Milestone(instance_id=iid, name="request_received", at=started),
        Milestone(instance_id=iid, name="concluded_approved", at=started + after),
    )


@pytest.fixture
def store() -> InMemoryStateStore:
    s = InMemoryStateStore()
    # surgical readiness: the cohort is A, B, C, G (started within the window at fac-north)
    _instance(s, "A", SCR, NOW - D, NOW - 20 * H, InstanceStatus.COMPLETED)
    _task(
        s,
        "t1",
        "A",
        "care_coordinator",
        NOW - 23 * H,
        NOW - 22 * H,
        TaskStatus.COMPLETED,
        completed=NOW - 22.5 * H,
    )  # met
    _instance(s, "B", SCR, NOW - 2 * D, NOW - 2 * D + H, InstanceStatus.FAILED)
    _instance(s, "C", SCR, NOW - 3 * H, NOW - 2 * H, InstanceStatus.WAITING)
    _task(s, "t2", "C", "care_coordinator", NOW - 2 * H, NOW - H)  # open past due: missed
    _instance(s, "D", SCR, NOW - 10 * D, NOW - 9 * D, InstanceStatus.WAITING)  # before: no cohort
    _task(s, "t3", "D", "case_manager", NOW - 9 * D, NOW + D)  # open, counted in open_tasks
    _instance(s, "E", SCR, NOW - D, NOW - D, InstanceStatus.RUNNING, facility="fac-south")
    _task(s, "t5", "E", "care_coordinator", NOW - D, NOW - H)  # another facility: never
    _instance(s, "F", SCR, NOW - 8 * D, NOW - 7 * D - H, InstanceStatus.COMPLETED)  # all before
    _instance(s, "G", SCR, NOW - H, NOW - H, InstanceStatus.RUNNING)
    _task(s, "t4", "G", "care_coordinator", NOW - 0.5 * H, NOW + H, TaskStatus.CLAIMED)  # not due
    # prior authorization: decisions after 90, 30, 600 minutes, and 2 days for one started
    # before the window but concluded in it; P5 still waits on the payer
    _concluded(s, "P1", NOW - 3 * D, timedelta(minutes=90))
    _concluded(s, "P2", NOW - 2 * D, timedelta(minutes=30))
    _task(
        s, "appeal", "P2", "utilization_review_nurse", NOW - 2 * D + 0.5 * H, NOW + 0.5 * H
    )  # open, not due yet
    _concluded(s, "P3", NOW - D, timedelta(minutes=600))
    _concluded(s, "P4", NOW - 8 * D, timedelta(days=2))
    _instance(s, "P5", PA, NOW - 5 * H, NOW - 5 * H, InstanceStatus.WAITING)
    return s


def test_a_workflows_counts_rates_and_queues_are_those_of_its_cohort(store):
    found = kpis.workflow_kpis(store, SCR, ["fac-north"], since=SINCE, now=NOW)
    assert found == {
        "workflow_id": SCR,
        "started": 4,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
        "running": 2,
        "escalation_rate": 0.75,  # A, C and G raised a task
        "sla_adherence": 0.5,  # t1 met, t2 missed, t4 not due yet
        "open_tasks": [
            {"queue": "care_coordinator", "count": 2, "oldest_age_minutes": 120},
            {"queue": "case_manager", "count": 1, "oldest_age_minutes": 9 * 24 * 60},
        ],
    }


def test_authorization_turnaround_is_request_to_decision_by_nearest_rank(store):
    found = kpis.workflow_kpis(store, PA, ["fac-north"], since=SINCE, now=NOW)
    assert found["authorization_turnaround"] == {
        "decisions": 4,  # 30, 90, 600, 2880 minutes
        "p50_minutes": 90.0,  # rank ceil(0.5 * 4) = 2
        "p90_minutes": 2880.0,  # rank ceil(0.9 * 4) = 4
    }
    assert (found["started"], found["completed"], found["running"]) == (4, 3, 1)
    assert found["escalation_rate"] == 0.25 and found["sla_adherence"] is None
    assert found["open_tasks"] == [
        {"queue": "utilization_review_nurse", "count": 1, "oldest_age_minutes": 2850}
    ]


def test_other_facilities_count_for_nothing(store):
    found = kpis.workflow_kpis(store, SCR, ["fac-south"], since=SINCE, now=NOW)
    assert (found["started"], found["running"], found["escalation_rate"]) == (1, 1, 1.0)
    assert found["sla_adherence"] == 0.0
    empty = kpis.workflow_kpis(store, SCR, [], since=SINCE, now=NOW)
    assert empty["started"] == 0 and empty["escalation_rate"] is None
    assert empty["open_tasks"] == []


def test_a_shorter_window_narrows_the_cohort(store):
    found = kpis.workflow_kpis(store, SCR, ["fac-north"], since=NOW - 6 * H, now=NOW)
    assert (found["started"], found["running"], found["completed"]) == (2, 2, 0)  # C, G
    turnaround = kpis.workflow_kpis(store, PA, ["fac-north"], since=NOW - 6 * H, now=NOW)
    assert turnaround["authorization_turnaround"] == {
        "decisions": 0,
        "p50_minutes": None,
        "p90_minutes": None,
    }


def test_every_kpi_served_has_a_definition(store):
    doc = kpis.kpis(store, [SCR, PA], ["fac-north"], since=SINCE, now=NOW)
    served = {k for wf in doc["workflows"] for k in wf} - {"workflow_id"}
    assert served == set(doc["definitions"]) == {k.name for k in kpis.catalogue([SCR, PA])}
    assert all(k.definition and k.owner and k.lineage for k in kpis.catalogue())
    assert doc["window"] == {"since": SINCE.isoformat(), "until": NOW.isoformat()}


@pytest.mark.parametrize(
    ("since", "window", "field", "reason"),
    [
        (None, "P7X", "query.window", "duration_invalid"),
        (None, "PT", "query.window", "duration_invalid"),
        (None, "P0D", "query.window", "too_short"),
        (None, "P32D", "query.window", "too_long"),
        (NOW - D, "P1D", "query.window", "conflict"),
        (datetime(2026, 11, 28, 8, 0), None, "query.since", "timezone_missing"),
        (NOW + H, None, "query.since", "in_future"),
        (NOW - 40 * D, None, "query.since", "too_long"),
    ],
)
def test_a_window_that_cannot_be_served_names_its_field(since, window, field, reason):
    with pytest.raises(kpis.WindowError) as err:
        kpis.window_start(since, window, NOW)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_the_window_defaults_to_seven_days_and_reads_durations():
    assert kpis.window_start(None, None, NOW) == SINCE
    assert kpis.window_start(None, "P1DT6H30M", NOW) == NOW - timedelta(days=1, hours=6, minutes=30)
    assert kpis.window_start(NOW - D, None, NOW) == NOW - D


def test_every_kpi_is_documented_in_docs_kpis_md():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "kpis.md").read_text()
    assert {k.name for k in kpis.catalogue()} - set(
        re.findall(r"^\| `(\w+)` \|", text, re.M)
    ) == set()
