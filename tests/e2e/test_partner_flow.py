"""A partner and a person over real HTTP on the local cloud: the partner's client token
starts a surgical readiness instance and polls it; the case's coordinator task escalates
to the supply chain buyers; a buyer's token finds it in the inbox, claims and completes
it; the partner sees the instance finish. And the role x facility x route matrix of the
handler's unit tests, here through the gateway with real tokens."""

from __future__ import annotations

import copy
import json
import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from careflow import wiring
from careflow.adapters.sandbox import sandbox
from careflow.localcloud.api_server import ISSUER_PATH, ApiServer, LocalIssuer
from careflow.localcloud.cloud import free_port
from careflow.localcloud.control import ControlServer
from tests.e2e.test_local_api import request
from tests.unit.test_api import instance, task_for

CASE = "appt-1003"  # the sandbox's hip at fac-south: implant short → coordinator task


@pytest.fixture(scope="module")
def api(cloud):
    issuer = LocalIssuer(f"http://127.0.0.1:{cloud.port + 1}{ISSUER_PATH}")
    control = ControlServer(cloud, cloud.port + 1, issuer).start()
    server = ApiServer(free_port(), issuer).start()
    control.api_url = server.url
    yield server
    server.stop()
    control.stop()


def _token(api: ApiServer, scopes: str, facility: str, **kw: Any) -> str:
    return api.issuer.mint(
        client=kw.pop("client", "partner-app"),
        scopes=scopes.split(","),
        facilities=[facility],
        **kw,
    )


def _poll(read: Any, until: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        seen = read()
        if until(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g} s; last seen {seen}")
        time.sleep(0.25)


@pytest.fixture
def stock_restored():
    """The flow transfers a stem into fac-south; later tests on this worker expect the
    sandbox's seeded stock (surgical readiness's implant shortage there)."""
    sb = sandbox()
    with sb.lock:
        saved = copy.deepcopy(sb.stock)
    yield
    with sb.lock:
        sb.stock.clear()
        sb.stock.update(saved)


def test_a_partner_starts_a_case_a_buyer_works_its_escalated_task_and_it_finishes(
    api, cloud, stock_restored
):
    started_at = time.perf_counter()
    case = sandbox().cases[CASE]
    assert case.facility_id == "fac-south"
    partner = _token(api, "workflows.read,workflows.write", "fac-south")
    key = f"order-{uuid.uuid4().hex[:12]}"
    body = {
        "appointment_id": CASE,
        "appointment_type": "procedure",
        "scheduled_start": case.scheduled_start.isoformat(),
    }
    path = "/workflows/surgical-case-readiness/instances"
    status, started, _ = request(
        api, "POST", path, token=partner, body=body, headers={"Idempotency-Key": key}
    )
    assert status == 201, started
    instance_id = started["instance_id"]
    # a retry with the same key is the same instance
    again = request(api, "POST", path, token=partner, body=body, headers={"Idempotency-Key": key})
    assert (again[0], again[1]["instance_id"]) == (200, instance_id)

    def read() -> dict[str, Any]:
        """The instance; ``{}`` while its first step has not recorded it yet (404)."""
        status, doc, _ = request(api, "GET", f"/instances/{instance_id}", token=partner)
        assert status in (200, 404), doc
        return doc if status == 200 else {"open_tasks": [], "status": "RUNNING"}

    waiting = _poll(read, lambda d: d["open_tasks"], "a coordinator task")
    (task,) = waiting["open_tasks"]
    assert (task["queue"], task["escalation_level"]) == ("care_coordinator", 0)

    # nobody acts within the coordinator's SLA: the task escalates to the buyers
    due = timedelta(seconds=(_at(task["due_at"]) - cloud.clock.now()).total_seconds())
    assert cloud.clock.wait_for_timer(due - timedelta(minutes=5), due, timeout=30)
    cloud.clock.advance(timedelta(hours=5))
    escalated = _poll(
        read,
        lambda d: (
            any(t["escalation_level"] >= 1 for t in d["open_tasks"])
            and "task_escalated" in {m["name"] for m in d["milestones"]}
        ),
        "the escalated task and its milestone",
    )
    (task,) = escalated["open_tasks"]
    assert task["queue"] == "supply_chain_buyer" and task["task_id"]
    assert "requisition_created" in {m["name"] for m in escalated["milestones"]}

    # the coordinator's token no longer works it; a buyer at the facility finds it
    coordinator = _token(
        api, "tasks.work", "fac-south", client="nurse-app", user="coordinator-mdiaz"
    )
    status, inbox, _ = request(api, "GET", "/tasks?queue=care_coordinator", token=coordinator)
    assert status == 200 and task["task_id"] not in [t["task_id"] for t in inbox["items"]]
    claim = f"/tasks/{task['task_id']}/claim"
    assert request(api, "POST", claim, token=coordinator, body={})[0] == 403
    buyer = _token(api, "tasks.work", "fac-south", client="nurse-app", user="buyer-jlee")
    status, inbox, _ = request(api, "GET", "/tasks?queue=supply_chain_buyer", token=buyer)
    assert status == 200 and task["task_id"] in [t["task_id"] for t in inbox["items"]]
    status, claimed, _ = request(api, "POST", claim, token=buyer, body={})
    assert (status, claimed["claimed_by"]) == (200, "user:buyer-jlee"), claimed
    cloud.transfer_stock("IMP-THA-STEM-12", 1, "fac-north", "fac-south")
    status, done, _ = request(
        api,
        "POST",
        f"/tasks/{task['task_id']}/complete",
        token=buyer,
        body={"decision": "PROCEED", "reason": "stem transferred from fac-north"},
    )
    assert (status, done["status"], done["completed_by"]) == (200, "COMPLETED", "user:buyer-jlee")

    finished = _poll(read, lambda d: d["status"] not in ("RUNNING", "WAITING"), "the outcome")
    assert (finished["status"], finished["open_tasks"]) == ("READY", []), finished
    names = {m["name"] for m in finished["milestones"]}
    assert {"requisition_created", "task_escalated", "task_completed"} <= names, names
    arn = cloud.execution_arn(instance_id, "surgical-case-readiness")
    cloud.wait_for(lambda: cloud.describe(arn)["status"] != "RUNNING", 60, "the execution")
    assert cloud.describe(arn)["status"] == "SUCCEEDED"
    print(f"partner flow over HTTP: {time.perf_counter() - started_at:.1f} s")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- role x facility x route over HTTP ---------------------------------------------------------
PEOPLE = {  # username: may work the care_coordinator queue
    "coordinator-mdiaz": True,  # care_coordinator
    "cc-lead-bokafor": True,  # care_coordinator and its supervisor
    "buyer-jlee": False,  # another queue's role
}


@pytest.mark.parametrize(
    ("person", "facility", "route", "expected"),
    [
        (person, facility, route, expected)
        for person, may_work in PEOPLE.items()
        for facility, own in (("fac-north", True), ("fac-south", False))
        for route, expected in (
            ("instance", 200 if own else 404),
            ("inbox", 200),
            ("claim", (200 if may_work else 403) if own else 404),
        )
    ],
)
def test_role_facility_route_matrix_over_http(api, person, facility, route, expected):
    inst = instance(random.randrange(10_000, 99_999))  # at fac-north
    wiring.store().put_instance(inst)
    task = task_for(wiring.store(), inst)
    who = _token(api, "workflows.read,tasks.work", facility, client="nurse-app", user=person)
    if route == "instance":
        status, body, _ = request(api, "GET", f"/instances/{inst.instance_id}", token=who)
        assert status != 200 or body["instance_id"] == inst.instance_id
    elif route == "inbox":
        status, body, _ = request(api, "GET", "/tasks?queue=care_coordinator", token=who)
        listed = task.task_id in [t["task_id"] for t in body["items"]]
        assert listed == (facility == "fac-north")
    else:
        status, body, _ = request(api, "POST", f"/tasks/{task.task_id}/claim", token=who, body={})
        assert status != 200 or body["claimed_by"] == f"user:{person}"
    assert status == expected, body


def test_careflow_tasks_works_a_task_through_the_running_clouds_api(api, cloud):
    """The console script, in its own process: the API's URL from the control endpoint
    (``GET /api``), a token from its issuer, each refusal its exit code."""
    from tests.e2e.test_cli_matrix import careflow

    inst = instance(random.randrange(10_000, 99_999))
    wiring.store().put_instance(inst)
    task = task_for(wiring.store(), inst)
    at = ("--port", str(cloud.port))
    me = ("--actor", "user:coordinator-mdiaz")
    listed = careflow(
        "tasks", "list", "--queue", "care_coordinator", "--facility", "fac-north", *at
    )
    assert listed.code == 0 and task.task_id in [t["task_id"] for t in _json(listed.stdout)]
    refused = careflow("tasks", "claim", task.task_id, "--actor", "user:buyer-jlee", *at)
    assert refused.code == 4 and len(refused.lines) == 1, refused.lines
    assert careflow("tasks", "claim", "task-nope", *me, *at).code == 3
    claimed = careflow("tasks", "claim", task.task_id, *me, *at)
    assert claimed.code == 0 and _json(claimed.stdout)["claimed_by"] == "user:coordinator-mdiaz"
    assert (
        careflow("tasks", "claim", task.task_id, "--actor", "user:coordinator-akim", *at).code == 5
    )
    wrong = careflow("tasks", "complete", task.task_id, *me, "--decision", "MAYBE", *at)
    assert wrong.code == 6 and len(wrong.lines) == 1, wrong.lines
    released = careflow("tasks", "release", task.task_id, *me, "--reason", "off shift", *at)
    assert released.code == 0 and _json(released.stdout)["status"] == "OPEN"


def _json(text: str) -> Any:
    return json.loads(text)
