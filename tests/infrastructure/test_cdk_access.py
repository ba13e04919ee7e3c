"""Least privilege on the table and the bus, read from the synthesized IAM and bus policies.

Each function's table actions and partition-key prefixes, and the event sources it may
put, are derived from the catalog (a step's ports, stacks/permissions.py); these tests
check the templates against that derivation and against what must never be granted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow.catalog import CATALOG, INTAKE, PAYER_DECISION, all_functions
from careflow.kit.spec import FunctionSpec, step_function
from careflow.kit.steps import lookup
from stacks.constructs.bus_access import PARTNER_SOURCES
from stacks.permissions import (
    AUDIT_PROTECTED,
    WORKFLOW_SOURCE,
    CatalogPermissionError,
    access_of,
)
from tests.infrastructure.infra_support import (
    Synth,
    as_list,
    logical_id_of,
    policy_statements,
    render,
)

FUNCTIONS = pytest.mark.parametrize("name", sorted(all_functions()))
LEADING_KEYS = "dynamodb:LeadingKeys"


def _role_of(dev: Synth, resource_type: str, **properties: Any) -> str:
    logical_id = logical_id_of(dev, "workflows", resource_type, **properties)
    props = dev.templates["workflows"]["Resources"][logical_id]["Properties"]
    arn = props.get("Role") or props["RoleArn"]
    return str(render(arn)).strip("<>").split(".")[0]


def _function_statements(dev: Synth, name: str) -> list[dict[str, Any]]:
    role = _role_of(dev, "AWS::Lambda::Function", FunctionName=f"careflow-dev-{name}")
    return policy_statements(dev, role, "workflows")


def _state_machine_statements(dev: Synth, name: str) -> list[dict[str, Any]]:
    role = _role_of(
        dev, "AWS::StepFunctions::StateMachine", StateMachineName=f"careflow-dev-{name}"
    )
    return policy_statements(dev, role, "workflows")


def _allowed(statements: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s.get("Effect", "Allow") == "Allow"
        and any(a.startswith(prefix) for a in as_list(s["Action"]))
    ]


def _table_grants(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Action -> partition-key patterns it is allowed on."""
    grants: dict[str, set[str]] = {}
    for statement in _allowed(statements, "dynamodb:"):
        condition = statement.get("Condition", {})
        assert set(condition) == {"ForAllValues:StringLike"}, statement
        patterns = set(as_list(condition["ForAllValues:StringLike"][LEADING_KEYS]))
        for action in as_list(statement["Action"]):
            grants.setdefault(action, set()).update(patterns)
    return grants


def _expected_grants(spec: FunctionSpec) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    for grant in access_of(spec).items:
        for action in grant.actions:
            expected.setdefault(action, set()).update(f"{p}*" for p in grant.prefixes)
    return expected


# --- item 5: the table ------------------------------------------------------------------


@FUNCTIONS
def test_each_function_gets_exactly_the_table_access_its_ports_need(dev: Synth, name: str) -> None:
    spec = all_functions()[name]
    grants = _table_grants(_function_statements(dev, name))
    assert grants == _expected_grants(spec)
    indexes = {grant.sid: grant.index for grant in access_of(spec).items}
    for statement in _allowed(_function_statements(dev, name), "dynamodb:"):
        # The table itself, or the one index a grant names; never a wildcard.
        (resource,) = as_list(statement["Resource"])
        text = str(render(resource))
        assert "*" not in text
        index = indexes.get(statement["Sid"])
        assert text.endswith(f"/index/{index}") if index else "/index/" not in text


def test_step_grants_follow_the_ports_in_the_step_signatures(dev: Synth) -> None:
    for spec in all_functions().values():
        if spec.step is None:
            continue
        ports = set(lookup(spec.step).ports)
        grants = _table_grants(_function_statements(dev, spec.name))
        assert ("INST#*" in grants.get("dynamodb:PutItem", set())) == ("store" in ports)
        # a model's step reads the ai-models policy in force, as a policies step does
        reads_policies = bool({"policies", "predictor"} & ports)
        assert ("POLICY#*" in grants.get("dynamodb:GetItem", set())) == reads_policies
        # Only read, never write, policy versions (they are published by operators).
        assert "POLICY#*" not in grants.get("dynamodb:PutItem", set())


def test_no_function_or_state_machine_has_a_wildcard_or_batch_write_on_the_table(
    dev: Synth,
) -> None:
    roles = [_function_statements(dev, n) for n in all_functions()]
    roles += [_state_machine_statements(dev, wf.name) for wf in CATALOG]
    for statements in roles:
        for statement in _allowed(statements, "dynamodb:"):
            actions = as_list(statement["Action"])
            assert not any("*" in action for action in actions), actions
            assert "dynamodb:BatchWriteItem" not in actions
            assert "dynamodb:Scan" not in actions and "dynamodb:DescribeTable" not in actions


def test_no_function_may_update_or_delete_an_instance_partition_where_audit_entries_live(
    dev: Synth,
) -> None:
    for name in all_functions():
        statements = _function_statements(dev, name)
        grants = _table_grants(statements)
        for action in AUDIT_PROTECTED:
            assert not any(p.startswith("INST#") or p == "*" for p in grants.get(action, set()))
        if not grants:
            continue
        (deny,) = [s for s in statements if s.get("Effect") == "Deny"]
        assert deny["Sid"] == "AuditEntriesAreAppendOnly"
        assert sorted(as_list(deny["Action"])) == sorted(AUDIT_PROTECTED)
        assert deny["Condition"] == {"ForAnyValue:StringLike": {LEADING_KEYS: ["INST#*"]}}


def test_intake_may_delete_only_its_idempotency_records(dev: Synth) -> None:
    grants = _table_grants(_function_statements(dev, INTAKE.name))
    # Powertools deletes an in-progress idempotency record when the start fails, so the
    # retry is not locked out; nothing else.
    assert grants["dynamodb:DeleteItem"] == {"IDEMPOTENCY#*"}
    assert grants["dynamodb:UpdateItem"] == {"IDEMPOTENCY#*"}
    # One instance per subject; a reschedule or cancellation updates the instance (a
    # conditional put), appends its entries and closes its tasks.
    assert grants["dynamodb:PutItem"] == {
        "IDEMPOTENCY#*",
        "PARKED#*",
        "SUBJECT#*",
        "INST#*",
        "TASK#*",
    }
    # The instance's tasks are found through GSI1 (partition ITASK#<instance>) only.
    assert grants["dynamodb:Query"] == {"INST#*", "TASK#*", "ITASK#*"}


def test_intake_may_stop_only_the_workflows_executions(dev: Synth) -> None:
    statements = [
        s
        for s in _allowed(_function_statements(dev, INTAKE.name), "states:")
        if "states:StopExecution" in as_list(s["Action"])
    ]
    (stop,) = statements
    resources = [str(render(r)) for r in as_list(stop["Resource"])]
    assert sorted(as_list(stop["Action"])) == ["states:DescribeExecution", "states:StopExecution"]
    assert len(resources) == len(CATALOG)
    for wf in CATALOG:
        assert any(f":execution:careflow-dev-{wf.name}:*" in r for r in resources), resources


def test_payer_decision_appends_audit_and_takes_waits_only(dev: Synth) -> None:
    grants = _table_grants(_function_statements(dev, PAYER_DECISION.name))
    assert grants == {
        "dynamodb:DeleteItem": {"WAIT#*"},
        "dynamodb:GetItem": {"WAIT#*"},  # peeks at the wait before the payer's $inquire
        "dynamodb:PutItem": {"WAIT#*", "INST#*", "PARKED#*"},
    }


def test_only_task_token_answerers_may_delete_and_only_waits(dev: Synth) -> None:
    for name, spec in all_functions().items():
        deletes = _table_grants(_function_statements(dev, name)).get("dynamodb:DeleteItem")
        if spec.answers_task_tokens:
            assert deletes == {"WAIT#*"}, name
        elif name != INTAKE.name:
            assert deletes is None, name


def test_a_function_with_its_own_handler_must_say_what_it_may_do() -> None:
    unknown = FunctionSpec(name="Mystery", handler="mystery.handler", description="?")
    with pytest.raises(CatalogPermissionError, match="HANDLER_ACCESS"):
        access_of(unknown)


def test_a_step_using_the_engine_port_must_declare_why() -> None:
    step = "careflow.workflows.prior_authorization.steps:await_decision"
    assert access_of(step_function("Await", step, "x", answers_task_tokens=True)).items
    with pytest.raises(CatalogPermissionError, match="engine"):
        access_of(step_function("Await", step, "x"))
    # A step that starts other workflows is granted states:StartExecution on them
    # (workflows_stack), so that is a reason too.
    starter = step_function("Starter", step, "x", starts_workflows=("prior-authorization",))
    assert access_of(starter).items


# --- item 4: the bus --------------------------------------------------------------------


@FUNCTIONS
def test_each_function_may_put_only_its_own_sources(dev: Synth, name: str) -> None:
    spec = all_functions()[name]
    put = _allowed(_function_statements(dev, name), "events:")
    sources = access_of(spec).event_sources
    if not sources:
        assert put == [], f"{name} publishes nothing, yet may put events"
        return
    (statement,) = put
    assert as_list(statement["Action"]) == ["events:PutEvents"]
    assert statement["Condition"] == {"StringEquals": {"events:source": list(sources)}}
    (bus,) = as_list(statement["Resource"])
    assert str(render(bus)).endswith(":event-bus/careflow-dev")


def test_publishing_steps_put_workflow_events_and_the_event_targets_put_none(dev: Synth) -> None:
    publishers = {
        spec.name
        for spec in all_functions().values()
        if spec.step and "publisher" in lookup(spec.step).ports
    }
    assert publishers >= {"CreateHumanTask", "EscalateHumanTask", "FinalizeCase"}
    for name in all_functions():
        sources = access_of(all_functions()[name]).event_sources
        assert sources == ((WORKFLOW_SOURCE,) if name in publishers else ())
    assert access_of(INTAKE).event_sources == access_of(PAYER_DECISION).event_sources == ()


def test_state_machines_put_only_the_workflow_source(dev: Synth) -> None:
    for wf in CATALOG:
        put = _allowed(_state_machine_statements(dev, wf.name), "events:PutEvents")
        if not wf.publishes:  # a workflow that publishes nothing may put nothing
            assert put == [], wf.id
            continue
        if "events:putEvents" not in json.dumps(wf.expanded()):
            # its steps publish, through the publisher port (supply replenishment, issue 11):
            # the state machine puts nothing
            assert put == [], wf.id
            assert any(fn.step and "publisher" in lookup(fn.step).ports for fn in wf.steps)
            continue
        (statement,) = put
        assert statement["Condition"] == {"StringEquals": {"events:source": [WORKFLOW_SOURCE]}}


def _bus_policy(dev: Synth) -> dict[str, dict[str, Any]]:
    assert dev.resources("events", "AWS::Events::EventBusPolicy") == {}
    (bus,) = dev.resources("events", "AWS::Events::EventBus").values()
    return {s["Sid"]: render(s) for s in bus["Properties"]["Policy"]["Statement"]}


def test_bus_refuses_other_accounts(dev: Synth) -> None:
    statement = _bus_policy(dev)["OnlyThisAccountPuts"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
    assert statement["Action"] == "events:PutEvents"
    assert statement["Condition"] == {
        "StringNotEquals": {"aws:PrincipalAccount": "<AWS::AccountId>"}
    }


def test_partner_sources_only_through_their_publisher_roles(dev: Synth) -> None:
    policy = _bus_policy(dev)
    roles = {
        r["Properties"]["RoleName"]: logical_id
        for logical_id, r in dev.resources("events", "AWS::IAM::Role").items()
    }
    assert {s.removeprefix("careflow.") for s in PARTNER_SOURCES} == {
        "ehr",
        "erp",
        "payer",
        "scheduling",
        "workforce",
    }
    # Every source a catalog trigger or subscription listens to has its publisher role.
    listened = {t.source for wf in CATALOG for t in wf.triggers}
    listened |= {s.source for wf in CATALOG for s in wf.subscriptions}
    assert listened <= set(PARTNER_SOURCES)
    for source in PARTNER_SOURCES:
        system = source.removeprefix("careflow.")
        role_id = roles[f"careflow-dev-{system}-publisher"]
        statement = policy[f"{system.capitalize()}EventsOnlyFromItsPublisherRole"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == {"AWS": "*"}
        assert statement["Condition"] == {
            "StringEquals": {"events:source": source},
            # ...or the API's function, which relays an authenticated partner's events.
            "ArnNotEquals": {
                "aws:PrincipalArn": [
                    f"<{role_id}.Arn>",
                    "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/careflow-dev/careflow-dev-api",
                ]
            },
        }
        (put,) = policy_statements(dev, role_id, "events")
        assert put["Condition"] == {"StringEquals": {"events:source": source}}
        assert as_list(put["Action"]) == ["events:PutEvents"]


def test_workflow_events_only_from_careflows_own_roles(dev: Synth) -> None:
    statement = _bus_policy(dev)["WorkflowEventsOnlyFromCareflowRoles"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"]["StringEquals"] == {"events:source": WORKFLOW_SOURCE}
    (pattern,) = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert pattern == "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/careflow-dev/*"
    # ...and careflow's execution roles are exactly the roles under that path.
    for role in dev.resources("workflows", "AWS::IAM::Role").values():
        assert role["Properties"]["Path"] == "/careflow-dev/"
    for role in dev.resources("events", "AWS::IAM::Role").values():
        assert role["Properties"].get("Path", "/") == "/"
