"""The enterprise five (GET /v1/kpis's ``enterprise`` block), hand-computed on one seeded
in-memory scenario: a workflow's declared KPI under its enterprise name, and sla_adherence
across every workflow, by workflow, by facility and by facility and service line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from careflow import kpis
from careflow.domain.records import (
    AuditEntry,
    HumanTask,
    Instance,
    InstanceStatus,
    Milestone,
    TaskStatus,
)
from careflow.kit import registry
from careflow.kit.kpis import ENTERPRISE, KpiDefinition
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
SINCE = NOW - 7 * D
PA, DC = "prior-authorization", "discharge-coordination"
SR, IE = "supply-replenishment", "invoice-exceptions"
SCR = "surgical-case-readiness"
FACILITIES = ["fac-north", "fac-south"]


def _instance(
    s, iid, workflow, *, started, ended=None, outcome=None, facility="fac-north", line=None
):
    s.instances[iid] = Instance(
        instance_id=iid,
        workflow_id=workflow,
        subject_type="x",
        subject_id=f"s-{iid}",
        facility_id=facility,
        status=InstanceStatus.COMPLETED if ended else InstanceStatus.WAITING,
        started_at=started,
        updated_at=ended or started,
        correlation_id=iid,
        execution_name=iid,
        outcome=outcome,
        service_line=line,
    )


def _audit(s, iid, action, detail, reason="r"):
    s.record(
        AuditEntry(
            instance_id=iid, at=NOW - H, actor="system", action=action, reason=reason, detail=detail
        )
    )


def _task(s, iid, workflow, facility, *, due, completed=None):
    s.put_task(
        HumanTask(
            task_id=f"t-{iid}",
            instance_id=iid,
            workflow_id=workflow,
            facility_id=facility,
            queue="q",
            title="t",
            subject_ref=f"x/{iid}",
            created_at=due - D,
            due_at=due,
            status=TaskStatus.COMPLETED if completed else TaskStatus.OPEN,
            completed_at=completed,
        )
    )


@pytest.fixture
def scenario() -> InMemoryStateStore:
    s = InMemoryStateStore()
    t0 = NOW - 3 * D
    # prior authorization: decided 60, 120 and 600 minutes after the request
    for iid, minutes in (("pa-1", 60), ("pa-2", 120), ("pa-3", 600)):
        _instance(s, iid, PA, started=t0, ended=t0 + minutes * M, outcome="APPROVED")
        s.record(Milestone(instance_id=iid, name="concluded_approved", at=t0 + minutes * M))
    # pa-1's task met its due time (fac-north)
    _task(s, "pa-1", PA, "fac-north", due=t0 + 2 * H, completed=t0 + H)
    # discharges: pharmacy 30 + 15, DME 45; dc-1's task completed late (fac-north)
    for iid, delays in (("dc-1", {"pharmacy": 30}), ("dc-2", {"pharmacy": 15, "DME": 45})):
        _instance(s, iid, DC, started=t0, ended=t0 + D, outcome="DISCHARGED")
        s.record(Milestone(instance_id=iid, name="discharged", at=t0 + D))
        for cause, minutes in delays.items():
            _audit(s, iid, "delay_recorded", {"cause": cause, "minutes": minutes}, cause)
    _task(s, "dc-1", DC, "fac-north", due=t0 + H, completed=t0 + 2 * H)
    # supply: the latest review at fac-north; item A at two locations (0.2, 0.5), B at 0
    _instance(s, "sr-1", SR, started=t0, ended=t0 + H, outcome="REORDERED")
    rows = [("A", 0.2), ("A", 0.5), ("B", 0.0)]
    items = [{"item_id": i, "stockout_risk": r, "on_hand": 10, "daily_use": 1} for i, r in rows]
    _audit(s, "sr-1", "replenishment_measured", {"items": items, "requisitions": 1})
    # invoices: two exceptions open at fac-south, invoiced 10 and 3 days before today
    for iid, invoiced in (("ie-1", "2026-11-19"), ("ie-2", "2026-11-26")):
        _instance(s, iid, IE, started=t0, facility="fac-south")
        _audit(s, iid, "invoice_exception_raised", {"invoice_date": invoiced})
    # ie-1's task is open past due (missed); ie-2's is not due yet (not counted)
    _task(s, "ie-1", IE, "fac-south", due=NOW - H)
    _task(s, "ie-2", IE, "fac-south", due=NOW + H)
    return s


def test_the_enterprise_five_are_hand_computed(scenario):
    ids = [wf.id for wf in registry.workflows()]
    report = kpis.kpis(scenario, ids, FACILITIES, since=SINCE, now=NOW)
    block = report["enterprise"]
    assert list(block) == list(ENTERPRISE)
    # nearest rank of (60, 120, 600): p50 the 2nd, p90 the 3rd
    assert block["authorization_turnaround"]["value"] == {
        "decisions": 3,
        "p50_minutes": 120.0,
        "p90_minutes": 600.0,
    }
    delays = block["discharge_delay_causes"]["value"]
    assert (delays["pharmacy"], delays["DME"]) == (45, 45)
    assert sum(delays.values()) == 90
    assert block["stockout_risk"]["value"] == {"fac-north": {"A": 0.5, "B": 0.0}}
    assert block["invoice_exception_aging"]["value"] == {"0-7": 1, "8-30": 1, "31-60": 0, "60+": 0}
    sla = block["sla_adherence"]
    # met: pa-1; missed: dc-1 (late), ie-1 (open past due); ie-2 not yet due
    assert sla["value"] == round(1 / 3, 4)
    assert sla["by_facility"] == {"fac-north": 0.5, "fac-south": 0.0}
    assert sla["by_facility_service_line"] == {  # the scenario's instances have none
        "fac-north": {"none": {"met": 1, "missed": 1, "ratio": 0.5}},
        "fac-south": {"none": {"met": 0, "missed": 1, "ratio": 0.0}},
    }
    assert sla["by_workflow"][PA] == 1.0
    assert sla["by_workflow"][DC] == 0.0
    assert sla["by_workflow"][IE] == 0.0
    assert sla["by_workflow"][SR] is None
    assert sla["sources"] == sorted(ids)


def test_sla_adherence_by_facility_and_service_line_is_hand_computed():
    s = InMemoryStateStore()
    t0 = NOW - 3 * D
    # fac-north: imaging (two prior authorizations) one met, one late; orthopedics one
    # open past due
    _instance(s, "pa-a", PA, started=t0, line="imaging")
    _task(s, "pa-a", PA, "fac-north", due=t0 + 2 * H, completed=t0 + H)
    _instance(s, "pa-b", PA, started=t0, line="imaging")
    _task(s, "pa-b", PA, "fac-north", due=t0 + H, completed=t0 + 2 * H)
    _instance(s, "sc-a", SCR, started=t0, line="orthopedics")
    _task(s, "sc-a", SCR, "fac-north", due=NOW - H)
    # fac-south: orthopedics one met and one not due yet (not counted); an invoice (no
    # service line: "none") open past due; imaging with no task at all
    _instance(s, "sc-b", SCR, started=t0, facility="fac-south", line="orthopedics")
    _task(s, "sc-b", SCR, "fac-south", due=t0 + 2 * H, completed=t0 + H)
    _instance(s, "sc-c", SCR, started=t0, facility="fac-south", line="orthopedics")
    _task(s, "sc-c", SCR, "fac-south", due=NOW + H)
    _instance(s, "ie-a", IE, started=t0, facility="fac-south")
    _task(s, "ie-a", IE, "fac-south", due=NOW - H)
    _instance(s, "pa-c", PA, started=t0, facility="fac-south", line="imaging")
    # started before the window: not of the cohort, not counted
    _instance(s, "pa-old", PA, started=SINCE - D, ended=NOW - H, line="imaging")
    _task(s, "pa-old", PA, "fac-north", due=SINCE - H)

    ids = [wf.id for wf in registry.workflows()]
    report = kpis.kpis(s, ids, FACILITIES, since=SINCE, now=NOW)
    sla = report["enterprise"]["sla_adherence"]
    assert sla["by_facility_service_line"] == {
        "fac-north": {
            "imaging": {"met": 1, "missed": 1, "ratio": 0.5},
            "orthopedics": {"met": 0, "missed": 1, "ratio": 0.0},
        },
        "fac-south": {
            "imaging": {"met": 0, "missed": 0, "ratio": None},
            "none": {"met": 0, "missed": 1, "ratio": 0.0},
            "orthopedics": {"met": 1, "missed": 0, "ratio": 1.0},
        },
    }
    assert list(sla["by_facility_service_line"]["fac-south"]) == ["imaging", "none", "orthopedics"]
    # by_facility is as it was: the same counts summed over the service lines
    assert sla["by_facility"] == {"fac-north": round(1 / 3, 4), "fac-south": 0.5}
    assert sla["value"] == round(2 / 5, 4)
    kpis.KpiReport.model_validate(report)
    # a facility of the answer with no instance is there, with no service line
    only = kpis.kpis(s, ids, [*FACILITIES, "fac-east"], since=SINCE, now=NOW)
    assert only["enterprise"]["sla_adherence"]["by_facility_service_line"]["fac-east"] == {}


def test_each_enterprise_kpi_says_what_it_is_and_where_it_comes_from(scenario):
    ids = [wf.id for wf in registry.workflows()]
    block = kpis.kpis(scenario, ids, FACILITIES, since=SINCE, now=NOW)["enterprise"]
    across = ("sla_adherence", "model_override_rate")  # computed across every workflow
    sources = {name: kpi["sources"] for name, kpi in block.items() if name not in across}
    assert sources == {
        "authorization_turnaround": [PA],
        "discharge_delay_causes": [DC],
        "stockout_risk": [SR],
        "invoice_exception_aging": [IE],
    }
    assert block["discharge_delay_causes"]["kpi"] == "delay_minutes_by_cause"
    assert block["invoice_exception_aging"]["kpi"] == "exception_aging"
    for kpi in block.values():
        assert kpi["definition"] and kpi["owner"] and kpi["unit"] and kpi["lineage"]
    kpis.KpiReport.model_validate(kpis.kpis(scenario, ids, FACILITIES, since=SINCE, now=NOW))


def test_only_the_callers_facilities_count(scenario):
    ids = [wf.id for wf in registry.workflows()]
    block = kpis.kpis(scenario, ids, ["fac-south"], since=SINCE, now=NOW)["enterprise"]
    assert block["authorization_turnaround"]["value"]["decisions"] == 0
    assert block["stockout_risk"]["value"] == {}
    assert block["sla_adherence"]["value"] == 0.0
    assert block["sla_adherence"]["by_facility"] == {"fac-south": 0.0}
    assert block["sla_adherence"]["by_facility_service_line"] == {
        "fac-south": {"none": {"met": 0, "missed": 1, "ratio": 0.0}}
    }


def test_an_enterprise_kpi_no_workflow_serves_is_null(scenario):
    block = kpis.kpis(scenario, [PA], FACILITIES, since=SINCE, now=NOW)["enterprise"]
    assert block["stockout_risk"]["value"] is None
    assert block["stockout_risk"]["sources"] == []
    assert block["authorization_turnaround"]["value"]["decisions"] == 3


def test_an_unknown_or_twice_declared_enterprise_kpi_is_refused(monkeypatch):
    from dataclasses import replace

    wfs = registry.workflows()
    bogus = KpiDefinition("x", "count", "d", "o", "l", enterprise="no_such_kpi")
    first = replace(wfs[0], served_kpis=(bogus,))
    monkeypatch.setattr(registry, "workflows", lambda: [first])
    with pytest.raises(ValueError, match="no enterprise KPI"):
        kpis.enterprise_sources()
    twice = KpiDefinition("x", "count", "d", "o", "l", enterprise="stockout_risk")
    a = replace(wfs[0], served_kpis=(twice,))
    b = replace(wfs[1], served_kpis=(twice,))
    monkeypatch.setattr(registry, "workflows", lambda: [a, b])
    with pytest.raises(ValueError, match="declared by"):
        kpis.enterprise_sources()
