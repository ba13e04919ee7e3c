"""Synthesis and template helpers for the infrastructure tests."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
for _path in (REPO_ROOT / "layers" / "runtime", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from aws_cdk import App  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from stacks.application import CareflowStacks, create_app  # noqa: E402


@dataclass
class Synth:
    app: App
    stacks: CareflowStacks
    outdir: Path
    templates: dict[
        str, dict[str, Any]
    ]  # by stack role: data, workflows, events, api, observability (and hl7 when enabled)

    def template(self, role: str) -> Template:
        return Template.from_json(self.templates[role])

    def resources(self, role: str, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.templates[role]["Resources"].items()
            if resource["Type"] == resource_type
        }

    def all_resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for role in self.templates:
            found.update(self.resources(role, resource_type))
        return found


def synthesize(env: str, outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    app, stacks = create_app(
        {"env": env, "layer_build": "skip", **(context or {})},
        outdir=str(outdir),
        compliance_checks=False,
    )
    app.synth()
    roles = {
        "data": stacks.data,
        "workflows": stacks.workflows,
        "events": stacks.events,
        "api": stacks.api,
        "observability": stacks.observability,
        **({"hl7": stacks.hl7} if stacks.hl7 is not None else {}),
    }
    templates = {
        role: json.loads((outdir / stack.template_file).read_text())
        for role, stack in roles.items()
    }
    return Synth(app, stacks, outdir, templates)


def render(value: Any) -> Any:
    """A CloudFormation value with intrinsics flattened to readable strings, for assertions:
    ``{"Ref": "X"}`` -> ``"<X>"``, GetAtt -> ``"<X.Arn>"``, ImportValue -> ``"<import:N>"``."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, arg),) = value.items()
        if name == "Ref":
            return f"<{arg}>"
        if name == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if name == "Fn::ImportValue":
            return f"<import:{render(arg)}>"
        if name == "Fn::Join":
            separator, parts = arg
            return separator.join(str(render(part)) for part in parts)
    if isinstance(value, dict):
        return {key: render(item) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item) for item in value]
    return value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(synth: Synth, role_logical_id: str, role: str) -> list[dict[str, Any]]:
    """Every statement of every managed policy attached to the role (there are no others)."""
    statements: list[dict[str, Any]] = []
    for policy in synth.resources(role, "AWS::IAM::ManagedPolicy").values():
        attached = [render(r) for r in policy["Properties"].get("Roles", [])]
        if f"<{role_logical_id}>" in attached:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def logical_id_of(synth: Synth, role: str, resource_type: str, **properties: Any) -> str:
    matches = [
        logical_id
        for logical_id, resource in synth.resources(role, resource_type).items()
        if all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(matches) == 1, f"{resource_type} with {properties}: {matches}"
    return matches[0]
