"""The bus, its archive and the rules: every catalog trigger and subscription is routed."""

from __future__ import annotations

import json

import pytest

from careflow.catalog import CATALOG, EXECUTION_STATUS, INTAKE
from careflow.domain.executions import DETAIL_TYPE, ENDED_BADLY
from careflow.events.routing import unrouted_pattern
from tests.infrastructure.infra_support import Synth, render

TRIGGERS = [(wf, trigger) for wf in CATALOG for trigger in wf.triggers]
SUBSCRIPTIONS = [(wf, sub) for wf in CATALOG for sub in wf.subscriptions]
# A subscription several workflows share is routed once (see events_stack._subscriptions).
ROUTED_SUBSCRIPTIONS = {(s.source, s.detail_type, s.function) for _, s in SUBSCRIPTIONS}


def _rules(dev: Synth) -> list[dict]:
    return [r["Properties"] for r in dev.resources("events", "AWS::Events::Rule").values()]


def _rules_matching(dev: Synth, pattern: dict) -> list[dict]:
    return [rule for rule in _rules(dev) if rule["EventPattern"] == pattern]


def test_bus_is_named_per_environment_and_archived(dev: Synth) -> None:
    template = dev.template("events")
    template.has_resource_properties("AWS::Events::EventBus", {"Name": "careflow-dev"})
    (archive,) = dev.resources("events", "AWS::Events::Archive").values()
    assert archive["Properties"]["RetentionDays"] == 365
    (bus_id,) = dev.resources("events", "AWS::Events::EventBus")
    assert render(archive["Properties"]["SourceArn"]) == f"<{bus_id}.Arn>"


def test_every_rule_target_retries_then_dead_letters_to_its_own_queue(dev: Synth) -> None:
    rules = _rules(dev)
    # and the catch-all, and the executions' bad ends (on the default bus)
    assert len(rules) == len(TRIGGERS) + len(ROUTED_SUBSCRIPTIONS) + 2
    dlqs = []
    for rule in rules:
        for target in rule["Targets"]:
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
            dlqs.append(render(target["DeadLetterConfig"]["Arn"]))
    assert len(set(dlqs)) == len(dlqs)  # one DLQ per target


def test_dead_letter_queues_accept_only_their_own_rule(dev: Synth) -> None:
    rule_ids = set(dev.resources("events", "AWS::Events::Rule"))
    for policy in dev.resources("events", "AWS::SQS::QueuePolicy").values():
        allows = [
            s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
        ]
        assert len(allows) == 1
        assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}
        source = render(allows[0]["Condition"]["ArnEquals"]["aws:SourceArn"])
        assert source.strip("<>").split(".")[0] in rule_ids


@pytest.mark.parametrize(("workflow", "trigger"), TRIGGERS, ids=lambda x: getattr(x, "id", ""))
def test_each_trigger_sends_the_whole_event_to_intake_tagged_with_the_workflow(
    dev: Synth, workflow, trigger
) -> None:
    # Two workflows may take one detail-type (Encounter.Discharged): a rule each.
    delivered = []
    for rule in _rules_matching(dev, trigger.pattern()):
        (target,) = rule["Targets"]
        assert render(target["Arn"]).startswith("<import:careflow-dev-workflows:")
        assert f"{INTAKE.name}Function" in render(target["Arn"])
        transformer = target["InputTransformer"]
        (variable,) = [n for n, path in transformer["InputPathsMap"].items() if path == "$"]
        template = transformer["InputTemplate"].replace(f"<{variable}>", '{"id": "e1"}')
        delivered.append(json.loads(template))
    assert delivered.count({"workflow_id": workflow.id, "event": {"id": "e1"}}) == 1


@pytest.mark.parametrize(("workflow", "sub"), SUBSCRIPTIONS, ids=lambda x: getattr(x, "id", ""))
def test_each_subscription_delivers_the_event_to_its_function(dev: Synth, workflow, sub) -> None:
    (rule,) = _rules_matching(dev, sub.pattern())
    (target,) = rule["Targets"]
    assert f"{sub.function}Function" in render(target["Arn"])
    assert "InputTransformer" not in target and "Input" not in target


def test_eventbridge_may_invoke_exactly_the_routed_functions(dev: Synth) -> None:
    permissions = dev.resources("events", "AWS::Lambda::Permission").values()
    # the catch-all and the executions' bad ends too
    assert len(permissions) == len(TRIGGERS) + len(ROUTED_SUBSCRIPTIONS) + 2
    for permission in permissions:
        assert permission["Properties"]["Principal"] == "events.amazonaws.com"
        assert "SourceArn" in permission["Properties"]


def _delivered(target: dict, event: dict) -> dict:
    transformer = target["InputTransformer"]
    (variable,) = [name for name, path in transformer["InputPathsMap"].items() if path == "$"]
    return json.loads(transformer["InputTemplate"].replace(f"<{variable}>", json.dumps(event)))


def test_the_catch_all_rule_sends_what_no_workflow_takes_to_intake_as_unrouted(
    dev: Synth,
) -> None:
    (rule,) = _rules_matching(dev, unrouted_pattern(CATALOG))
    (target,) = rule["Targets"]
    assert f"{INTAKE.name}Function" in render(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0 and "DeadLetterConfig" in target
    assert _delivered(target, {"id": "e1"}) == {"route": "unrouted", "event": {"id": "e1"}}


@pytest.mark.parametrize(
    ("source", "detail_type", "detail", "unrouted"),
    [
        (
            "careflow.scheduling",
            "Appointment.Booked",
            {"data": {"appointment_type": "procedure"}},
            False,
        ),
        (
            "careflow.scheduling",
            "Appointment.Booked",
            {"data": {"appointment_type": "consult"}},
            True,
        ),
        ("careflow.scheduling", "Appointment.Booked", {}, True),
        ("careflow.scheduling", "Appointment.Booked", [], True),
        ("careflow.erp", "Appointment.Booked", {"data": {"appointment_type": "procedure"}}, True),
        ("careflow.scheduling", "Appointment.Cancelled", {}, False),
        ("careflow.scheduling", "Patient.Admitted", {}, True),
        ("careflow.ehr", "PriorAuth.Requested", {}, False),
        ("careflow.workflow", "Case.Ready", {}, False),
        ("careflow.payer", "Case.Ready", {}, True),
    ],
)
def test_each_event_on_the_bus_matches_a_workflow_rule_or_the_catch_all_exactly_once(
    dev: Synth, source: str, detail_type: str, detail: object, unrouted: bool
) -> None:
    """The synthesized patterns, read by moto's EventBridge matcher: published careflow
    events match neither (they go to consumers outside careflow) unless mis-sourced.
    Supply replenishment (issue 11) takes the scheduling events too."""
    from moto.events.models import EventPattern

    event = {"source": source, "detail-type": detail_type, "detail": detail, "account": "1"}
    catch_all = unrouted_pattern(CATALOG)
    matched = [
        rule["EventPattern"]
        for rule in _rules(dev)
        if EventPattern(None, rule["EventPattern"]).matches_event(event)
    ]
    assert (catch_all in matched) == unrouted
    # one rule per workflow that takes it (a procedure's booking starts readiness and a
    # replenishment review), never the catch-all beside one
    takers = {
        wf.id
        for wf in CATALOG
        for t in wf.triggers
        if (t.source, t.detail_type) == (source, detail_type)
    }
    assert len(matched) <= max(1, len(takers))


SCHEDULES = [s for wf in CATALOG for s in wf.schedules]


def test_each_catalog_schedule_puts_its_event_through_its_sources_publisher_role(
    dev: Synth,
) -> None:
    schedules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in dev.resources("events", "AWS::Scheduler::Schedule").values()
    }
    assert len(schedules) == len(SCHEDULES) > 0
    roles = dev.resources("events", "AWS::IAM::Role")
    for sch in SCHEDULES:
        props = schedules[f"careflow-dev-{sch.name}"]
        assert props["ScheduleExpressionTimezone"] == sch.time_zone
        target = props["Target"]
        assert target["EventBridgeParameters"] == {
            "DetailType": sch.detail_type,
            "Source": sch.source,
        }
        detail = json.loads(target["Input"])
        assert detail["metadata"]["facility_id"] == sch.facility_id
        assert "<aws.scheduler.scheduled-time>" in detail["metadata"]["idempotency_key"]
        role_id = render(target["RoleArn"]).strip("<>").split(".")[0]
        role = roles[role_id]["Properties"]
        assert role["RoleName"].endswith(f"-{sch.source.removeprefix('careflow.')}-publisher")
        services = [
            s["Principal"].get("Service")
            for s in role["AssumeRolePolicyDocument"]["Statement"]
            if isinstance(s["Principal"], dict)
        ]
        assert "scheduler.amazonaws.com" in services


def test_failed_timed_out_and_aborted_careflow_executions_go_to_execution_status(
    dev: Synth,
) -> None:
    # Step Functions announces executions on the account's default bus, not careflow's.
    (rule,) = [r for r in _rules(dev) if r["EventPattern"].get("detail-type") == [DETAIL_TYPE]]
    assert "EventBusName" not in rule or render(rule["EventBusName"]) == "default"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail"]["status"] == list(ENDED_BADLY)
    machines = [render(arn) for arn in pattern["detail"]["stateMachineArn"]]
    assert len(machines) == len(CATALOG)  # each of careflow's, no other
    for wf in CATALOG:
        assert any(m.endswith(f":stateMachine:careflow-dev-{wf.name}") for m in machines), wf.id
    (target,) = rule["Targets"]
    assert f"{EXECUTION_STATUS.name}Function" in render(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target
