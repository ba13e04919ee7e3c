"""Runs one surgical readiness case on a local cloud with the protocol adapters, with a
fault injected into a sandbox server, and prints what happened as JSON. A script (run in
its own process by test_http_connectors.py): moto's backends are process-wide."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import timedelta
from pathlib import Path

from careflow import wiring
from careflow.adapters.sandbox import sandbox
from careflow.domain.intake import instance_id_for
from careflow.localcloud.cloud import LocalCloud, free_port

# Run as a script (no `tests` package on the path): the fixtures beside this folder.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "davinci-pas"
WORKFLOW = "surgical-case-readiness"
FOCUS_ID = "482fd012-7825-423d-83de-69d09920198b"  # the focus of the id-only fixture


def _book_pended_case(cloud: LocalCloud, run: str) -> str:
    """Books appt-1002 (the payer pends it and approves after two days) and waits for the
    pend. Returns the readiness instance id."""
    case = sandbox().cases["appt-1002"]
    key = f"appointment:appt-1002:{run}"
    cloud.book_appointment("appt-1002", case.scheduled_start, case.facility_id, idempotency_key=key)
    instance = instance_id_for(WORKFLOW, key)
    store = wiring.store()
    child = f"{instance}-auth"  # the prior authorization, a child execution
    cloud.wait_for(
        lambda: any(m.name == "pended" for m in store.milestones(child)),
        90,
        "the pend",
    )
    return instance


def id_only_fixture() -> dict:
    """A pended case resumed by the HL7 id-only notification fixture, as a payer sends it."""
    logging.basicConfig(level=logging.ERROR)
    with LocalCloud(free_port(), connectors="http", payer_ticker=False) as cloud:
        instance = _book_pended_case(cloud, "id-only")
        store = wiring.store()
        [auth] = cloud.payer_server.authorizations.values()
        auth.response_id = FOCUS_ID  # the payer's ClaimResponse is the fixture's focus
        cloud.clock.advance(timedelta(days=2))
        settled = cloud.payer_server.due_decisions()
        notification = json.loads((FIXTURES / "PAS_notification_example_id_only.json").read_text())
        delivered = cloud.receive_payer_notification(notification)
        try:
            result = cloud.wait_for_execution(cloud.execution_arn(instance, WORKFLOW), 150)
        except TimeoutError:
            result = {"status": "TIMED_OUT"}
        return {
            "settled": settled,
            "delivered": delivered,
            "status": result["status"],
            "output": json.loads(result.get("output") or "{}"),
            "milestones": [m.name for m in store.milestones(instance)],
        }


def rest_hook() -> dict:
    """The payer's rest-hook deliveries reach careflow's notification endpoint over HTTP;
    a notification careflow cannot read is refused there, and nothing is lost."""
    import httpx

    logging.basicConfig(level=logging.ERROR)
    with LocalCloud(free_port(), connectors="http", payer_ticker=True) as cloud:
        garbage = httpx.post(
            cloud.notifications.url,
            content=b'{"resourceType": "Bundle"}',
            headers={"Content-Type": "application/fhir+json"},
        )
        instance = _book_pended_case(cloud, "rest-hook")
        cloud.clock.advance(timedelta(days=2))
        result = cloud.wait_for_execution(cloud.execution_arn(instance, WORKFLOW), 150)
        return {
            "garbage_status": garbage.status_code,
            "garbage": garbage.json(),
            "deliveries": cloud.payer_server.delivered,
            "status": result["status"],
            "output": json.loads(result.get("output") or "{}"),
        }


def encounter_coverage() -> dict:
    """The FHIR adapter, SMART token and all, reads encounters' coverage from the EHR sandbox
    server as the in-process sandbox holds them (covered, self-pay, unknown)."""
    logging.basicConfig(level=logging.ERROR)
    with LocalCloud(free_port(), connectors="http", payer_ticker=False) as cloud:
        assert cloud.ehr_server is not None
        sandbox().set_self_pay("V2002")
        sandbox().set_unknown_encounter("V2003")
        out = {}
        for visit in ("V2001", "V2002", "V2003"):
            over_http = wiring.ehr().encounter_coverage(visit)
            in_process = sandbox().encounter_coverage(visit)
            out[visit] = {
                "adapter": type(wiring.ehr()).__name__,
                "same": over_http == in_process,
                "found": over_http.model_dump() if over_http is not None else None,
            }
        return out


def main(fault: str) -> dict:
    if fault == "encounter-coverage":
        return encounter_coverage()
    if fault == "id-only-fixture":
        return id_only_fixture()
    if fault == "rest-hook":
        return rest_hook()
    logging.basicConfig(level=logging.ERROR)
    with LocalCloud(free_port(), connectors="http", payer_ticker=False) as cloud:
        if fault == "payer-down":
            cloud.payer_server.faults.always_down = True
        elif fault == "ehr-flaky":
            cloud.ehr_server.faults.server_errors = 2
            cloud.ehr_server.faults.rate_limits = 1
        elif fault == "payer-garbage":
            cloud.payer_server.faults.malformed = 100
        case = sandbox().cases["appt-1001"]
        key = f"appointment:appt-1001:{fault}"
        cloud.book_appointment(
            "appt-1001", case.scheduled_start, case.facility_id, idempotency_key=key
        )
        instance = instance_id_for(WORKFLOW, key)
        arn = cloud.execution_arn(instance, WORKFLOW)
        store = wiring.store()
        deadline = time.monotonic() + 60
        status, task = "RUNNING", None
        while time.monotonic() < deadline:
            try:
                status = cloud.describe(arn)["status"]
            except Exception:
                status = "NOT_STARTED"
            task = next((t for t in store.tasks_for_instance(instance) if t.task_token), None)
            if (status != "RUNNING" and status != "NOT_STARTED") or task is not None:
                break
            cloud.clock.advance(timedelta(minutes=1))  # Retry intervals pass
            time.sleep(0.05)
        milestones = [(m.name, m.status) for m in store.milestones(instance)]
        return {
            "status": status,
            "task_reasons": list(task.reasons) if task else None,
            "task_queue": task.queue if task else None,
            "milestones": milestones,
            "ehr_requests": cloud.ehr_server.requests,
            "payer_refused": cloud.payer_server.refused,
            "authorizations": len(cloud.payer_server.authorizations),
        }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
