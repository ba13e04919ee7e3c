"""Build the careflow stacks for one environment. ``app.py`` and the tests both call this."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Tags

from stacks import config as configuration
from stacks.api_stack import ApiStack
from stacks.compliance import add_compliance_checks, record_acknowledgments_in_templates
from stacks.config import EnvironmentConfig
from stacks.data_stack import DataStack
from stacks.events_stack import EventsStack
from stacks.hl7_stack import Hl7Stack
from stacks.observability_stack import ObservabilityStack
from stacks.workflows_stack import WorkflowsStack

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CareflowStacks:
    config: EnvironmentConfig
    data: DataStack
    workflows: WorkflowsStack
    events: EventsStack
    api: ApiStack
    observability: ObservabilityStack
    hl7: Hl7Stack | None = None  # only with careflow:hl7.mllp_enabled

    @property
    def all(self) -> list[Any]:
        stacks: list[Any] = [self.data, self.workflows, self.events, self.api]
        return [*stacks, *([self.hl7] if self.hl7 else []), self.observability]


def cdk_json_context() -> dict[str, Any]:
    """``cdk.json``'s context, which the CDK CLI would pass in (``python app.py`` has no CLI)."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


def build(app: App) -> CareflowStacks:
    config = configuration.load(app.node)
    # Account/region come from the CLI's credentials when deploying; unset, the templates
    # are environment-agnostic (what synth without an AWS account produces).
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    prefix = config.prefix
    data = DataStack(
        app,
        f"{prefix}-data",
        config=config,
        env=env,
        description="careflow state: KMS keys, workflow table, parked events",
    )
    workflows = WorkflowsStack(
        app,
        f"{prefix}-workflows",
        config=config,
        data=data,
        env=env,
        description="careflow functions and state machines",
    )
    events = EventsStack(
        app,
        f"{prefix}-events",
        config=config,
        data=data,
        workflows=workflows,
        env=env,
        description="careflow event bus, archive and routing rules",
    )
    api = ApiStack(
        app,
        f"{prefix}-api",
        config=config,
        data=data,
        workflows=workflows,
        env=env,
        description="careflow partner API /v1: function, Cognito, REST API, usage plans, WAF",
    )
    # The bus (events stack) must take partner events the API relays before the API exists.
    api.add_stack_dependency(events)
    hl7 = None
    if config.hl7.mllp_enabled:
        hl7 = Hl7Stack(
            app,
            f"{prefix}-hl7",
            config=config,
            data=data,
            workflows=workflows,
            env=env,
            description="careflow HL7 v2 over MLLP: VPC, NLB (TLS), Fargate listener",
        )
        # The bus policy must name the listener's role before it puts events.
        hl7.add_stack_dependency(events)
    observability = ObservabilityStack(
        app,
        f"{prefix}-observability",
        config=config,
        data=data,
        workflows=workflows,
        events=events,
        api=api,
        hl7=hl7,
        env=env,
        description="careflow alarms, ops topic and dashboard",
    )
    stacks = CareflowStacks(config, data, workflows, events, api, observability, hl7)
    for stack in stacks.all:
        Tags.of(stack).add("application", "careflow")
        Tags.of(stack).add("environment", config.name)
    return stacks


def create_app(
    context: dict[str, Any] | None = None,
    *,
    outdir: str | None = None,
    compliance_checks: bool = True,
) -> tuple[App, CareflowStacks]:
    """An app with the stacks and the cdk-nag checks; ``context`` overrides ``cdk.json``.

    Tests pass ``compliance_checks=False`` and run the packs themselves, so that a finding
    fails one test with its details instead of every test's synth.
    """
    app = App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    stacks = build(app)
    record_acknowledgments_in_templates(app)
    if compliance_checks:
        add_compliance_checks(app)
    return app, stacks
