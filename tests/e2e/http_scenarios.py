"""Runs one surgical readiness case on a local cloud with the protocol adapters, with a
fault injected into a sandbox server, and prints what happened as JSON. A script (run in
its own process by test_http_connectors.py): moto's backends are process-wide."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import timedelta

from careflow import wiring
from careflow.adapters.sandbox import sandbox
from careflow.domain.intake import instance_id_for
from careflow.localcloud.cloud import LocalCloud, free_port


def main(fault: str) -> dict:
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
        instance = instance_id_for("surgical-case-readiness", key)
        arn = cloud.execution_arn(instance)
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
