"""Runs the whole demo (``careflow demo``: every workflow's scenarios, with the protocol
sandboxes) and then sweeps what the run left outside the state table for the synthetic
patients' PHI: every execution history (every state machine, every execution, child
executions included, every page), every log record, every parked or dead-lettered message
(SQS, and the table's PARKED# records) and every event put on the bus (the bus's archive).

The needles are read from the EHR sandbox the demo ran against (its Patient and Coverage
resources), not typed here, so a patient added to the seed is swept too.

Run as a script by ``test_phi_sweep.py`` (moto's backends are process-wide, and the session
cloud of the other workflow tests runs the in-process sandbox, whose patients have no
demographics to leak). Prints one JSON line: counts, and the hits (none, when all is well).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from careflow import wiring
from careflow.localcloud.cloud import LocalCloud, free_port_run

# v2-0203 identifier type -> the needle's kind
ID_KINDS = {"MR": "mrn", "SS": "ssn", "MB": "member_id"}
KINDS = ("name", "birth_date", "mrn", "member_id", "ssn")
# The case record's links to the person: the EHR's ids of the patient and the coverage.
RECORD_KINDS = ("patient_id", "coverage_id")
# Libraries whose DEBUG lines are wire dumps of every request (botocore logs each body):
# captured from INFO up, so the demo keeps its pace; careflow's own loggers from DEBUG.
# (httpx and httpcore keep the level careflow's HTTP client sets for them.)
QUIET = ("botocore", "boto3", "urllib3", "werkzeug", "moto", "s3transfer")


class Capture(logging.Handler):
    """Keeps every record: its formatted message and every attribute (extras included)."""

    def __init__(self, lines: list[str] | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = [] if lines is None else lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is still swept by its attributes
            message = str(record.msg)
        text = json.dumps(record.__dict__, default=str)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{message} {text}")


def capture_logs() -> Capture:
    """One capture on the root logger, one on Powertools' ``careflow`` logger (both into the
    same list): Powertools filters its own records (and every ``careflow.*`` logger's) out
    of the root's handlers, so they are captured where they are logged."""
    from careflow.observability import logger

    root_capture = Capture()
    root = logging.getLogger()
    root.addHandler(root_capture)
    root.setLevel(logging.DEBUG)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.INFO)
    logger.addHandler(Capture(root_capture.lines))
    logger.setLevel(logging.DEBUG)
    return root_capture


def needles(cloud: LocalCloud) -> dict[str, set[str]]:
    """Names, birth dates, MRNs, member ids and SSNs of the EHR sandbox's patients and
    coverages (addresses and telecom too, if the seed has any), and their resource ids."""
    from careflow.adapters.sandbox import sandbox

    found: dict[str, set[str]] = {k: set() for k in (*KINDS, *RECORD_KINDS, "address", "telecom")}
    store = cloud.ehr_server.store
    patients = store.search("Patient", {})
    served = {f"Patient/{p['id']}" for p in patients}
    missing = {c.patient_ref for c in sandbox().cases.values()} - served
    assert not missing, f"sandbox patients the EHR sandbox does not serve: {sorted(missing)}"
    for patient in patients:
        found["patient_id"].add(patient["id"])
        for name in patient.get("name", []):
            found["name"].update(name.get("given", []))
            found["name"].update(v for v in (name.get("family"), name.get("text")) if v)
        if patient.get("birthDate"):
            found["birth_date"].add(patient["birthDate"])
        for address in patient.get("address", []):
            found["address"].update(address.get("line", []))
        found["telecom"].update(t["value"] for t in patient.get("telecom", []) if t.get("value"))
        for identifier in patient.get("identifier", []):
            kind = _identifier_kind(identifier)
            if kind and identifier.get("value"):
                found[kind].add(identifier["value"])
    for coverage in store.search("Coverage", {}):
        found["coverage_id"].add(coverage["id"])
        if coverage.get("subscriberId"):
            found["member_id"].add(coverage["subscriberId"])
        for identifier in coverage.get("identifier", []):
            if _identifier_kind(identifier) == "member_id" and identifier.get("value"):
                found["member_id"].add(identifier["value"])
    return found


def _identifier_kind(identifier: Mapping[str, Any]) -> str | None:
    codes = [c.get("code") for c in identifier.get("type", {}).get("coding", [])]
    if identifier.get("system") == "http://hl7.org/fhir/sid/us-ssn":
        return "ssn"
    return next((ID_KINDS[c] for c in codes if c in ID_KINDS), None)


def _pages(call: Any, key: str, **kwargs: Any) -> Iterator[Any]:
    while True:
        page = call(**kwargs)
        yield from page[key]
        if not page.get("nextToken"):
            return
        kwargs["nextToken"] = page["nextToken"]


def histories(cloud: LocalCloud) -> tuple[list[str], dict[str, int]]:
    """Every execution's input, output and history events, as JSON text."""
    sfn = cloud.client("stepfunctions")
    texts: list[str] = []
    counts = {"state_machines": 0, "executions": 0, "history_events": 0}
    for machine in _pages(sfn.list_state_machines, "stateMachines"):
        counts["state_machines"] += 1
        for execution in _pages(
            sfn.list_executions, "executions", stateMachineArn=machine["stateMachineArn"]
        ):
            counts["executions"] += 1
            arn = execution["executionArn"]
            described = sfn.describe_execution(executionArn=arn)
            texts.append(json.dumps([described.get("input"), described.get("output")]))
            for event in _pages(
                sfn.get_execution_history, "events", executionArn=arn, maxResults=1000
            ):
                counts["history_events"] += 1
                texts.append(json.dumps(event, default=str))
    return texts, counts


def queued(cloud: LocalCloud) -> tuple[list[str], dict[str, int]]:
    """Every message in every queue (the parking queue, the rules' dead-letter queues), and
    the PARKED# records of the table."""
    sqs = cloud.client("sqs")
    texts: list[str] = []
    counts = {"queues": 0, "messages": 0, "parked_records": 0}
    for url in sqs.list_queues().get("QueueUrls", []):
        counts["queues"] += 1
        while True:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=600,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                break
            counts["messages"] += len(got)
            texts.extend(json.dumps(m, default=str) for m in got)
    for parked in wiring.store().parked_events():
        counts["parked_records"] += 1
        texts.append(parked.model_dump_json())
    return texts, counts


def archived_events(cloud: LocalCloud) -> list[str]:
    """Every event the bus's archive kept: all that was put on the bus during the run."""
    from moto.events.models import events_backends

    from careflow.localcloud.cloud import ACCOUNT, REGION

    backend = events_backends[ACCOUNT][REGION]
    texts: list[str] = []
    for archive in backend.archives.values():
        texts.extend(json.dumps(e, default=str) for e in archive.events)
    return texts


def hits(where: str, texts: Iterable[str], wanted: Mapping[str, set[str]]) -> list[dict[str, str]]:
    out = []
    for i, text in enumerate(texts):
        for kind, values in wanted.items():
            for value in values:
                if value in text:
                    at = text.index(value)
                    out.append(
                        {
                            "where": f"{where}[{i}]",
                            "kind": kind,
                            "needle": value,
                            "context": text[max(0, at - 160) : at + 80],
                        }
                    )
    return out


def plant_canaries(cloud: LocalCloud, canary: str) -> None:
    """One made-up value in each place the sweep reads, so it proves it would see a leak:
    a log line, a bus event, a parked message and an execution's input."""
    from careflow.observability import logger

    logger.info("canary", extra={"patient_name": canary})
    cloud.put_event("careflow.ehr", "Canary.Planted", facility_id="fac-north", data={"x": canary})
    sqs = cloud.client("sqs")
    sqs.send_message(QueueUrl=cloud.parked_queue_url, MessageBody=json.dumps({"x": canary}))
    sfn = cloud.client("stepfunctions")
    sfn.start_execution(
        stateMachineArn=next(iter(cloud.state_machine_arns.values())),
        name=f"canary-{canary[-8:]}",
        input=json.dumps({"instance_id": "canary", "x": canary}),
    )


def sweep_all(cloud: LocalCloud, logs: Capture, wanted: Mapping[str, set[str]]) -> dict[str, Any]:
    history_texts, history_counts = histories(cloud)
    queue_texts, queue_counts = queued(cloud)
    event_texts = archived_events(cloud)
    log_texts = list(logs.lines)
    return {
        **history_counts,
        **queue_counts,
        "events": len(event_texts),
        "log_records": len(log_texts),
        "hits": [
            *hits("history", history_texts, wanted),
            *hits("queue", queue_texts, wanted),
            *hits("event", event_texts, wanted),
            *hits("log", log_texts, wanted),
        ],
    }


def main() -> int:
    from careflow.localcloud import demo

    logs = capture_logs()
    report: dict[str, Any] = {}

    def sweep(cloud: LocalCloud) -> None:
        wanted = needles(cloud)
        report.update(sweep_all(cloud, logs, wanted))
        report.update(
            needles={k: len(v) for k, v in wanted.items()},
            # for the caller's sweep of this process's output (this line is not swept)
            needle_values={k: sorted(v) for k, v in wanted.items()},
        )
        # then the sweep proves itself: a canary planted in each place is found there
        canary = f"CANARY-{uuid.uuid4().hex}"
        plant_canaries(cloud, canary)
        time.sleep(1)  # the canary execution and event land
        found = sweep_all(cloud, logs, {"canary": {canary}})["hits"]
        report["canaries_found"] = sorted({h["where"].split("[")[0] for h in found})

    reports = demo.run(free_port_run(), as_json=True, connectors="http", before_stop=sweep)
    report["cases"] = len(reports)
    report["outcomes"] = sorted({r["outcome"] for r in reports})
    print(json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
