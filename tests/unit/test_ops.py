"""The operations page's reads (careflow.ops, GET /v1/board, /v1/queues, /v1/kpis/series),
hand-computed on a small in-memory scenario; and who sees a workflow's subjects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from careflow import ops
from careflow.domain.records import HumanTask, Instance, InstanceStatus, Milestone, TaskStatus
from careflow.policies import resolve
from tests.fakes import InMemoryStateStore
from tests.unit import test_api
from tests.unit.test_api import FILES, call, claims

wired = test_api.wired  # the API's fixture: in-memory store, files policies, a fixed clock

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
SCR, IE = "surgical-case-readiness", "invoice-exceptions"


def _instance(store, iid, workflow, *, started, status=InstanceStatus.WAITING, updated=None,
              facility="fac-north", subject=None):  # fmt: skip
    store.instances[iid] = Instance(
        instance_id=iid,
        workflow_id=workflow,
        subject_type="case" if workflow == SCR else "invoice",
        subject_id=subject or f"s-{iid}",
        facility_id=facility,
        status=status,
        started_at=started,
        updated_at=updated or started,
        correlation_id=iid,
        execution_name=iid,
    )


def _task(store, tid, iid, workflow, *, queue, created, due, status=TaskStatus.OPEN,
          completed=None, facility="fac-north", level=0, policy="v1"):  # fmt: skip
    store.put_task(
        HumanTask(
            task_id=tid,
            instance_id=iid,
            workflow_id=workflow,
            facility_id=facility,
            queue=queue,
            title="t",
            subject_ref=f"x/{iid}",
            created_at=created,
            due_at=due,
            status=status,
            completed_at=completed,
            claimed_by="user:coordinator-mdiaz" if status is TaskStatus.CLAIMED else None,
            escalation_level=level,
            policy_version=policy,
        )
    )


@pytest.fixture
def scenario() -> InMemoryStateStore:
    s = InMemoryStateStore()
    # two surgical cases waiting (one at supply_at_risk since 07:00, one just started), one
    # ended yesterday; an invoice waiting at fac-south
    _instance(s, "scr-1", SCR, started=NOW - 2 * D)
    s.record(Milestone(instance_id="scr-1", name="request_received", at=NOW - 2 * D))
    s.record(Milestone(instance_id="scr-1", name="supply_at_risk", at=NOW - H))
    _instance(s, "scr-2", SCR, started=NOW - 10 * M, status=InstanceStatus.RUNNING)
    _instance(s, "scr-3", SCR, started=NOW - 3 * D, status=InstanceStatus.COMPLETED,
              updated=NOW - 20 * H)  # fmt: skip
    _instance(s, "ie-1", IE, started=NOW - 9 * D, facility="fac-south")
    # tasks: scr-1 has one open 2 h old (due in 1 h) and one claimed 30 h old (overdue,
    # escalated); scr-3's task was completed late (due 21 h ago, done 20 h ago); ie-1's
    # is open 9 days
    _task(s, "t-1", "scr-1", SCR, queue="care_coordinator", created=NOW - 2 * H, due=NOW + H)
    _task(s, "t-2", "scr-1", SCR, queue="care_coordinator", created=NOW - 30 * H,
          due=NOW - 6 * H, status=TaskStatus.CLAIMED, level=1)  # fmt: skip
    _task(s, "t-3", "scr-3", SCR, queue="care_coordinator", created=NOW - 2 * D,
          due=NOW - 21 * H, status=TaskStatus.COMPLETED, completed=NOW - 20 * H)  # fmt: skip
    _task(s, "t-4", "ie-1", IE, queue="ap_pricing", created=NOW - 9 * D, due=NOW + D,
          facility="fac-south")  # fmt: skip
    return s


# -- careflow.ops, by hand ---------------------------------------------------------------------
def test_age_buckets_at_their_edges():
    assert ops.age_bucket(timedelta(0)) == "under 4 h"
    assert ops.age_bucket(4 * H - timedelta(seconds=1)) == "under 4 h"
    assert ops.age_bucket(4 * H) == "4-24 h"
    assert ops.age_bucket(D) == "1-7 d"
    assert ops.age_bucket(7 * D) == "8-30 d"
    assert ops.age_bucket(30 * D) == "over 30 d"


def test_the_board_groups_live_instances_by_their_latest_milestone(scenario):
    found = ops.board(
        scenario,
        [(SCR, "Surgical case readiness"), (IE, "Invoice exception handling")],
        ["fac-north"],
        visible={SCR: True, IE: True},
        now=NOW,
    )
    surgical, invoices = found["workflows"]
    assert surgical["running"] == 2 and invoices["running"] == 0  # scr-3 ended; ie-1 south
    columns = {c["milestone"]: c for c in surgical["milestones"]}
    assert set(columns) == {"supply_at_risk", "started"}
    card = columns["supply_at_risk"]["instances"][0]
    assert card["instance_id"] == "scr-1" and card["subject_id"] == "s-scr-1"
    assert card["since"] == (NOW - H).isoformat()
    assert (card["open_tasks"], card["overdue_tasks"]) == (2, 1)
    assert columns["started"]["instances"][0]["instance_id"] == "scr-2"


def test_the_board_hides_subjects_of_workflows_the_role_does_not_work(scenario):
    found = ops.board(scenario, [(SCR, "S")], ["fac-north"], visible={SCR: False}, now=NOW)
    cards = [c for col in found["workflows"][0]["milestones"] for c in col["instances"]]
    assert cards and all(c["subject_id"] is None for c in cards)
    assert found["workflows"][0]["subjects_visible"] is False


def test_queues_count_depth_overdue_and_ages_by_bucket(scenario):
    tasks = [t for i in ("scr-1", "scr-3", "ie-1") for t in scenario.tasks_for_instance(i)]
    work = ops.QueueAccess(frozenset({"care_coordinator"}), frozenset({"lead"}))
    found = ops.queues(tasks, access=lambda t: work, caller_roles=frozenset({"lead"}), now=NOW)
    rows = {(r["facility_id"], r["queue"]): r for r in found["queues"]}
    north = rows[("fac-north", "care_coordinator")]
    assert (north["open"], north["claimed"], north["overdue"], north["escalated"]) == (2, 1, 1, 1)
    assert north["aging"] == {
        "under 4 h": 1,
        "4-24 h": 0,
        "1-7 d": 1,
        "8-30 d": 0,
        "over 30 d": 0,
    }
    assert north["oldest_age_minutes"] == 30 * 60
    assert (north["may_work"], north["may_supervise"]) == (False, True)
    assert rows[("fac-south", "ap_pricing")]["aging"]["8-30 d"] == 1
    assert found["buckets"] == [label for label, _ in ops.AGE_BUCKETS]


def test_series_by_day_hand_computed(scenario):
    found = ops.series(scenario, [SCR, IE], ["fac-north"], interval=D, points=3, now=NOW)
    points = found["points"]
    assert [p["until"] for p in points] == [(NOW - k * D).isoformat() for k in (2, 1, 0)]
    # started: scr-1 at NOW-2D (bucket 1: [NOW-2D, NOW-D)), scr-2 in the last day; scr-3
    # started NOW-3D, at the range's very start (bucket 0)
    assert [p["started"][SCR] for p in points] == [1, 1, 1]
    assert [p["ended"][SCR] for p in points] == [0, 0, 1]  # scr-3 ended NOW-20h
    # t-3 (due NOW-21h) missed; t-2 (due NOW-6h, still claimed) missed; t-1 not yet due
    assert [(p["sla_met"], p["sla_missed"]) for p in points] == [(0, 0), (0, 0), (0, 2)]
    assert points[2]["sla_adherence"] == 0.0 and points[0]["sla_adherence"] is None
    # opened: t-3 at NOW-2D and t-2 at NOW-30h (bucket 1), t-1 2 h ago (bucket 2)
    assert [p["tasks_opened"] for p in points] == [0, 2, 1]
    assert all(p["started"][IE] == 0 for p in points)  # ie-1 is at fac-south


@pytest.mark.parametrize(
    ("interval", "points", "says"),
    [
        (M, 1, "at least 60 minutes"),
        (H, 0, "from 1 to 60"),
        (D, 61, "from 1 to 60"),
        (7 * D, 10, "at most 62 days"),
    ],
)
def test_series_refuses_what_it_cannot_answer(interval, points, says):
    with pytest.raises(ValueError, match=says):
        ops.series(InMemoryStateStore(), [SCR], ["fac-north"], interval=interval, points=points,
                   now=NOW)  # fmt: skip


def test_a_workflows_roles_come_from_its_policys_queue_roles():
    roles = ops.workflow_roles(
        {SCR: "surgical-readiness", IE: "invoice-exceptions"}, "fac-north", FILES
    )
    assert "care_coordinator" in roles[SCR] and "ap_clerk" not in roles[SCR]
    assert {"ap_clerk", "ap_supervisor", "controller"} <= roles[IE]
    assert ops.workflow_roles({"x": "no-such-policy"}, "fac-north", FILES) == {"x": frozenset()}
    assert ops.sees_subjects(None, frozenset())  # a client naming no roles: its scopes decide
    assert not ops.sees_subjects(frozenset({"ap_clerk"}), roles[SCR])


def test_every_workflow_names_a_policy_that_resolves():
    from careflow.kit.registry import workflows

    for wf in workflows():
        assert wf.policy, wf.id
        assert resolve(wf.policy, "fac-north", store=FILES).version, wf.id


# -- through the API --------------------------------------------------------------------------
def _seed(store):
    _instance(store, "scr-1", SCR, started=NOW - H, subject="appt-77")
    store.record(Milestone(instance_id="scr-1", name="supply_at_risk", at=NOW - 30 * M))
    policy = resolve("surgical-readiness", "fac-north", store=FILES).version
    _task(store, "t-1", "scr-1", SCR, queue="care_coordinator", created=NOW - H, due=NOW + H,
          policy=policy)  # fmt: skip


def test_the_board_shows_subjects_to_the_role_that_works_them_only(wired):
    _seed(wired.store)
    read = "careflow/workflows.read"
    coordinator = claims("coordinator-mdiaz", scope=read, roles="care_coordinator")
    status, body, _ = call("GET", "/v1/board", who=coordinator)
    assert status == 200, body
    surgical = next(w for w in body["workflows"] if w["workflow_id"] == SCR)
    card = surgical["milestones"][0]["instances"][0]
    assert (card["subject_id"], card["milestone"]) == ("appt-77", "supply_at_risk")
    clerk = claims("ap-clerk-mgarcia", scope=read, roles="ap_clerk")
    _, body, _ = call("GET", "/v1/board", who=clerk)
    surgical = next(w for w in body["workflows"] if w["workflow_id"] == SCR)
    assert surgical["subjects_visible"] is False
    assert surgical["milestones"][0]["instances"][0]["subject_id"] is None
    # a token may narrow its person's roles, never add one: the clerk claiming a coordinator
    # role still holds only the directory's
    posing = claims("ap-clerk-mgarcia", scope=read, roles="care_coordinator")
    _, body, _ = call("GET", "/v1/board", who=posing)
    assert (
        next(w for w in body["workflows"] if w["workflow_id"] == SCR)["subjects_visible"] is False
    )


def test_the_board_and_queues_refuse_a_facility_the_token_does_not_name(wired):
    who = claims(scope="careflow/workflows.read careflow/tasks.work", roles="care_coordinator")
    for path in ("/v1/board", "/v1/queues", "/v1/kpis/series"):
        status, body, _ = call("GET", path, who=who, query={"facility": "fac-south"})
        assert status == 403, (path, body)


def test_queues_say_which_the_caller_works(wired):
    _seed(wired.store)
    who = claims("coordinator-mdiaz", scope="careflow/tasks.work", roles="care_coordinator")
    status, body, _ = call("GET", "/v1/queues", who=who)
    assert status == 200, body
    (row,) = body["queues"]
    assert (row["queue"], row["open"], row["may_work"]) == ("care_coordinator", 1, True)
    assert row["aging"]["under 4 h"] == 1
    clerk = claims("ap-clerk-mgarcia", scope="careflow/tasks.work", roles="ap_clerk")
    _, body, _ = call("GET", "/v1/queues", who=clerk)
    assert body["queues"][0]["may_work"] is False


def test_the_series_route_answers_and_refuses_bad_queries(wired):
    _seed(wired.store)
    who = claims(scope="careflow/workflows.read")
    status, body, _ = call("GET", "/v1/kpis/series", who=who, query={"points": "3"})
    assert status == 200, body
    assert len(body["points"]) == 3 and body["points"][-1]["started"][SCR] == 1
    for query in ({"interval": "PT1M"}, {"points": "0"}, {"points": "61"}):
        status, body, _ = call("GET", "/v1/kpis/series", who=who, query=query)
        assert status == 400 and body["errors"], (query, body)
    status, body, _ = call(
        "GET", "/v1/kpis/series", who=who, query={"interval": "P7D", "points": "10"}
    )
    assert status == 400 and "62 days" in body["detail"]
