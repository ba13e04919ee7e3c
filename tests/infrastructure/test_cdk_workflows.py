"""State machines and functions in the synthesized workflows stack match the catalog."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from careflow.catalog import CATALOG, INTAKE, Workflow, all_functions
from careflow.kit.registry import workflow as registry_workflow
from stacks.workflows_stack import async_invoked, event_targets
from tests.infrastructure.infra_support import (
    REPO_ROOT,
    Synth,
    as_list,
    logical_id_of,
    policy_statements,
    render,
)

WORKFLOWS = pytest.mark.parametrize("workflow", CATALOG, ids=lambda wf: wf.id)
FUNCTIONS = pytest.mark.parametrize("name", sorted(all_functions()))


def _state_machine(dev: Synth, workflow: Workflow) -> tuple[str, dict]:
    logical_id = logical_id_of(
        dev,
        "workflows",
        "AWS::StepFunctions::StateMachine",
        StateMachineName=f"careflow-dev-{workflow.name}",
    )
    return logical_id, dev.templates["workflows"]["Resources"][logical_id]["Properties"]


def _function_logical_id(dev: Synth, name: str) -> str:
    return logical_id_of(
        dev, "workflows", "AWS::Lambda::Function", FunctionName=f"careflow-dev-{name}"
    )


def _definition(dev: Synth, workflow: Workflow) -> str:
    _, props = _state_machine(dev, workflow)
    definition = render(props["DefinitionString"])
    assert isinstance(definition, str)
    return definition


@WORKFLOWS
def test_state_machine_definition_is_the_kits_rendering_of_the_asl_file(
    dev: Synth, workflow: Workflow
) -> None:
    definition = _definition(dev, workflow)
    assert "${" not in definition
    table = json.loads(definition)  # valid JSON once the references are filled in
    arns = {fn.name: f"<{_function_logical_id(dev, fn.name)}.Arn>" for fn in workflow.functions}
    children = {child: f"<child:{child}>" for child in workflow.children}  # compared below by name
    expected = workflow.render(
        arns,
        event_bus_name="careflow-dev",
        table_name="TABLE",
        state_machine_arns=children,
    )
    # The table name and child ARNs are CloudFormation references: compare the rest exactly.
    text = json.dumps(table)
    text = re.sub(r"<import:careflow-dev-data:[^\"]*>", "TABLE", text)
    for child, placeholder in children.items():
        name = f"careflow-dev-{_registry_name(child)}"
        text = re.sub(
            r"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:"
            + re.escape(name),
            placeholder,
            text,
        )
    assert json.loads(text) == expected


def _registry_name(workflow_id: str) -> str:
    from careflow.kit.registry import workflow

    return workflow(workflow_id).name


@WORKFLOWS
def test_function_references_resolve_to_that_workflows_own_functions(
    dev: Synth, workflow: Workflow
) -> None:
    definition = _definition(dev, workflow)
    referenced = set(re.findall(r"<([A-Za-z0-9]+)\.Arn>", definition))
    expected = {_function_logical_id(dev, fn.name) for fn in workflow.functions}
    assert referenced == expected


@WORKFLOWS
def test_state_machine_type_logging_and_tracing(dev: Synth, workflow: Workflow) -> None:
    _, props = _state_machine(dev, workflow)
    assert props["StateMachineType"] == workflow.type
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False  # execution data may carry PHI
    log_group_ref = render(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    log_group_id = log_group_ref.strip("<>").split(".")[0]
    log_group = dev.templates["workflows"]["Resources"][log_group_id]["Properties"]
    assert log_group["LogGroupName"] == f"/aws/vendedlogs/states/careflow-dev-{workflow.name}"
    assert "KmsKeyId" in log_group
    assert log_group["RetentionInDays"] == 30


@WORKFLOWS
def test_state_machine_role_invokes_exactly_its_workflows_functions(
    dev: Synth, workflow: Workflow
) -> None:
    _, props = _state_machine(dev, workflow)
    role_id = render(props["RoleArn"]).strip("<>").split(".")[0]
    statements = policy_statements(dev, role_id, "workflows")
    invoked: set[str] = set()
    for statement in statements:
        actions = as_list(statement["Action"])
        if any(action.startswith("lambda:") for action in actions):
            assert actions == ["lambda:InvokeFunction"]
            invoked |= {render(r) for r in as_list(statement["Resource"])}
    expected = {f"<{_function_logical_id(dev, fn.name)}.Arn>" for fn in workflow.functions}
    assert invoked == expected
    assert not any("*" in arn for arn in invoked)


@FUNCTIONS
def test_every_catalog_function_is_a_lambda_with_its_handler(dev: Synth, name: str) -> None:
    spec = all_functions()[name]
    props = dev.templates["workflows"]["Resources"][_function_logical_id(dev, name)]["Properties"]
    assert props["Handler"] == spec.handler
    assert (REPO_ROOT / "lambdas" / f"{spec.module.replace('.', '/')}.py").is_file()
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == spec.timeout_seconds
    assert props["MemorySize"] == spec.memory_mb
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert len(props["Layers"]) == 2
    env = render(props["Environment"]["Variables"])
    assert env["EVENT_BUS_NAME"] == "careflow-dev"
    assert env["TABLE_NAME"].startswith("<import:careflow-dev-data:")
    assert env["PARKED_QUEUE_URL"].startswith("<import:careflow-dev-data:")
    assert env["POWERTOOLS_SERVICE_NAME"] == "careflow"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Careflow"
    assert env["CAREFLOW_CONNECTORS"] == "sandbox"
    assert ("STATE_MACHINE_ARNS" in env) == (name == INTAKE.name)
    # A step function names its step; the generic entry point reads it.
    assert env.get("CAREFLOW_STEP") == spec.step


@FUNCTIONS
def test_every_function_logs_to_its_own_encrypted_group(dev: Synth, name: str) -> None:
    props = dev.templates["workflows"]["Resources"][_function_logical_id(dev, name)]["Properties"]
    group_id = render(props["LoggingConfig"]["LogGroup"]).strip("<>")
    group = dev.templates["workflows"]["Resources"][group_id]["Properties"]
    assert group["LogGroupName"] == f"/aws/lambda/careflow-dev-{name}"
    assert "KmsKeyId" in group and group["RetentionInDays"] == 30


def test_intake_maps_every_workflow_to_its_state_machine_arn(dev: Synth) -> None:
    props = dev.templates["workflows"]["Resources"][_function_logical_id(dev, INTAKE.name)][
        "Properties"
    ]
    arns = json.loads(render(props["Environment"]["Variables"]["STATE_MACHINE_ARNS"]))
    assert arns.keys() == {wf.id for wf in CATALOG}
    for wf in CATALOG:
        assert re.fullmatch(rf"arn:.*:states:.*:stateMachine:careflow-dev-{wf.name}", arns[wf.id])


def _statements_granting(dev: Synth, action: str) -> dict[str, list[str]]:
    """Function name -> resources on which its role is granted ``action``."""
    granted: dict[str, list[str]] = {}
    for name in all_functions():
        props = dev.templates["workflows"]["Resources"][_function_logical_id(dev, name)][
            "Properties"
        ]
        role_id = render(props["Role"]).strip("<>").split(".")[0]
        for statement in policy_statements(dev, role_id, "workflows"):
            if action in as_list(statement["Action"]):
                granted.setdefault(name, []).extend(
                    render(r) for r in as_list(statement["Resource"])
                )
    return granted


def test_only_intake_may_start_executions(dev: Synth) -> None:
    granted = _statements_granting(dev, "states:StartExecution")
    assert granted.keys() == {INTAKE.name}
    assert sorted(a.rsplit(":", 1)[1] for a in granted[INTAKE.name]) == sorted(
        f"careflow-dev-{wf.name}" for wf in CATALOG
    )


def test_only_task_token_answerers_may_resume_executions(dev: Synth) -> None:
    answerers = {fn.name for fn in all_functions().values() if fn.answers_task_tokens}
    assert answerers == {"PayerDecision", "AwaitAuthDecision"}
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert _statements_granting(dev, action).keys() == answerers


def test_only_event_targets_may_park_events_and_have_an_async_dlq(dev: Synth) -> None:
    # The daily drift check is invoked asynchronously too (a schedule): an async DLQ (its
    # only queue: it parks nothing).
    senders = _statements_granting(dev, "sqs:SendMessage")
    assert senders.keys() == async_invoked() == event_targets() | {"ModelDrift"}
    assert all("Parked" not in str(r) for r in senders["ModelDrift"])
    for name in all_functions():
        props = dev.templates["workflows"]["Resources"][_function_logical_id(dev, name)][
            "Properties"
        ]
        assert ("DeadLetterConfig" in props) == (name in async_invoked())


def test_publishing_functions_may_put_events_on_the_careflow_bus_only(dev: Synth) -> None:
    from stacks.permissions import access_of

    granted = _statements_granting(dev, "events:PutEvents")
    assert granted.keys() == {n for n, fn in all_functions().items() if access_of(fn).event_sources}
    for resources in granted.values():
        assert all(r.endswith(":event-bus/careflow-dev") for r in resources)


def test_connectors_are_sandboxes_unless_all_hospital_urls_are_given() -> None:
    from stacks.config import EnvironmentConfig

    base = {
        "name": "dev",
        "log_retention": "ONE_MONTH",
        "archive_retention_days": 30,
        "deletion_protection": False,
        "retain_data": False,
        "backup_plan": False,
    }
    assert EnvironmentConfig(**base).connector_environment == {"CAREFLOW_CONNECTORS": "sandbox"}
    full = EnvironmentConfig(
        **base,
        ehr_base_url="https://ehr.example/fhir",
        payer_base_url="https://payer.example/fhir",
        erp_base_url="https://erp.example/v1",
    )
    assert full.connector_environment == {
        "CAREFLOW_CONNECTORS": "http",
        "EHR_FHIR_BASE_URL": "https://ehr.example/fhir",
        "PAYER_PAS_BASE_URL": "https://payer.example/fhir",
        "ERP_BASE_URL": "https://erp.example/v1",
    }
    with_workforce = dataclasses.replace(full, workforce_base_url="https://wfm.example/v1")
    assert with_workforce.connector_environment["WORKFORCE_BASE_URL"] == "https://wfm.example/v1"
    with pytest.raises(ValueError, match="all or nothing"):
        _ = EnvironmentConfig(**base, ehr_base_url="https://ehr.example/fhir").connector_environment


def test_every_function_gets_the_connector_setting(dev: Synth) -> None:
    found = dev.all_resources("AWS::Lambda::Function")
    assert found
    for resource in found.values():
        if resource["Properties"]["Handler"] == "token_claims.handler":
            continue  # Cognito's token trigger: it reaches no hospital system
        variables = resource["Properties"]["Environment"]["Variables"]
        assert variables["CAREFLOW_CONNECTORS"] == "sandbox"


def test_a_parent_may_start_and_watch_only_its_childrens_executions(dev: Synth) -> None:
    for workflow in CATALOG:
        _, props = _state_machine(dev, workflow)
        role_id = render(props["RoleArn"]).strip("<>").split(".")[0]
        statements = policy_statements(dev, role_id, "workflows")
        started = {
            str(render(r))
            for st in statements
            if "states:StartExecution" in as_list(st["Action"])
            for r in as_list(st["Resource"])
        }
        watched = {
            str(render(r))
            for st in statements
            if "states:DescribeExecution" in as_list(st["Action"])
            for r in as_list(st["Resource"])
        }
        children = {f"careflow-dev-{registry_workflow(c).name}" for c in workflow.children}
        assert {s.rsplit(":", 1)[-1] for s in started} == children
        assert {w.rsplit(":", 2)[-2] for w in watched} == children
        assert all(w.endswith(":*") for w in watched)
