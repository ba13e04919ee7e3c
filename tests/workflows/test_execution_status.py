"""An execution that ends badly shows on its instance, on the local cloud: the cloud
announces the end on the default bus as Step Functions does, the ExecutionStatus rule
takes it to its function, and the instance is FAILED (or CANCELLED) with the reason."""

from __future__ import annotations

from careflow.adapters.sandbox import sandbox
from careflow.adapters.sandbox_payables import InvoiceCase, Line
from careflow.domain.intake import instance_id_for
from careflow.domain.records import InstanceStatus, TaskStatus
from tests.workflows.harness import Case

WORKFLOW = "invoice-exceptions"


def _received(cloud, invoice_id: str, *, known: bool, key: str | None = None) -> Case:
    if known:
        sandbox().add_invoice_case(
            InvoiceCase(
                invoice_id,
                "fac-north",
                "sup-jointworks",
                f"N-{invoice_id}",
                f"PO-{invoice_id}",
                (Line("IMP-THA-CUP-52", 4, "1450.00"),),  # over the contract: an exception
            ),
            now=cloud.clock.now(),
        )
    key = key or f"invoice:{invoice_id}"
    cloud.put_event(
        "careflow.erp",
        "Invoice.Received",
        facility_id="fac-north",
        idempotency_key=key,
        data={
            "invoice_id": invoice_id,
            "vendor_id": "sup-jointworks",
            "invoice_number": f"N-{invoice_id}",
            "po_id": f"PO-{invoice_id}",
        },
    )
    return Case(cloud, invoice_id, instance_id_for(WORKFLOW, key), WORKFLOW).started()


def _status(case: Case, status: InstanceStatus):  # the instance, once it has ``status``
    def ended():
        got = case.store.get_instance(case.instance_id)
        return got if got is not None and got.status is status else None

    return case.cloud.wait_for(ended, 20, f"{case.case_id} {status}")


def test_a_failed_execution_makes_its_instance_failed_with_the_reason(cloud):
    case = _received(cloud, "INV-EXS-404", known=False)  # the ERP does not know it
    assert case.finish()["status"] == "FAILED"
    got = _status(case, InstanceStatus.FAILED)
    assert got.outcome == "FAILED"
    assert "InvoiceNotMatched" in got.outcome_reasons[-1]
    cloud.wait_for(
        lambda: "execution_failed" in [m.name for m in case.store.milestones(case.instance_id)],
        20,
        "the execution_failed milestone",
    )


def test_an_execution_stopped_by_hand_cancels_its_instance_and_closes_its_task(cloud):
    case = _received(cloud, "INV-EXS-STOP", known=True)
    task = case.open_task()
    cloud.client("stepfunctions").stop_execution(
        executionArn=case.arn, error="Operator", cause="stopped from the console"
    )
    got = _status(case, InstanceStatus.CANCELLED)
    assert got.outcome == "ABORTED"
    assert case.store.get_task(task.task_id).status is TaskStatus.CLOSED
    # the entries are written after the instance (one PutItem each)
    entry = cloud.wait_for(
        lambda: next(
            (a for a in case.store.audit_trail(case.instance_id) if a.action == "execution_ended"),
            None,
        ),
        20,
        "the execution_ended audit entry",
    )
    assert entry.detail["status"] == "ABORTED"


def test_an_announcement_it_cannot_read_is_parked_with_the_reason(cloud):
    import json

    from careflow import wiring
    from careflow.domain.executions import DETAIL_TYPE

    arn = next(iter(cloud.state_machine_arns.values()))
    cloud.client("events").put_events(
        Entries=[
            {
                "Source": "aws.states",
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps({"stateMachineArn": arn, "status": "FAILED"}),
            }
        ]
    )

    def parked():
        return next(
            (p for p in wiring.store().parked_events() if p.detail_type == DETAIL_TYPE), None
        )

    found = cloud.wait_for(parked, 20, "the unreadable announcement parked")
    assert DETAIL_TYPE in found.reason and "executionArn" in found.reason


def test_once_its_cause_is_fixed_a_new_start_event_retries_the_failed_subject(cloud):
    failed = _received(cloud, "INV-EXS-RETRY", known=False)  # not in the ERP yet
    _status(failed, InstanceStatus.FAILED)
    # AP enters the invoice in the ERP; the ERP connector sends the event again, new key
    retried = _received(cloud, "INV-EXS-RETRY", known=True, key="invoice:INV-EXS-RETRY:2")
    assert retried.instance_id != failed.instance_id
    assert retried.case_id == failed.case_id
    task = retried.open_task()  # over the contract price: an exception for AP, as usual
    assert task.instance_id == retried.instance_id
    (audit,) = [
        a for a in retried.store.audit_trail(retried.instance_id) if a.action == "restarted"
    ]
    assert audit.detail["previous_instance_id"] == failed.instance_id
