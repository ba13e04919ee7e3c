"""The /v1 partner API's handler: claims, scopes and facilities first, then the domain,
errors as problem details; against in-memory fakes wired in place of the adapters."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from careflow import clock, wiring
from careflow.api import app as api
from careflow.api.contract import ROUTES, SCOPES
from careflow.domain.records import Instance, InstanceStatus, Milestone
from careflow.domain.tasks import open_task
from careflow.policies import FilePolicyStore, resolve
from careflow.settings import settings
from tests.fakes import FakeEngine, FakePublisher, InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
FILES = FilePolicyStore()
ARNS = {
    "surgical-case-readiness": "arn:aws:states:us-east-1:1:stateMachine:SurgicalCaseReadiness",
    "prior-authorization": "arn:aws:states:us-east-1:1:stateMachine:PriorAuthorization",
}
ALL_SCOPES = "careflow/workflows.read careflow/workflows.write careflow/tasks.work"


def claims(
    username: str | None = "coordinator-mdiaz",
    *,
    scope: str = ALL_SCOPES,
    facilities: str = "fac-north",
    roles: str | None = None,
    client_id: str = "partner-app",
) -> dict[str, str]:
    found = {"scope": scope, "client_id": client_id, "custom:facilities": facilities}
    if username is not None:
        found["username"] = username
    if roles is not None:
        found["custom:roles"] = roles
    return found


def call(
    method: str,
    path: str,
    *,
    who: dict[str, str] | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """The resolver's answer to an API Gateway REST proxy event: (status, body, headers);
    ``raw``: the body's bytes, as API Gateway passes a body that is not text (base64)."""
    event = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "multiValueHeaders": {k: [v] for k, v in (headers or {}).items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "requestContext": {
            "httpMethod": method,
            "path": path,
            "stage": "prod",
            "requestId": "req-1",
            **({"authorizer": {"claims": who}} if who is not None else {}),
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }
    if raw is not None:
        event |= {"body": base64.b64encode(raw).decode(), "isBase64Encoded": True}
    answer = api.app.resolve(event, SimpleNamespace(aws_request_id="req-1"))
    content = json.loads(answer["body"]) if answer.get("body") else {}
    headers = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], content, {**headers, **(answer.get("headers") or {})}


@pytest.fixture
def wired(monkeypatch):
    store, engine, publisher = InMemoryStateStore(), FakeEngine(), FakePublisher()
    monkeypatch.setattr(wiring, "store", lambda: store)
    monkeypatch.setattr(wiring, "engine", lambda: engine)
    monkeypatch.setattr(wiring, "publisher", lambda: publisher)
    monkeypatch.setattr(wiring, "policies", lambda: FILES)
    monkeypatch.delenv("CAREFLOW_ACTORS_FILE", raising=False)
    monkeypatch.delenv("CAREFLOW_FACILITIES_FILE", raising=False)
    monkeypatch.setenv("TABLE_NAME", "careflow-test")
    monkeypatch.setenv("EVENT_BUS_NAME", "careflow-test")
    monkeypatch.setenv("STATE_MACHINE_ARNS", json.dumps(ARNS))
    settings.cache_clear()
    monkeypatch.setattr(clock, "now", lambda: NOW)
    yield SimpleNamespace(store=store, engine=engine, publisher=publisher)
    settings.cache_clear()


def instance(n: int, *, facility: str = "fac-north", status=InstanceStatus.RUNNING) -> Instance:
    return Instance(
        instance_id=f"scr-{n:04d}",
        workflow_id="surgical-case-readiness",
        subject_type="case",
        subject_id=f"appt-{n}",
        facility_id=facility,
        status=status,
        started_at=NOW,
        updated_at=NOW + timedelta(minutes=n),
        correlation_id=f"c-{n}",
        execution_name=f"scr-{n:04d}",
        outcome_reasons=("implant short for a named patient",),
    )


def task_for(store, inst: Instance, *, token: str | None = "tok-1"):
    return open_task(
        store,
        FakePublisher(),
        instance_id=inst.instance_id,
        workflow_id=inst.workflow_id,
        facility_id=inst.facility_id,
        purpose="coordinator",
        title="Case at risk for Jane Doe",
        reasons=("implant short",),
        subject_ref=f"case/{inst.subject_id}",
        escalation_chain=("care_coordinator", "department_director"),
        due_in_seconds=3600,
        token=token,
        allowed_decisions=("PROCEED", "CANCEL"),
        now=NOW,
        policy_version=resolve("surgical-readiness", inst.facility_id, store=FILES).version,
    )


# -- the contract -------------------------------------------------------------------------
def test_the_app_serves_every_contract_route_and_no_other():
    """From the resolver's own route table (its OpenAPI view), not only ours."""
    schema = api.app.get_openapi_schema()
    resolved = {
        (method.upper(), path)
        for path, item in schema.paths.items()
        for method in item.model_dump(exclude_none=True)
        if method in ("get", "post", "put", "patch", "delete", "head", "options")
    }
    assert resolved == {(r.method, r.path) for r in ROUTES}
    assert api.served() == resolved


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_every_contract_route_answers_as_a_route(wired, route):
    path = route.path.replace("{id}", "x-1").replace("{workflow}", "w").replace("{name}", "p")
    status, body, _ = call(route.method, path)
    assert status == (200 if route.scope is None else 401), body


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.scope], ids=lambda r: f"{r.method} {r.path}"
)
def test_every_scoped_route_refuses_a_token_with_every_other_scope(wired, route):
    path = route.path.replace("{id}", "x-1").replace("{workflow}", "w").replace("{name}", "p")
    others = " ".join(f"careflow/{s}" for s in SCOPES if s != route.scope)
    status, body, _ = call(route.method, path, who=claims(scope=others))
    assert status == 403 and f"careflow/{route.scope}" in body["detail"]


def test_a_path_outside_the_contract_is_a_404_problem(wired):
    status, body, headers = call("GET", "/v1/secrets", who=claims())
    assert status == 404 and body["status"] == 404
    assert headers["Content-Type"] == "application/problem+json"


def test_the_lambda_entry_serves_the_app(wired):
    from lambdas.api import handler

    answer = handler(
        {
            "resource": "/v1/health",
            "path": "/v1/health",
            "httpMethod": "GET",
            "headers": {},
            "requestContext": {},
            "body": None,
        },
        SimpleNamespace(aws_request_id="req-1"),
    )
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"status": "ok"}


# -- who may call -------------------------------------------------------------------------
def test_no_claims_is_401_as_a_problem(wired):
    status, body, headers = call("GET", "/v1/instances/scr-0001")
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert set(body) >= {"type", "title", "status", "detail"} and body["status"] == 401


def test_claims_without_the_routes_scope_are_403(wired):
    wired.store.put_instance(instance(1))
    status, body, _ = call("GET", "/v1/instances/scr-0001", who=claims(scope="careflow/tasks.work"))
    assert status == 403 and "careflow/workflows.read" in body["detail"]


def test_a_scope_of_another_resource_server_does_not_count(wired):
    status, _, _ = call("GET", "/v1/instances/scr-0001", who=claims(scope="other/workflows.read"))
    assert status == 403


def test_another_facilitys_instance_is_404_not_403(wired):
    wired.store.put_instance(instance(1, facility="fac-south"))
    status, body, _ = call("GET", "/v1/instances/scr-0001", who=claims(facilities="fac-north"))
    assert status == 404 and body["title"] == "Not Found"
    status, _, _ = call("GET", "/v1/instances/scr-0001", who=claims(facilities="fac-south"))
    assert status == 200


def test_a_validation_problem_is_checked_after_the_token(wired):
    status, _, _ = call("POST", "/v1/tasks/task-1/complete", body={"decision": 7})
    assert status == 401


# -- instances ------------------------------------------------------------------------------
def test_an_instance_shows_status_milestones_and_open_tasks_without_free_text(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    wired.store.record_milestone(
        Milestone(instance_id=inst.instance_id, name="registered", at=NOW, detail="Jane Doe")
    )
    task = task_for(wired.store, inst)
    status, body, _ = call("GET", f"/v1/instances/{inst.instance_id}", who=claims())
    assert status == 200
    assert body["status"] == "RUNNING" and body["facility_id"] == "fac-north"
    assert [m["name"] for m in body["milestones"]] == ["registered", "task_opened"]
    assert [t["task_id"] for t in body["open_tasks"]] == [task.task_id]
    text = json.dumps(body)
    for free_text in ("Jane Doe", "implant short", "named patient", "tok-1"):
        assert free_text not in text


def test_start_instance_stores_the_service_line_and_the_views_serve_it(wired):
    from careflow.kit.instances import start_instance

    for iid, line in (("scr-0901", "orthopedics"), ("scr-0902", None)):
        start_instance(
            wired.store,
            workflow_id="surgical-case-readiness",
            instance_id=iid,
            subject_type="case",
            subject_id=f"appt-{iid}",
            facility_id="fac-north",
            correlation_id=f"c-{iid}",
            policy=SimpleNamespace(version="2026.12.0", hash="sha256:0"),
            started="readiness_started",
            detail=iid,
            actor="system:readiness",
            now=NOW,
            service_line=line,
        )
        stored = wired.store.get_instance(iid)
        assert stored is not None and stored.service_line == line
    status, body, _ = call("GET", "/v1/instances/scr-0901", who=claims())
    assert (status, body["service_line"]) == (200, "orthopedics")
    status, body, _ = call("GET", "/v1/instances/scr-0902", who=claims())
    assert (status, body["service_line"]) == (200, None)
    query = {"workflow": "surgical-case-readiness"}
    status, body, _ = call("GET", "/v1/instances", who=claims(), query=query)
    assert status == 200
    assert {i["instance_id"]: i["service_line"] for i in body["items"]} == {
        "scr-0901": "orthopedics",
        "scr-0902": None,
    }


def test_instances_page_with_an_opaque_next_token(wired):
    for n in range(1, 8):
        wired.store.put_instance(instance(n))
    wired.store.put_instance(instance(50, facility="fac-south"))
    query = {"workflow": "surgical-case-readiness", "limit": "3"}
    seen: list[str] = []
    pages = 0
    while True:
        status, body, _ = call("GET", "/v1/instances", who=claims(), query=query)
        assert status == 200
        pages += 1
        seen += [i["instance_id"] for i in body["items"]]
        if body["next"] is None:
            break
        assert "scr-" not in body["next"]
        query = {**query, "next": body["next"]}
    assert pages == 3
    assert seen == [f"scr-{n:04d}" for n in range(7, 0, -1)]  # newest first, no fac-south


def test_instances_filter_by_status_and_subject(wired):
    wired.store.put_instance(instance(1))
    wired.store.put_instance(instance(2, status=InstanceStatus.AT_RISK))
    _, body, _ = call(
        "GET",
        "/v1/instances",
        who=claims(),
        query={"workflow": "surgical-case-readiness", "status": "AT_RISK"},
    )
    assert [i["instance_id"] for i in body["items"]] == ["scr-0002"]
    _, body, _ = call("GET", "/v1/instances", who=claims(), query={"subject": "case/appt-1"})
    assert [i["instance_id"] for i in body["items"]] == ["scr-0001"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"workflow": "surgical-case-readiness", "limit": "101"}, "query.limit"),
        ({"workflow": "surgical-case-readiness", "status": "SECRET-VALUE"}, "query.status"),
        ({"workflow": "surgical-case-readiness", "patient": "SECRET-VALUE"}, "query.patient"),
        ({"workflow": "surgical-case-readiness", "next": "SECRET-VALUE"}, "query.next"),
        ({}, "query.workflow"),
    ],
)
def test_a_bad_search_is_400_naming_the_field(wired, query, field):
    status, body, _ = call("GET", "/v1/instances", who=claims(), query=query)
    assert status == 400
    assert [e["field"] for e in body["errors"]] == [field]
    assert "SECRET-VALUE" not in json.dumps(body)


def test_a_next_token_of_another_search_is_refused(wired):
    for n in range(1, 4):
        wired.store.put_instance(instance(n))
    query = {"workflow": "surgical-case-readiness", "limit": "1"}
    _, body, _ = call("GET", "/v1/instances", who=claims(), query=query)
    status, problem, _ = call(
        "GET",
        "/v1/instances",
        who=claims(),
        query={**query, "status": "RUNNING", "next": body["next"]},
    )
    assert status == 400 and problem["errors"][0]["field"] == "query.next"


# -- tasks --------------------------------------------------------------------------------
def test_the_inbox_lists_the_callers_facilities_by_due_time(wired):
    later = instance(1)
    sooner = instance(2)
    other = instance(3, facility="fac-south")
    for inst in (later, sooner, other):
        wired.store.put_instance(inst)
    t_later = task_for(wired.store, later)
    t_sooner = task_for(wired.store, sooner)
    task_for(wired.store, other)
    wired.store.tasks[t_sooner.task_id] = t_sooner.model_copy(
        update={"due_at": NOW + timedelta(minutes=5)}
    )
    status, body, _ = call("GET", "/v1/tasks", who=claims(), query={"queue": "care_coordinator"})
    assert status == 200
    assert [t["task_id"] for t in body["items"]] == [t_sooner.task_id, t_later.task_id]
    assert "title" not in body["items"][0] and "reasons" not in body["items"][0]


def test_the_inbox_orders_by_priority_then_the_unscored_by_due_time_and_says_why(wired):
    insts = [instance(n) for n in range(1, 5)]
    for inst in insts:
        wired.store.put_instance(inst)
    low, high, unscored_late, unscored_soon = (task_for(wired.store, i) for i in insts)
    scored = {
        low.task_id: (0.2, ("sla_hours",)),
        high.task_id: (0.9, ("hours_to_deadline", "value_usd_log10")),
    }
    for task_id, (score, why) in scored.items():
        wired.store.tasks[task_id] = wired.store.tasks[task_id].model_copy(
            update={"priority": score, "priority_reasons": why}
        )
    wired.store.tasks[unscored_soon.task_id] = unscored_soon.model_copy(
        update={"due_at": NOW + timedelta(minutes=5)}
    )
    status, body, _ = call("GET", "/v1/tasks", who=claims(), query={"queue": "care_coordinator"})
    assert status == 200
    items = body["items"]
    assert [t["task_id"] for t in items] == [
        high.task_id,
        low.task_id,
        unscored_soon.task_id,
        unscored_late.task_id,
    ]
    assert (items[0]["priority"], items[0]["prioritized"]) == (0.9, True)
    assert items[0]["priority_reasons"] == ["hours_to_deadline", "value_usd_log10"]
    assert (items[2]["priority"], items[2]["prioritized"], items[2]["priority_reasons"]) == (
        0.0,
        False,
        [],
    )


def test_the_queues_put_the_most_urgent_work_first(wired):
    calm, urgent = instance(1), instance(2)
    for inst in (calm, urgent):
        wired.store.put_instance(inst)
    task_for(wired.store, calm)
    hot = open_task(
        wired.store,
        FakePublisher(),
        instance_id=urgent.instance_id,
        workflow_id=urgent.workflow_id,
        facility_id=urgent.facility_id,
        purpose="supplies",
        title="Shortage",
        reasons=(),
        subject_ref=f"case/{urgent.subject_id}",
        escalation_chain=("supply_chain_buyer",),
        due_in_seconds=3600,
        token="tok-2",
        allowed_decisions=("PROCEED",),
        now=NOW,
        policy_version="v1",
    )
    wired.store.tasks[hot.task_id] = hot.model_copy(update={"priority": 0.7})
    status, body, _ = call("GET", "/v1/queues", who=claims(), query={"facility": "fac-north"})
    assert status == 200
    rows = [(q["queue"], q["top_priority"]) for q in body["queues"]]
    assert rows == [("supply_chain_buyer", 0.7), ("care_coordinator", 0.0)]


def test_claim_then_complete_as_the_caller_resumes_the_workflow(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    me = claims("coordinator-mdiaz")
    status, body, _ = call("POST", f"/v1/tasks/{task.task_id}/claim", who=me)
    assert (status, body["status"], body["claimed_by"]) == (
        200,
        "CLAIMED",
        "user:coordinator-mdiaz",
    )
    status, body, _ = call(
        "POST",
        f"/v1/tasks/{task.task_id}/complete",
        who=me,
        body={"decision": "PROCEED", "reason": "implant arrives Monday"},
    )
    assert status == 200 and body["status"] == "COMPLETED"
    assert body["completed_by"] == "user:coordinator-mdiaz"
    assert wired.engine.successes[0][1]["actor"] == "user:coordinator-mdiaz"
    audit = [a for a in wired.store.audit if a.action == "task_completed"]
    assert audit[0].actor == "user:coordinator-mdiaz"


def test_the_actor_is_never_a_body_field(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    status, body, _ = call(
        "POST",
        f"/v1/tasks/{task.task_id}/claim",
        who=claims("buyer-jlee"),
        body={"actor": "user:coordinator-mdiaz"},
    )
    assert status == 400 and body["errors"] == [
        {"field": "body.actor", "reason": "extra_forbidden"}
    ]


def test_a_client_token_without_a_person_cannot_work_tasks(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    status, _, _ = call("POST", f"/v1/tasks/{task.task_id}/claim", who=claims(None))
    assert status == 403


def test_a_token_may_narrow_the_directorys_roles_never_widen_them(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}/claim"
    assert call("POST", path, who=claims("coordinator-mdiaz", roles="scheduler"))[0] == 403
    assert call("POST", path, who=claims("buyer-jlee", roles="care_coordinator"))[0] == 403
    assert call("POST", path, who=claims("coordinator-mdiaz", roles="care_coordinator"))[0] == 200


def test_conflict_and_invalid_decision_map_to_409_and_422(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    assert call("POST", f"{path}/claim", who=claims("coordinator-mdiaz"))[0] == 200
    status, body, _ = call("POST", f"{path}/claim", who=claims("coordinator-akim"))
    assert status == 409 and body["title"] == "Conflict"
    status, _, _ = call(
        "POST", f"{path}/complete", who=claims("coordinator-mdiaz"), body={"decision": "MAYBE"}
    )
    assert status == 422


def test_documents_on_a_completion_are_ids_and_go_only_with_attached(wired):
    """``documents`` (optional): ids only (400 otherwise); with a decision other than
    ATTACHED it is refused (422) and the task stays claimed, nothing resumed."""
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    me = claims("coordinator-mdiaz")
    assert call("POST", f"{path}/claim", who=me)[0] == 200
    for bad in (["Patient/p-1"], [], ["DocumentReference/"], ["x" * 70]):
        status, body, _ = call(
            "POST", f"{path}/complete", who=me, body={"decision": "PROCEED", "documents": bad}
        )
        assert status == 400 and body["errors"][0]["field"].startswith("body.documents"), bad
    status, body, _ = call(
        "POST",
        f"{path}/complete",
        who=me,
        body={"decision": "PROCEED", "documents": ["DocumentReference/doc-1"]},
    )
    assert status == 422 and "ATTACHED" in body["detail"]
    assert wired.store.tasks[task.task_id].status.value == "CLAIMED"
    assert wired.engine.successes == []


def test_a_supervisor_reassigns_and_a_bad_target_is_400(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}/reassign"
    status, body, _ = call(
        "POST",
        path,
        who=claims("cc-lead-bokafor"),
        body={"to": "user:coordinator-akim", "reason": "cover"},
    )
    assert status == 200 and body["claimed_by"] == "user:coordinator-akim"
    status, body, _ = call(
        "POST", path, who=claims("cc-lead-bokafor"), body={"to": "Jane Doe", "reason": "x"}
    )
    assert status == 400 and body["errors"][0]["field"] == "body.to"
    assert "Jane Doe" not in json.dumps(body)


def test_the_claimant_releases_back_to_the_queue_a_colleague_may_not(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    assert call("POST", f"{path}/release", who=claims("coordinator-mdiaz"))[0] == 409  # open
    assert call("POST", f"{path}/claim", who=claims("coordinator-mdiaz"))[0] == 200
    status, body, _ = call("POST", f"{path}/release", who=claims("coordinator-akim"))
    assert status == 403 and body["title"] == "Forbidden"
    status, body, _ = call(
        "POST", f"{path}/release", who=claims("coordinator-mdiaz"), body={"reason": "off shift"}
    )
    assert (status, body["status"], body["claimed_by"]) == (200, "OPEN", None)
    released = [a for a in wired.store.audit if a.action == "task_released"]
    assert released[0].actor == "user:coordinator-mdiaz"


def test_a_supervisor_releases_a_colleagues_claim(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    call("POST", f"{path}/claim", who=claims("coordinator-mdiaz"))
    status, body, _ = call("POST", f"{path}/release", who=claims("cc-lead-bokafor"))
    assert (status, body["status"]) == (200, "OPEN")


def test_release_and_acknowledge_take_the_actor_from_the_token_never_the_body(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    for action in ("release", "acknowledge"):
        status, body, _ = call(
            "POST",
            f"/v1/tasks/{task.task_id}/{action}",
            who=claims("coordinator-mdiaz"),
            body={"actor": "user:cc-lead-bokafor"},
        )
        assert status == 400 and body["errors"] == [
            {"field": "body.actor", "reason": "extra_forbidden"}
        ]
        status, _, _ = call("POST", f"/v1/tasks/{task.task_id}/{action}", who=claims(None))
        assert status == 403


def alert_for(store, inst: Instance):
    """A task that offers no decision: it is acknowledged."""
    return open_task(
        store,
        FakePublisher(),
        instance_id=inst.instance_id,
        workflow_id=inst.workflow_id,
        facility_id=inst.facility_id,
        purpose="coordinator",
        title="Implant arrives late",
        reasons=("implant short",),
        subject_ref=f"case/{inst.subject_id}",
        escalation_chain=("care_coordinator", "department_director"),
        due_in_seconds=3600,
        token="tok-ack",
        allowed_decisions=(),
        now=NOW,
        policy_version=resolve("surgical-readiness", inst.facility_id, store=FILES).version,
    )


def test_acknowledge_a_claimed_task_without_decisions_resumes_the_workflow(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = alert_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    me = claims("coordinator-mdiaz")
    assert call("POST", f"{path}/acknowledge", who=me)[0] == 409  # not claimed yet
    assert call("POST", f"{path}/claim", who=me)[0] == 200
    status, body, _ = call("POST", f"{path}/acknowledge", who=me, body={"reason": "seen"})
    assert (status, body["status"], body["decision"]) == (200, "COMPLETED", "ACKNOWLEDGED")
    assert body["completed_by"] == "user:coordinator-mdiaz"
    assert wired.engine.successes[0][1]["actor"] == "user:coordinator-mdiaz"


def test_acknowledging_a_task_that_needs_a_decision_is_422(wired):
    inst = instance(1)
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    path = f"/v1/tasks/{task.task_id}"
    call("POST", f"{path}/claim", who=claims("coordinator-mdiaz"))
    status, body, _ = call("POST", f"{path}/acknowledge", who=claims("coordinator-mdiaz"))
    assert status == 422 and "PROCEED" in body["detail"]
    assert wired.engine.successes == []


def test_release_and_acknowledge_of_another_facilitys_task_are_404(wired):
    inst = instance(1, facility="fac-south")
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    for action in ("release", "acknowledge"):
        status, _, _ = call("POST", f"/v1/tasks/{task.task_id}/{action}", who=claims())
        assert status == 404


@pytest.mark.parametrize(
    ("person", "facility", "route", "expected"),
    [
        (person, facility, route, expected)
        for person, may_work in (("coordinator-mdiaz", True), ("buyer-jlee", False))
        for facility, own in (("fac-north", True), ("fac-south", False))
        for route, expected in (
            ("instance", 200 if own else 404),
            ("inbox", 200),
            ("claim", (200 if may_work else 403) if own else 404),
            ("complete", (409 if may_work else 403) if own else 404),
        )
    ],
)
def test_role_facility_route_matrix(wired, person, facility, route, expected):
    inst = instance(1)  # at fac-north
    wired.store.put_instance(inst)
    task = task_for(wired.store, inst)
    who = claims(person, facilities=facility)
    if route == "instance":
        status, _, _ = call("GET", f"/v1/instances/{inst.instance_id}", who=who)
    elif route == "inbox":
        status, body, _ = call("GET", "/v1/tasks", who=who, query={"queue": "care_coordinator"})
        assert len(body["items"]) == (1 if facility == "fac-north" else 0)
    elif route == "claim":
        status, _, _ = call("POST", f"/v1/tasks/{task.task_id}/claim", who=who)
    else:  # complete an unclaimed task: the role is judged first, then the claim
        status, _, _ = call(
            "POST", f"/v1/tasks/{task.task_id}/complete", who=who, body={"decision": "PROCEED"}
        )
    assert status == expected


# -- starting an instance -------------------------------------------------------------------
BOOKED = {
    "appointment_id": "appt-1001",
    "appointment_type": "procedure",
    "scheduled_start": "2026-12-09T08:00:00+00:00",
}
START = "/v1/workflows/surgical-case-readiness/instances"


def test_start_with_the_same_idempotency_key_twice_is_one_instance(wired):
    headers = {"Idempotency-Key": "order-2026-0001"}
    status, first, _ = call("POST", START, who=claims(), body=BOOKED, headers=headers)
    assert status == 201 and first["status"] == "started"
    status, again, _ = call(
        "POST", START, who=claims(), body=BOOKED, headers={"idempotency-key": "order-2026-0001"}
    )
    assert status == 200 and again["instance_id"] == first["instance_id"]
    assert list(wired.engine.started) == [first["instance_id"]]
    payload = wired.engine.started[first["instance_id"]]
    assert payload["facility_id"] == "fac-north"


def test_a_second_start_for_the_same_subject_is_a_409(wired):
    call("POST", START, who=claims(), body=BOOKED, headers={"Idempotency-Key": "order-0001"})
    status, body, _ = call(
        "POST", START, who=claims(), body=BOOKED, headers={"Idempotency-Key": "order-0002"}
    )
    assert status == 409 and body["instance_id"] in wired.engine.started
    assert len(wired.engine.started) == 1


def test_start_needs_an_idempotency_key(wired):
    status, body, _ = call("POST", START, who=claims(), body=BOOKED)
    assert status == 400 and body["errors"][0]["field"] == "header.Idempotency-Key"


def test_start_refuses_unknown_fields_naming_them_without_values(wired):
    status, body, _ = call(
        "POST",
        START,
        who=claims(),
        body={**BOOKED, "patient_name": "Jane Doe"},
        headers={"Idempotency-Key": "order-0003"},
    )
    assert status == 400
    assert body["errors"] == [{"field": "body.patient_name", "reason": "extra_forbidden"}]
    assert "Jane Doe" not in json.dumps(body)
    assert not wired.engine.started


def test_start_refuses_what_the_trigger_filter_would_not_route(wired):
    status, _, _ = call(
        "POST",
        START,
        who=claims(),
        body={**BOOKED, "appointment_type": "consult"},
        headers={"Idempotency-Key": "order-0004"},
    )
    assert status == 422 and not wired.engine.started


def test_start_for_a_facility_the_token_does_not_name_is_403(wired):
    status, _, _ = call(
        "POST",
        START,
        who=claims(),
        body=BOOKED,
        query={"facility": "fac-south"},
        headers={"Idempotency-Key": "order-0005"},
    )
    assert status == 403 and not wired.engine.started


def test_start_with_a_token_naming_no_facility_is_403(wired):
    status, _, _ = call(
        "POST",
        START,
        who=claims(facilities=""),
        body=BOOKED,
        headers={"Idempotency-Key": "order-0008"},
    )
    assert status == 403 and not wired.engine.started


def test_start_with_several_facilities_says_which_facility(wired):
    who = claims(facilities="fac-north,fac-south")
    headers = {"Idempotency-Key": "order-0009"}
    status, body, _ = call("POST", START, who=who, body=BOOKED, headers=headers)
    assert status == 400 and body["errors"][0]["field"] == "query.facility"
    status, _, _ = call(
        "POST", START, who=who, body=BOOKED, headers=headers, query={"facility": "fac-south"}
    )
    assert status == 201
    assert next(iter(wired.engine.started.values()))["facility_id"] == "fac-south"


def test_start_for_a_facility_careflow_does_not_serve_is_422(wired):
    status, _, _ = call(
        "POST",
        START,
        who=claims(facilities="fac-elsewhere"),
        body=BOOKED,
        headers={"Idempotency-Key": "order-0006"},
    )
    assert status == 422 and not wired.engine.started


def test_an_unknown_workflow_is_404(wired):
    status, _, _ = call(
        "POST",
        "/v1/workflows/nope/instances",
        who=claims(),
        body=BOOKED,
        headers={"Idempotency-Key": "order-0007"},
    )
    assert status == 404


# -- policies, events, KPIs, errors ---------------------------------------------------------
def test_the_policy_in_force_for_the_callers_facility(wired):
    status, body, _ = call(
        "GET", "/v1/policies/surgical-readiness", who=claims(scope="careflow/policies.read")
    )
    assert status == 200
    assert body["version"] == resolve("surgical-readiness", "fac-north", store=FILES).version
    assert body["facility_id"] == "fac-north"
    status, _, _ = call("GET", "/v1/policies/nope", who=claims(scope="careflow/policies.read"))
    assert status == 404


@pytest.mark.parametrize("name", ["..", "surgical-readiness.json", "a" * 65, "Surgical"])
def test_a_policy_name_that_is_no_policy_name_is_404_without_reading_a_file(wired, name):
    status, body, _ = call(
        "GET", f"/v1/policies/{name}", who=claims(scope="careflow/policies.read")
    )
    assert status == 404 and name not in body["detail"]


def test_a_policy_for_a_facility_careflow_does_not_serve_is_422(wired):
    who = claims(scope="careflow/policies.read", facilities="../enterprise")
    assert call("GET", "/v1/policies/surgical-readiness", who=who)[0] == 422


def test_an_id_that_cannot_name_an_instance_is_404_without_echo(wired):
    status, body, _ = call("GET", "/v1/instances/" + "x" * 300, who=claims())
    assert status == 404 and "xxx" not in body["detail"]


def _event(facility: str = "fac-north", source: str = "careflow.scheduling") -> dict[str, Any]:
    return {
        "source": source,
        "detail-type": "Appointment.Booked",
        "detail": {
            "metadata": {
                "event_id": "e-1",
                "idempotency_key": "k-1",
                "facility_id": facility,
                "occurred_at": "2026-11-29T08:00:00+00:00",
                "schema_version": "1.0",
                "correlation_id": "c-1",
            },
            "data": BOOKED,
        },
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/events"),
        ("POST", "/v1/tasks/t-1/claim"),
        ("POST", "/v1/tasks/t-1/complete"),
    ],
)
def test_a_body_that_is_not_utf8_is_a_400_naming_the_body(wired, method, path):
    # found by Schemathesis: Powertools' decoded_body raised UnicodeDecodeError (a 500)
    who = claims(scope=" ".join(f"careflow/{s}" for s in SCOPES))
    status, body, _ = call(method, path, who=who, raw=b"\xff\xfe{\x80")
    assert status == 400
    assert body["errors"] == [{"field": "body", "reason": "json_invalid"}]


def test_an_event_is_validated_then_published(wired):
    who = claims(scope="careflow/events.write")
    status, body, _ = call("POST", "/v1/events", who=who, body=_event())
    assert status == 202 and body["event_id"] == "e-1"
    assert wired.publisher.types() == ["Appointment.Booked"]
    assert call("POST", "/v1/events", who=who, body=_event("fac-south"))[0] == 403
    assert call("POST", "/v1/events", who=who, body=_event(source="careflow.workflow"))[0] == 403
    bad = _event()
    bad["detail"]["data"] = {**BOOKED, "patient_name": "Jane Doe"}
    status, body, _ = call("POST", "/v1/events", who=who, body=bad)
    assert status == 400 and "Jane Doe" not in json.dumps(body)
    assert len(wired.publisher.events) == 1


def test_a_payer_notification_becomes_prior_auth_decided_events(wired, monkeypatch):
    from careflow.canonical.payer import AuthDecision, PriorAuthResponse
    from careflow.ports import ConnectorError

    class Payer:
        def decisions_from_notification(self, bundle):
            if bundle.get("type") != "history":
                raise ConnectorError("payer notification: Bundle.type is not history")
            return [PriorAuthResponse(decision=AuthDecision.APPROVED, preauth_ref="pa-1")]

    monkeypatch.setattr(wiring, "payer", Payer)
    who = claims(None, scope="careflow/payer.notify", facilities="")
    status, body, _ = call("POST", "/v1/payer/notifications", who=who, body={"type": "history"})
    assert (status, body) == (202, {"decisions": 1})
    source, detail_type, detail = wired.publisher.events[0]
    assert (source, detail_type) == ("careflow.payer", "PriorAuth.Decided")
    assert detail["data"]["preauth_ref"] == "pa-1" and detail["data"]["decision"] == "APPROVED"
    status, _, _ = call("POST", "/v1/payer/notifications", who=who, body={"type": "batch"})
    assert status == 422 and len(wired.publisher.events) == 1


def test_payer_notifications_need_a_connector_that_reads_them(wired, monkeypatch):
    monkeypatch.setattr(wiring, "payer", object)
    who = claims(None, scope="careflow/payer.notify")
    assert call("POST", "/v1/payer/notifications", who=who, body={"type": "history"})[0] == 501


def test_kpis_are_the_callers_facilities_over_the_window_with_their_definitions(wired):
    for n, facility in ((1, "fac-north"), (2, "fac-south")):
        started = instance(n, facility=facility).model_copy(
            update={"started_at": NOW - timedelta(hours=1), "updated_at": NOW}
        )
        wired.store.put_instance(started)
    status, body, _ = call("GET", "/v1/kpis", who=claims(), query={"window": "PT6H"})
    assert status == 200
    assert body["facilities"] == ["fac-north"]
    assert body["window"]["since"] == (NOW - timedelta(hours=6)).isoformat()
    (scr,) = [w for w in body["workflows"] if w["workflow_id"] == "surgical-case-readiness"]
    assert (scr["started"], scr["running"]) == (1, 1)
    assert "authorization_turnaround" in body["definitions"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"window": "seven days"}, "query.window"),
        ({"since": "2026-11-28T08:00:00"}, "query.since"),
        ({"since": "yesterday"}, "query.since"),
        ({"window": "P90D"}, "query.window"),
        ({"top": "5"}, "query.top"),
    ],
)
def test_kpi_queries_that_cannot_be_served_are_400_naming_the_field(wired, query, field):
    status, body, _ = call("GET", "/v1/kpis", who=claims(), query=query)
    assert status == 400 and [e["field"] for e in body["errors"]] == [field]


def test_kpis_for_a_facility_the_token_does_not_name_are_refused(wired):
    who = claims(facilities="fac-north")
    assert call("GET", "/v1/kpis", who=who, query={"facility": "fac-south"})[0] == 403
    assert call("GET", "/v1/kpis", who=claims(facilities=""))[0] == 403


def test_an_unexpected_error_is_one_generic_500_logged_without_its_message(
    wired, monkeypatch, caplog
):
    def broken(instance_id):
        raise RuntimeError("Jane Doe's record is corrupt")

    monkeypatch.setattr(wired.store, "get_instance", broken)
    status, body, _ = call("GET", "/v1/instances/scr-0001", who=claims())
    assert status == 500 and body["detail"] == "The request could not be served."
    assert "Jane Doe" not in json.dumps(body)
    (record,) = [r for r in caplog.records if r.getMessage() == "api request failed"]
    assert (record.error, record.route, record.exc_info) == (
        "RuntimeError",
        "/v1/instances/scr-0001",
        None,
    )
    assert "Jane Doe" not in caplog.text


def test_a_partners_client_credentials_token_reads_within_its_facilities(wired):
    wired.store.put_instance(instance(1))
    wired.store.put_instance(instance(2, facility="fac-south"))
    who = claims(None, client_id="4example5clientid6", facilities="fac-north,fac-asc")
    status, found, _ = call(
        "GET", "/v1/instances", who=who, query={"workflow": "surgical-case-readiness"}
    )
    assert status == 200 and [i["instance_id"] for i in found["items"]] == ["scr-0001"]
    assert call("GET", "/v1/instances/scr-0002", who=who)[0] == 404
