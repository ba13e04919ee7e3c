"""The ``/v1`` partner API: a Powertools REST resolver serving exactly the routes of
:mod:`careflow.api.contract`, with thin route functions over the domain.

Every route checks its caller first (claims, scope, facility; :mod:`careflow.api.auth`),
then validates its input with pydantic, then calls one domain function. Errors are RFC
9457 problem details (:mod:`careflow.api.problems`). Responses carry identifiers, codes,
statuses and times: never titles, reasons or other free text that may hold PHI.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from careflow import clock, facilities, wiring
from careflow.actors import ACTOR_PATTERN
from careflow.api.auth import Caller, ClaimedRoles, authorize
from careflow.api.contract import ROUTES, Route, deprecation_headers
from careflow.api.cors import cors_config
from careflow.api.problems import (
    CONTENT_TYPE,
    TASK_ERRORS,
    ApiProblem,
    bad_field,
    invalid,
)
from careflow.api.resolver import ThreadSafeRestResolver
from careflow.api.schemas import (
    Board,
    EventAccepted,
    Health,
    InstanceDetail,
    InstancePage,
    KpiSeries,
    NotificationAccepted,
    PartnerEvent,
    PasNotification,
    QueueReport,
    StartResult,
    TaskList,
    TaskView,
)
from careflow.domain.records import HumanTask, Instance, InstanceStatus, TaskStatus
from careflow.kpis import KpiQuery, KpiReport
from careflow.observability import logger
from careflow.policies.snapshot import PolicySnapshot

app = ThreadSafeRestResolver(cors=cors_config())  # the local gateway calls it from many threads

MAX_LIMIT = 100
_served: dict[tuple[str, str], Callable[..., Any]] = {}
_CONTRACT: dict[tuple[str, str], Route] = {(r.method, r.path): r for r in ROUTES}


def _rule(path: str) -> str:
    """The contract's API Gateway form (``{id}``) in the resolver's (``<id>``)."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says of a route (:mod:`careflow.api.openapi`): its query
    model, its body (a model, or a function naming the models it may be), the model and
    statuses of its success, and the problem statuses the route itself answers (the
    gateway's 401/403/413/429 are added from the contract)."""

    name: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | Callable[[], Sequence[type[BaseModel]]] | None = None
    body_required: bool = True
    response: type[BaseModel] | None = None
    status: tuple[int, ...] = (200,)
    errors: tuple[int, ...] = ()
    headers: tuple[str, ...] = ()  # required request headers
    media_type: str = "application/json"  # of the body and the success (text routes)


OPERATIONS: dict[tuple[str, str], Operation] = {}


def route(
    method: str,
    path: str,
    *,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | Callable[[], Sequence[type[BaseModel]]] | None = None,
    body_required: bool = True,
    response: type[BaseModel] | None = None,
    status: tuple[int, ...] = (200,),
    errors: tuple[int, ...] = (),
    headers: tuple[str, ...] = (),
    media_type: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Serves the contract's route ``method path`` with ``fn(caller, **path_params)``,
    after the caller's claims and the route's scope are checked; the keywords describe
    it for the OpenAPI document. A deprecated route's answers carry the Deprecation,
    Sunset and Link headers; after its sunset it is 410 Gone."""
    if (method, path) not in _CONTRACT:  # a route not in the contract fails at import
        raise KeyError(f"{method} {path} is not a /v1 route in careflow.api.contract")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        def served(**params: str) -> Any:
            contract = _CONTRACT[(method, path)]
            notice = deprecation_headers(contract)
            if not notice:
                caller = authorize(app.current_event.raw_event, contract.scope)
                return fn(caller, **params)
            try:
                if contract.sunset is not None and clock.now().date() >= contract.sunset:
                    raise ApiProblem(410, "Gone", "This route is retired: see its successor.")
                caller = authorize(app.current_event.raw_event, contract.scope)
                answer = fn(caller, **params)
            except ApiProblem as problem:
                problem.headers.update(notice)
                raise
            if not isinstance(answer, Response):
                answer = _json(answer, 200)
            answer.headers.update(notice)
            return answer

        served.__name__ = fn.__name__
        _served[(method, path)] = served
        OPERATIONS[(method, path)] = Operation(
            fn.__name__, query, body, body_required, response, status, errors, headers, media_type
        )
        app.route(_rule(path), method=method)(served)
        return fn

    return register


# -- input ----------------------------------------------------------------------------------
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
Text = Annotated[str, StringConstraints(max_length=2000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _query(model: type[BaseModel]) -> Any:
    params = app.current_event.query_string_parameters or {}
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise invalid(exc, prefix="query") from None


def _raw_body() -> str | None:
    try:
        return app.current_event.decoded_body
    except UnicodeDecodeError:  # JSON is UTF-8 (RFC 8259)
        raise bad_field("body", "json_invalid", "The request body is not UTF-8 JSON.") from None


def _json_body() -> Any:
    raw = _raw_body()
    if not raw:
        raise bad_field("body", "missing", "The request needs a JSON body.")
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_field("body", "json_invalid", "The request body is not JSON.") from None


def _body(model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(_json_body())
    except ValidationError as exc:
        raise invalid(exc, prefix="body") from None


_PATH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _path_id(value: str, what: str, pattern: re.Pattern[str] = _PATH_ID) -> str:
    """A path parameter that cannot name anything (too long, odd characters) is a 404
    like any unknown one; 404 details never repeat what the caller sent."""
    if not pattern.match(value):
        raise ApiProblem(404, "Not Found", f"There is no such {what}.")
    return value


def _facility(caller: Caller, requested: str | None) -> str:
    """The one facility a write or a policy read is for: ``requested``, which the token
    must name, or the token's only facility."""
    _needs_facilities(caller)
    if requested is not None:
        if requested not in caller.facilities:
            raise ApiProblem(403, "Forbidden", "The token does not name that facility.")
        return requested
    if len(caller.facilities) != 1:
        raise bad_field(
            "query.facility",
            "missing",
            "The token names several facilities: say which with ?facility=.",
        )
    return next(iter(caller.facilities))


def _needs_facilities(caller: Caller) -> None:
    if not caller.facilities:
        raise ApiProblem(403, "Forbidden", "The token names no facility (custom:facilities).")


def _facilities_asked(caller: Caller, asked: str | None) -> frozenset[str]:
    _needs_facilities(caller)
    if asked is None:
        return caller.facilities
    if asked not in caller.facilities:
        raise ApiProblem(403, "Forbidden", "The token does not name that facility.")
    return frozenset({asked})


def _caller_roles(caller: Caller) -> frozenset[str] | None:
    """The caller's roles: a person's from the directory, narrowed by the token; None for
    a token that is not a person's and names no roles (a partner's client)."""
    from careflow.actors import directory

    if caller.actor is None:
        return caller.roles
    return ClaimedRoles(directory(), caller).roles_of(caller.actor)


# -- output ---------------------------------------------------------------------------------
def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _task_view(task: HumanTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "instance_id": task.instance_id,
        "workflow_id": task.workflow_id,
        "facility_id": task.facility_id,
        "queue": task.queue,
        "status": task.status.value,
        "created_at": _time(task.created_at),
        "due_at": _time(task.due_at),
        "escalation_level": task.escalation_level,
        "allowed_decisions": list(task.allowed_decisions),
        "claimed_by": task.claimed_by,
        "decision": task.decision,
        "completed_by": task.completed_by,
        "completed_at": _time(task.completed_at),
        "policy_version": task.policy_version,
        "priority": task.priority if task.priority is not None else 0.0,
        "prioritized": task.priority is not None,
        "priority_reasons": list(task.priority_reasons),
    }


def _instance_view(instance: Instance) -> dict[str, Any]:
    return {
        "instance_id": instance.instance_id,
        "workflow_id": instance.workflow_id,
        "facility_id": instance.facility_id,
        "subject_type": instance.subject_type,
        "subject_id": instance.subject_id,
        "status": instance.status.value,
        "outcome": instance.outcome,
        "started_at": _time(instance.started_at),
        "updated_at": _time(instance.updated_at),
        "scheduled_start": _time(instance.scheduled_start),
        "service_line": instance.service_line,
    }


def _need_to_know(caller: Caller) -> Any:
    """Whether the caller may see an instance at all (its facility aside): a person whose
    roles neither work nor supervise one of its workflow's queues (at the instance's
    facility, by the policy in force there) may not (need to know: its subject is a
    patient's case, encounter or account). A token naming no person and no roles (a
    partner's client) sees what its scopes allow (:class:`careflow.ops.NeedToKnow`)."""
    from careflow import ops
    from careflow.kit.registry import workflows

    policy_of = {wf.id: wf.policy for wf in workflows()}
    return ops.NeedToKnow(_caller_roles(caller), policy_of, wiring.policies())


def _json(body: Mapping[str, Any], status: int = 201) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


# -- errors ---------------------------------------------------------------------------------
def _problem(problem: ApiProblem) -> Response:
    return Response(
        status_code=problem.status,
        content_type=CONTENT_TYPE,
        body=problem.body(),
        headers=dict(problem.headers) or None,
    )


@app.exception_handler(ApiProblem)
def _on_problem(exc: ApiProblem) -> Response:
    return _problem(exc)


@app.not_found
def _on_not_found(exc: Exception) -> Response:
    return _problem(ApiProblem(404, "Not Found", "There is no such route in /v1."))


@app.exception_handler(Exception)
def _on_error(exc: Exception) -> Response:
    """One generic line out; in the log the route, the error's type and where it was
    raised, never its message (it may quote a record) nor the request."""
    event = app.current_event
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else ""
    logger.error(
        "api request failed",
        extra={
            "route": event.resource,
            "method": event.http_method,
            "request_id": event.request_context.request_id,
            "error": type(exc).__name__,
            "at": where,
        },
    )
    return _problem(ApiProblem(500, "Internal Server Error", "The request could not be served."))


# -- health ---------------------------------------------------------------------------------
@route("GET", "/v1/health", response=Health, errors=(503,))
def health(caller: Caller | None) -> Any:
    try:
        wiring.store().get_instance("health-probe")
    except Exception as exc:
        logger.warning(
            "health: the state table does not answer", extra={"error": type(exc).__name__}
        )
        raise ApiProblem(503, "Service Unavailable", "The state table does not answer.") from None
    return {"status": "ok"}


# -- instances ------------------------------------------------------------------------------
@route("GET", "/v1/instances/{id}", response=InstanceDetail)
def get_instance(caller: Caller, id: str) -> Any:
    store = wiring.store()
    instance, milestones = store.instance_with_milestones(_path_id(id, "instance"))
    if (
        instance is None
        or instance.facility_id not in caller.facilities
        or not _need_to_know(caller).sees(instance.workflow_id, instance.facility_id)
    ):
        raise ApiProblem(404, "Not Found", "There is no such instance.")  # never 403
    tasks = [
        t for t in store.tasks_for_instance(id) if t.status in (TaskStatus.OPEN, TaskStatus.CLAIMED)
    ]
    return {
        **_instance_view(instance),
        "milestones": [
            {"name": m.name, "status": m.status, "at": _time(m.at)}
            for m in sorted(milestones, key=lambda m: m.at)
        ],
        "open_tasks": [_task_view(t) for t in sorted(tasks, key=lambda t: t.due_at)],
    }


class InstanceSearch(_Input):
    workflow: Id | None = None
    facility: Id | None = None
    status: InstanceStatus | None = None
    subject: (
        Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}/[A-Za-z0-9._:-]{1,128}$")] | None
    ) = None
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    next: Annotated[str, StringConstraints(max_length=512)] | None = None


def _fingerprint(search: InstanceSearch, caller: Caller) -> str:
    basis = search.model_dump(exclude={"limit", "next"}, mode="json")
    basis["facilities"] = sorted(caller.facilities)
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def _cursor(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str | None, fingerprint: str) -> int:
    if token is None:
        return 0
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset = doc["o"]
        same = doc["q"] == fingerprint
    except (ValueError, binascii.Error, KeyError, TypeError):
        offset, same = -1, False
    if not same or not isinstance(offset, int) or offset < 0:
        raise bad_field(
            "query.next",
            "invalid",
            "The next token is not one this search returned: repeat the search without it.",
        )
    return offset


def _matches(search: InstanceSearch, caller: Caller) -> list[Instance]:
    store = wiring.store()
    found: Iterable[Instance]
    if search.subject is not None:
        subject_type, subject_id = search.subject.split("/", 1)
        found = store.instances_for_subject(subject_type, subject_id)
    elif search.workflow is not None:
        statuses = [search.status] if search.status else list(InstanceStatus)
        found = [i for s in statuses for i in store.instances_by_status(search.workflow, s.value)]
    else:
        raise bad_field(
            "query.workflow",
            "missing",
            "Search by workflow (optionally with status) or by subject (type/id).",
        )
    facilities_in = caller.facilities
    if search.facility is not None:
        facilities_in = facilities_in & {search.facility}
    need_to_know = _need_to_know(caller)
    kept = [
        i
        for i in found
        if i.facility_id in facilities_in
        and need_to_know.sees(i.workflow_id, i.facility_id)
        and (search.workflow is None or i.workflow_id == search.workflow)
        and (search.status is None or i.status is search.status)
    ]
    return sorted(kept, key=lambda i: (-i.updated_at.timestamp(), i.instance_id))


@route("GET", "/v1/instances", query=InstanceSearch, response=InstancePage)
def search_instances(caller: Caller) -> Any:
    search: InstanceSearch = _query(InstanceSearch)
    fingerprint = _fingerprint(search, caller)
    offset = _offset(search.next, fingerprint)
    matches = _matches(search, caller)
    page = matches[offset : offset + search.limit]
    more = offset + search.limit < len(matches)
    return {
        "items": [_instance_view(i) for i in page],
        "next": _cursor(offset + search.limit, fingerprint) if more else None,
    }


# -- tasks ----------------------------------------------------------------------------------
class Inbox(_Input):
    queue: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    facility: Id | None = None
    status: Literal["OPEN", "CLAIMED"] | None = None


@route("GET", "/v1/tasks", query=Inbox, response=TaskList)
def inbox(caller: Caller) -> Any:
    query: Inbox = _query(Inbox)
    wanted = sorted(caller.facilities)
    if query.facility is not None:
        wanted = [query.facility] if query.facility in caller.facilities else []
    store = wiring.store()
    tasks = [t for f in wanted for t in store.open_tasks(query.queue, f)]
    if query.status is not None:
        tasks = [t for t in tasks if t.status.value == query.status]
    from careflow.ops import inbox_order

    tasks.sort(key=inbox_order)
    return {"items": [_task_view(t) for t in tasks]}


def _visible_task(caller: Caller, task_id: str) -> HumanTask:
    task = wiring.store().get_task(_path_id(task_id, "task"))
    if task is None or task.facility_id not in caller.facilities:
        raise ApiProblem(404, "Not Found", "There is no such task.")
    return task


def _actor(caller: Caller) -> str:
    if caller.actor is None:
        raise ApiProblem(
            403,
            "Forbidden",
            "Tasks are worked by a named person: the token carries no usable username.",
        )
    return caller.actor


def _task_action(caller: Caller, task_id: str, action: Callable[..., HumanTask], **kw: Any) -> Any:
    from careflow.actors import directory
    from careflow.domain.tasks import TaskError

    _visible_task(caller, task_id)
    try:
        task = action(
            wiring.store(),
            task_id=task_id,
            actor=_actor(caller),
            now=clock.now(),
            policies=wiring.policies(),
            directory=ClaimedRoles(directory(), caller),
            **kw,
        )
    except TaskError as exc:
        status, title = TASK_ERRORS.get(exc.kind, (500, "Internal Server Error"))
        raise ApiProblem(status, title, str(exc)) from None
    logger.info("task action", extra={"task_id": task_id, "status": task.status.value})
    return _task_view(task)


TASK_STATUSES = tuple(sorted({status for status, _ in TASK_ERRORS.values()} - {403, 404}))


class ClaimBody(_Input):
    reason: Text = ""


DocumentId = Annotated[
    str, StringConstraints(pattern=r"^(DocumentReference/)?[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
]


class CompleteBody(_Input):
    decision: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]{0,63}$")]
    reason: Text = ""
    # With ATTACHED (a prior authorization's documents task): the ids of the patient's
    # documents the person attached, each checked against the patient's documents.
    documents: Annotated[list[DocumentId], Field(min_length=1, max_length=50)] | None = None


class ReassignBody(_Input):
    to: Annotated[str, StringConstraints(pattern=ACTOR_PATTERN)]
    reason: Text


def _resuming(action: Callable[..., HumanTask]) -> Callable[..., HumanTask]:
    """A task action that ends the task and resumes its workflow (through the engine)."""
    engine = wiring.engine()
    return lambda store, **kw: action(store, engine, **kw)


def _optional_body(model: type[BaseModel]) -> Any:
    if not _raw_body():
        return _with_body(model, {})
    return _body(model)


def _with_body(model: type[BaseModel], doc: Any) -> Any:
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise invalid(exc, prefix="body") from None


@route(
    "POST",
    "/v1/tasks/{id}/claim",
    body=ClaimBody,
    body_required=False,
    response=TaskView,
    errors=TASK_STATUSES,
)
def claim(caller: Caller, id: str) -> Any:
    from careflow.domain.tasks import claim_task

    body: ClaimBody = _optional_body(ClaimBody)
    return _task_action(caller, id, claim_task, reason=body.reason)


@route(
    "POST", "/v1/tasks/{id}/complete", body=CompleteBody, response=TaskView, errors=TASK_STATUSES
)
def complete(caller: Caller, id: str) -> Any:
    from careflow.domain.tasks import complete_task

    body: CompleteBody = _body(CompleteBody)
    action = _resuming(complete_task)
    extra = {"documents": body.documents} if body.documents is not None else {}
    return _task_action(caller, id, action, decision=body.decision, reason=body.reason, **extra)


@route(
    "POST", "/v1/tasks/{id}/reassign", body=ReassignBody, response=TaskView, errors=TASK_STATUSES
)
def reassign(caller: Caller, id: str) -> Any:
    from careflow.domain.tasks import reassign_task

    body: ReassignBody = _body(ReassignBody)
    return _task_action(caller, id, reassign_task, to=body.to, reason=body.reason)


class ReasonBody(_Input):
    """Release and acknowledge: only why (audited); the actor is the token's person."""

    reason: Text = ""


@route(
    "POST",
    "/v1/tasks/{id}/release",
    body=ReasonBody,
    body_required=False,
    response=TaskView,
    errors=TASK_STATUSES,
)
def release(caller: Caller, id: str) -> Any:
    from careflow.domain.tasks import release_task

    body: ReasonBody = _optional_body(ReasonBody)
    return _task_action(caller, id, release_task, reason=body.reason)


@route(
    "POST",
    "/v1/tasks/{id}/acknowledge",
    body=ReasonBody,
    body_required=False,
    response=TaskView,
    errors=TASK_STATUSES,
)
def acknowledge(caller: Caller, id: str) -> Any:
    from careflow.domain.tasks import acknowledge_task

    body: ReasonBody = _optional_body(ReasonBody)
    return _task_action(caller, id, _resuming(acknowledge_task), reason=body.reason)


# -- starting an instance -------------------------------------------------------------------
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class StartQuery(_Input):
    facility: Id | None = None


def _start_trigger(workflow_id: str) -> Any:
    from careflow.kit.registry import workflows

    for wf in workflows():
        if wf.id == workflow_id:
            for trigger in wf.triggers:
                if trigger.effect == "start":
                    return trigger
    raise ApiProblem(404, "Not Found", "There is no such workflow to start.")


def _pattern_allows(pattern: Mapping[str, Any], doc: Any) -> bool:
    """The trigger's EventBridge detail filter, for the exact-value lists it uses; any
    other filter form refuses (intake relies on the rule to have applied it)."""
    if not isinstance(doc, Mapping):
        return False
    for key, allowed in pattern.items():
        if isinstance(allowed, Mapping):
            if not _pattern_allows(allowed, doc.get(key)):
                return False
        elif isinstance(allowed, list) and all(isinstance(v, str | int | bool) for v in allowed):
            if doc.get(key) not in allowed:
                return False
        else:
            return False
    return True


def start_bodies() -> tuple[type[BaseModel], ...]:
    """The data of the workflow's starting event, under that detail-type's schema (one
    of these, by workflow: docs/events.md)."""
    from careflow.kit.registry import event_schemas, workflows

    schemas = event_schemas()
    types = {t.detail_type for wf in workflows() for t in wf.triggers if t.effect == "start"}
    return tuple(schemas[name] for name in sorted(types))


@route(
    "POST",
    "/v1/workflows/{workflow}/instances",
    query=StartQuery,
    body=start_bodies,
    response=StartResult,
    status=(201, 200),
    errors=(409, 422),
    headers=("Idempotency-Key",),
)
def start_instance(caller: Caller, workflow: str) -> Any:
    from careflow.domain import intake
    from careflow.events.envelope import EnvelopeError, envelope
    from careflow.kit.registry import event_schemas
    from careflow.settings import settings

    key = app.current_event.headers.get("Idempotency-Key")  # case-insensitive
    if not key or not IDEMPOTENCY_KEY.match(key):
        raise bad_field(
            "header.Idempotency-Key",
            "missing" if not key else "string_pattern_mismatch",
            "Starting an instance needs an Idempotency-Key header (8-128 of A-Z a-z 0-9 . _ : -).",
        )
    trigger = _start_trigger(workflow)
    facility_id = _facility(caller, _query(StartQuery).facility)
    data = _json_body()
    _with_body(event_schemas()[trigger.detail_type], data)  # 400 naming the fields
    if trigger.detail and not _pattern_allows(trigger.detail, {"data": data}):
        raise ApiProblem(
            422,
            "Unprocessable Content",
            f"{workflow} does not start for this {trigger.detail_type}: its trigger's "
            "filter does not match.",
        )
    scoped_key = f"api:{caller.principal}:{key}"
    event_id = "api-" + hashlib.sha256(scoped_key.encode()).hexdigest()[:32]
    event = {
        "source": trigger.source,
        "detail-type": trigger.detail_type,
        "detail": envelope(
            event_id=event_id,
            idempotency_key=scoped_key,
            facility_id=facility_id,
            occurred_at=clock.now(),
            correlation_id=event_id,
            data=data,
        ),
    }
    try:
        request = intake.accept(
            {"workflow_id": workflow, "event": event},
            state_machine_arns=settings().state_machine_arns,
        )
    except EnvelopeError as exc:
        raise ApiProblem(422, "Unprocessable Content", exc.reason) from None
    assert isinstance(request, intake.StartRequest)  # the start trigger's detail-type
    result = intake.start(request, engine=wiring.engine(), store=wiring.store(), now=clock.now())
    logger.info(
        "api start",
        extra={"instance_id": result.get("instance_id"), "status": result["status"]},
    )
    if result["status"] == "started":
        return _json({"instance_id": result["instance_id"], "status": "started"})
    if result["status"] == "duplicate" and result["instance_id"] == request.instance_id:
        return _json({"instance_id": result["instance_id"], "status": "started"}, 200)
    if result["status"] == "duplicate":
        raise ApiProblem(
            409,
            "Conflict",
            f"The subject already has an instance of {workflow} at this facility.",
            extra={"instance_id": result["instance_id"]},
        )
    raise ApiProblem(409, "Conflict", str(result.get("reason", "The start was refused.")))


# -- events, payer notifications ------------------------------------------------------------
PARTNER_SOURCES = frozenset(
    {"careflow.ehr", "careflow.erp", "careflow.payer", "careflow.scheduling", "careflow.workforce"}
)


@route(
    "POST",
    "/v1/events",
    body=PartnerEvent,
    response=EventAccepted,
    status=(202,),
    errors=(422,),
)
def put_event(caller: Caller) -> Any:
    from careflow.events.envelope import EnvelopeError, parse_event

    _needs_facilities(caller)
    doc = _json_body()
    try:
        event = parse_event(doc)
    except EnvelopeError as exc:
        raise ApiProblem(400, "Bad Request", exc.reason) from None
    if event.source not in PARTNER_SOURCES:
        raise ApiProblem(403, "Forbidden", f"Partners may not put {event.source} events.")
    if event.metadata.facility_id not in caller.facilities:
        raise ApiProblem(403, "Forbidden", "The token does not name the event's facility.")
    if not facilities.is_known(event.metadata.facility_id):
        raise ApiProblem(
            422,
            "Unprocessable Content",
            "detail.metadata.facility_id is not a facility careflow serves.",
        )
    wiring.publisher().publish(event.source, event.detail_type, doc["detail"])
    logger.info("api event", extra={"event_id": event.metadata.event_id})
    return _json({"event_id": event.metadata.event_id, "status": "accepted"}, 202)


@route(
    "POST",
    "/v1/payer/notifications",
    body=PasNotification,
    response=NotificationAccepted,
    status=(202,),
    errors=(422, 501),
)
def payer_notification(caller: Caller) -> Any:
    from careflow.domain.payer_decisions import decided_event_data
    from careflow.events.envelope import envelope
    from careflow.ports import ConnectorError

    payer = wiring.payer()
    if not hasattr(payer, "decisions_from_notification"):
        raise ApiProblem(
            501,
            "Not Implemented",
            "The payer connector in use reads no notifications (CAREFLOW_CONNECTORS=http does).",
        )
    bundle = _json_body()
    now = clock.now()
    try:
        decisions = payer.decisions_from_notification(bundle)
    except ConnectorError as exc:
        raise ApiProblem(422, "Unprocessable Content", str(exc)) from None
    for d in decisions:
        key = f"{d.preauth_ref}:decided"
        wiring.publisher().publish(
            "careflow.payer",
            "PriorAuth.Decided",
            envelope(
                event_id=key,
                idempotency_key=key,
                facility_id="payer",
                occurred_at=now,
                correlation_id=key,
                data=decided_event_data(d, now),
            ),
        )
    return _json({"decisions": len(decisions)}, 202)


# -- HL7 v2 over HTTPS ----------------------------------------------------------------------
ER7 = "x-application/hl7-v2+er7"


@route("POST", "/v1/hl7v2", status=(200,), errors=(400, 413, 415), media_type=ER7)
def post_hl7v2(caller: Caller) -> Any:
    """One ER7 message in, its original-mode ACK out: 200 for AA and AE (the ACK says
    which), 400 for AR. The same :func:`careflow.adapters.hl7v2.receive` as MLLP."""
    from careflow.adapters.hl7v2 import receive

    _needs_facilities(caller)
    headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (ER7, "text/plain"):
        raise ApiProblem(415, "Unsupported Media Type", f"Send the message as {ER7} or text/plain.")
    event = app.current_event.raw_event
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw: bytes | str = base64.b64decode(body)
        except (binascii.Error, ValueError):
            raise bad_field("body", "invalid", "The body is not valid base64.") from None
    else:
        raw = body
    if not raw:
        raise bad_field("body", "missing", "The request needs an ER7 message as its body.")
    receipt = receive(
        raw,
        now=clock.now(),
        store=wiring.store(),
        publisher=wiring.publisher(),
        facilities=frozenset(caller.facilities),
    )
    logger.info("api hl7v2", extra={"msh10": receipt.control_id, "ack": receipt.code})
    return Response(
        status_code=400 if receipt.code == "AR" else 200,
        content_type=ER7,
        body=receipt.ack,
    )


# -- policies, KPIs -------------------------------------------------------------------------
class PolicyQuery(_Input):
    facility: Id | None = None


@route("GET", "/v1/policies/{name}", query=PolicyQuery, response=PolicySnapshot, errors=(422,))
def get_policy(caller: Caller, name: str) -> Any:
    from careflow.policies import PolicyError, resolve
    from careflow.policies.versions import NAME_PATTERN

    _path_id(name, "policy", re.compile(NAME_PATTERN))  # a file name in the packaged store
    facility_id = _facility(caller, _query(PolicyQuery).facility)
    if not facilities.is_known(facility_id):
        raise ApiProblem(422, "Unprocessable Content", "The facility is not one careflow serves.")
    try:
        snapshot = resolve(name, facility_id, store=wiring.policies())
    except PolicyError:
        raise ApiProblem(404, "Not Found", "There is no such policy in force.") from None
    return snapshot.model_dump(mode="json")


@route("GET", "/v1/kpis", query=KpiQuery, response=KpiReport)
def kpis(caller: Caller) -> Any:
    """The workflows' KPIs at the caller's facilities (or the one asked for) over a window:
    :mod:`careflow.kpis`, its definitions in the answer."""
    from careflow import kpis as catalogue
    from careflow.kit.registry import workflows

    query: KpiQuery = _query(KpiQuery)
    wanted = _facilities_asked(caller, query.facility)
    now = clock.now()
    try:
        since = catalogue.window_start(query.since, query.window, now)
    except catalogue.WindowError as exc:
        raise bad_field(exc.field, exc.reason, str(exc)) from None
    return catalogue.kpis(
        wiring.store(), [wf.id for wf in workflows()], wanted, since=since, now=now
    )


# -- the operations page's reads (careflow.ops) ---------------------------------------------
class BoardQuery(_Input):
    facility: Id | None = None


class QueuesQuery(_Input):
    facility: Id | None = None


class SeriesQuery(_Input):
    facility: Id | None = None
    interval: Literal["PT1H", "PT6H", "PT12H", "P1D", "P7D"] = "P1D"
    points: int = Field(default=14, ge=1, le=60)


@route("GET", "/v1/board", query=BoardQuery, response=Board)
def board(caller: Caller) -> Any:
    """The instances not yet ended, by workflow and latest milestone (:mod:`careflow.ops`).
    Subjects show only to the roles that work the workflow's queues."""
    from careflow import ops
    from careflow.kit.registry import workflows

    at = _facilities_asked(caller, _query(BoardQuery).facility)
    specs = list(workflows())
    need_to_know = _need_to_know(caller)
    visible = {wf.id: any(need_to_know.sees(wf.id, f) for f in sorted(at)) for wf in specs}
    return ops.board(
        wiring.store(), [(wf.id, wf.title) for wf in specs], at, visible=visible, now=clock.now()
    )


@route("GET", "/v1/queues", query=QueuesQuery, response=QueueReport)
def task_queues(caller: Caller) -> Any:
    """The open tasks by queue: depth, overdue, aging buckets, and whether the caller may
    work or supervise each (:mod:`careflow.ops`)."""
    from careflow import ops
    from careflow.domain.tasks import queue_roles
    from careflow.kit.registry import workflows

    at = _facilities_asked(caller, _query(QueuesQuery).facility)
    store = wiring.store()
    live = ops.live_instances(store, [wf.id for wf in workflows()], at)
    tasks = [t for i in live for t in store.tasks_for_instance(i.instance_id)]
    seen: dict[tuple[str, str, str], ops.QueueAccess] = {}

    def access(task: HumanTask) -> ops.QueueAccess:
        key = (task.policy_version, task.facility_id, task.queue)
        if key not in seen:
            found = queue_roles(task, wiring.policies())
            seen[key] = ops.QueueAccess(found.work, found.supervise)
        return seen[key]

    return ops.queues(tasks, access=access, caller_roles=_caller_roles(caller), now=clock.now())


@route("GET", "/v1/kpis/series", query=SeriesQuery, response=KpiSeries, errors=(400,))
def kpi_series(caller: Caller) -> Any:
    """Per interval: instances started and ended by workflow, tasks opened, and the SLA of
    the tasks due (:func:`careflow.ops.series`)."""
    from careflow import ops
    from careflow.kit.registry import workflows
    from careflow.kpis import parse_duration

    query: SeriesQuery = _query(SeriesQuery)
    at = _facilities_asked(caller, query.facility)
    interval = parse_duration(query.interval)
    try:
        return ops.series(
            wiring.store(),
            [wf.id for wf in workflows()],
            at,
            interval=interval,
            points=query.points,
            now=clock.now(),
        )
    except ValueError as exc:
        raise bad_field("query.points", "out_of_range", str(exc).capitalize() + ".") from None


def served() -> set[tuple[str, str]]:
    """(method, path) of every route this app serves, in the contract's form."""
    return set(_served)


_missing = set(_CONTRACT) - set(_served)
if _missing:  # pragma: no cover - a contract route without a function fails at import
    raise RuntimeError(f"/v1 routes in the contract but not served: {sorted(_missing)}")
