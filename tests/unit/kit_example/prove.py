"""Run in a fresh interpreter with CAREFLOW_WORKFLOW_PATHS pointing at this folder: prints
what each part of careflow made of the ``echo`` workflow, as JSON."""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from datetime import UTC, datetime

from careflow import catalog
from careflow.domain import intake
from careflow.kit.registry import event_schemas


def _exists(cloud: object, arn: str) -> bool:
    try:
        cloud.describe(arn)  # type: ignore[attr-defined]
    except Exception:
        return False
    return True


report: dict[str, object] = {"catalog": [wf.id for wf in catalog.CATALOG]}
report["functions"] = sorted(catalog.all_functions())
report["schemas"] = sorted(event_schemas())
event = {
    "source": "careflow.workforce",
    "detail-type": "Ping.Sent",
    "detail": {
        "metadata": {
            "event_id": "e-1",
            "idempotency_key": "k-1",
            "facility_id": "fac-north",
            "occurred_at": datetime(2026, 11, 30, tzinfo=UTC).isoformat(),
            "schema_version": "1.0",
            "correlation_id": "c-1",
        },
        "data": {"subject_id": "s-1", "name": "dropped"},
    },
}
request = intake.accept(
    {"workflow_id": "echo", "event": event},
    state_machine_arns={"echo": "arn:aws:states:us-east-1:1:stateMachine:Echo"},
)
report["intake_input"] = request.input

if "--cdk" in sys.argv:
    from app import create_app

    app, stacks = create_app(
        {"env": "dev", "layer_build": "skip"}, outdir=tempfile.mkdtemp(), compliance_checks=False
    )
    assembly = app.synth()
    resources = assembly.get_stack_by_name(stacks.workflows.stack_name).template["Resources"]
    report["cdk_state_machines"] = sorted(
        r["Properties"]["StateMachineName"]
        for r in resources.values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
    )

if "--cloud" in sys.argv:
    from careflow.localcloud.cloud import LocalCloud, free_port

    for name in ("werkzeug", "moto", "botocore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with LocalCloud(free_port()) as cloud:
        cloud.put_event(
            "careflow.workforce",
            "Ping.Sent",
            data={"subject_id": "s-1"},
            facility_id="fac-north",
            idempotency_key="k-1",
        )
        arn = cloud.execution_arn(intake.instance_id_for("echo", "k-1"), "echo")
        cloud.wait_for(lambda: _exists(cloud, arn), 20, "the echo execution")
        done = cloud.wait_for_execution(arn, 20)
        report["cloud_status"] = done["status"]
        report["cloud_output"] = json.loads(done.get("output") or "{}")


print(json.dumps(report, default=str))
