"""Each workflow's own KPIs (declared in its package, served through the kit's hook),
hand-computed on a seeded in-memory store; and careflow.kpis naming no workflow."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from careflow import kpis
from careflow.domain.records import AuditEntry, Instance, InstanceStatus, Milestone
from careflow.kit import registry
from careflow.kit.kpis import KpiDefinition
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
SINCE = NOW - 7 * D
DC, SG = "discharge-coordination", "staffing-gaps"


def _instance(
    store: InMemoryStateStore,
    iid: str,
    workflow: str,
    ended: datetime,
    outcome: str | None,
    *,
    facility: str = "fac-north",
    status: InstanceStatus = InstanceStatus.COMPLETED,
) -> None:
    store.instances[iid] = Instance(
        instance_id=iid,
        workflow_id=workflow,
        subject_type="encounter",
        subject_id=f"s-{iid}",
        facility_id=facility,
        status=status,
        started_at=ended - D,
        updated_at=ended,
        correlation_id=iid,
        execution_name=iid,
        outcome=outcome,
    )


def _discharge(
    store: InMemoryStateStore,
    iid: str,
    departed: datetime,
    order_minutes: int | None,
    delays: dict[str, int] | None = None,
    *,
    facility: str = "fac-north",
    ended: datetime | None = None,
    outcome: str = "DISCHARGED",
) -> None:
    _instance(store, iid, DC, ended or departed + H, outcome, facility=facility)
    for cause, minutes in (delays or {}).items():
        store.record(
            AuditEntry(
                instance_id=iid,
                at=departed + H,
                actor="system:discharge",
                action="delay_recorded",
                reason=cause,
                detail={"dependency": "x", "cause": cause, "owner": "o", "minutes": minutes},
            )
        )
    if order_minutes is None:  # concluded before finalize measured it: the A03 milestone
        store.record(Milestone(instance_id=iid, name="discharged", at=departed))
        return
    store.record(
        AuditEntry(
            instance_id=iid,
            at=departed + H,
            actor="system:discharge",
            action="discharge_measured",
            reason=outcome,
            detail={
                "ordered_at": (departed - order_minutes * timedelta(minutes=1)).isoformat(),
                "departed_at": departed.isoformat(),
                "order_to_departure_seconds": order_minutes * 60,
                "before_noon": None,
                "noon_hour": 12,
            },
        )
    )


@pytest.fixture
def discharges() -> InMemoryStateStore:
    s = InMemoryStateStore()
    # fac-north and fac-south are in America/Chicago (UTC-6 in November)
    _discharge(  # 11:30 in Chicago, 17:30 UTC: before noon at the facility only
        s, "D1", datetime(2026, 11, 27, 17, 30, tzinfo=UTC), 240, {"awaiting transport": 30}
    )
    _discharge(  # 23:00 in Chicago the day before, 05:00 UTC: before noon in UTC only
        s,
        "D2",
        datetime(2026, 11, 28, 5, 0, tzinfo=UTC),
        600,
        {"awaiting transport": 15, "pharmacy": 45},
    )
    _discharge(s, "D3", datetime(2026, 11, 26, 15, 0, tzinfo=UTC), 120)  # 09:00: before noon
    _discharge(s, "D4", datetime(2026, 11, 25, 16, 0, tzinfo=UTC), None)  # 10:00, not measured
    _instance(s, "D5", DC, NOW - D, "NOT_DISCHARGED")  # no departure: not counted
    _discharge(  # concluded before the window: not counted, nor its delays
        s, "D6", NOW - 9 * D, 30, {"DME": 500}, ended=NOW - 8 * D
    )
    _discharge(  # another facility
        s, "D7", datetime(2026, 11, 27, 15, 0, tzinfo=UTC), 60, {"DME": 20}, facility="fac-south"
    )
    _instance(s, "D8", DC, NOW - H, None, status=InstanceStatus.WAITING)  # still waiting
    return s


def test_discharge_kpis_are_order_to_departure_before_noon_and_delays_by_cause(discharges):
    found = kpis.workflow_kpis(discharges, DC, ["fac-north"], since=SINCE, now=NOW)
    assert found["order_to_departure"] == {
        "discharges": 3,  # D1 240, D2 600, D3 120 minutes; D4 was not measured
        "p50_minutes": 240.0,  # rank ceil(0.5 * 3) = 2 of 120, 240, 600
        "p90_minutes": 600.0,  # rank ceil(0.9 * 3) = 3
    }
    assert found["discharged_before_noon"] == {
        "discharges": 4,  # D1..D4 departed (D4 by its A03 milestone)
        "before_noon": 3,  # D1, D3, D4 (facility time); D2 left at 23:00
        "share": 0.75,
    }
    delays = found["delay_minutes_by_cause"]
    assert list(delays)[:3] == ["awaiting transport", "pharmacy", "DME"]  # the fixed list
    assert delays["awaiting transport"] == 45 and delays["pharmacy"] == 45
    assert sum(delays.values()) == 90  # D6 (before the window) and D7 (fac-south) not here
    assert (found["completed"], found["running"]) == (5, 1)


def test_discharge_kpis_follow_the_window_and_the_facilities(discharges):
    south = kpis.workflow_kpis(discharges, DC, ["fac-south"], since=SINCE, now=NOW)
    assert south["order_to_departure"] == {
        "discharges": 1,
        "p50_minutes": 60.0,
        "p90_minutes": 60.0,
    }
    assert south["discharged_before_noon"] == {"discharges": 1, "before_noon": 1, "share": 1.0}
    assert south["delay_minutes_by_cause"]["DME"] == 20
    # D2 concluded at 06:00 UTC on the 28th, D1 at 18:30 UTC on the 27th
    late = kpis.workflow_kpis(
        discharges, DC, ["fac-north"], since=datetime(2026, 11, 28, tzinfo=UTC), now=NOW
    )
    assert late["order_to_departure"]["discharges"] == 1
    assert late["discharged_before_noon"] == {"discharges": 1, "before_noon": 0, "share": 0.0}
    none = kpis.workflow_kpis(discharges, DC, ["fac-north"], since=NOW - H, now=NOW)
    assert none["order_to_departure"] == {
        "discharges": 0,
        "p50_minutes": None,
        "p90_minutes": None,
    }
    assert none["discharged_before_noon"]["share"] is None
    assert set(none["delay_minutes_by_cause"].values()) == {0}


def _gap(
    store: InMemoryStateStore,
    iid: str,
    outcome: str,
    *,
    early: bool = False,
    unfilled: bool = False,
    overtime: float = 0.0,
    facility: str = "fac-north",
    ended: datetime = NOW - D,
    measured: bool = True,
) -> None:
    _instance(store, iid, SG, ended, outcome, facility=facility)
    if measured:
        store.record(
            AuditEntry(
                instance_id=iid,
                at=ended,
                actor="system:staffing",
                action="staffing_measured",
                reason=outcome,
                detail={
                    "unit": "4W",
                    "shift_start": ended.isoformat(),
                    "found_early": early,
                    "unfilled_at_shift_start": unfilled,
                    "overtime_hours": overtime,
                },
            )
        )


def test_staffing_kpis_are_gaps_found_early_unfilled_at_shift_start_and_overtime():
    s = InMemoryStateStore()
    _gap(s, "S1", "FILLED", early=True, overtime=24.0)  # 2 nurses x 12 h of overtime
    _gap(s, "S2", "UNFILLED", unfilled=True)
    _gap(s, "S3", "FILLED", early=True)  # the float pool: no overtime
    _gap(s, "S4", "FILLED", early=False, overtime=12.5, ended=NOW - 2 * H)
    _gap(s, "S5", "NO_GAP", measured=False)  # no gap: nothing measured, not counted
    _gap(s, "S6", "UNFILLED", unfilled=True, facility="fac-south")
    _gap(s, "S7", "FILLED", early=True, overtime=12.0, ended=NOW - 8 * D)  # before the window
    found = kpis.workflow_kpis(s, SG, ["fac-north"], since=SINCE, now=NOW)
    assert found["gaps_found_early"] == {"gaps": 4, "found_early": 2, "share": 0.5}
    assert found["gaps_unfilled_at_shift_start"] == 1
    assert found["overtime_hours"] == 36.5
    short = kpis.workflow_kpis(s, SG, ["fac-north"], since=NOW - 3 * H, now=NOW)
    assert short["gaps_found_early"] == {"gaps": 1, "found_early": 0, "share": 0.0}
    assert (short["gaps_unfilled_at_shift_start"], short["overtime_hours"]) == (0, 12.5)
    south = kpis.workflow_kpis(s, SG, ["fac-south"], since=SINCE, now=NOW)
    assert south["gaps_found_early"] == {"gaps": 1, "found_early": 0, "share": 0.0}
    assert (south["gaps_unfilled_at_shift_start"], south["overtime_hours"]) == (1, 0.0)
    empty = kpis.workflow_kpis(s, SG, [], since=SINCE, now=NOW)
    assert empty["gaps_found_early"] == {"gaps": 0, "found_early": 0, "share": None}


# -- the hook ------------------------------------------------------------------------------
def test_careflow_kpis_names_no_workflow():
    source = Path(kpis.__file__).read_text(encoding="utf-8")
    for wf in registry.workflows():
        assert wf.id not in source and wf.package not in source, wf.id
        for k in wf.served_kpis:
            assert k.name not in source, k.name
    assert not re.search(r"authoriz|discharg|staffing", source, re.I)


def test_every_kpi_a_workflow_serves_is_declared_with_its_definition():
    for wf in registry.workflows():
        assert bool(wf.served_kpis) == (wf.kpi_function() is not None), wf.id
    report = kpis.kpis(InMemoryStateStore(), [DC, SG], ["fac-north"], since=SINCE, now=NOW)
    served = {k for row in report["workflows"] for k in row} - {"workflow_id"}
    assert served == set(report["definitions"]) == {k.name for k in kpis.catalogue([DC, SG])}
    model = kpis.KpiReport.model_json_schema()["$defs"]["WorkflowKpis"]["properties"]
    assert {k.name for k in kpis.catalogue()} <= set(model)


SEEN: list[list[str]] = []


def echo_values(store, instances, since, now):
    SEEN.append(sorted(i.instance_id for i in instances))
    return {"echoes": len(instances)}


@pytest.fixture
def echo(monkeypatch):
    """A registered workflow with a KPI of its own (no package: the registry is patched)."""
    base = registry.workflow(SG)
    fake = replace(
        base,
        id="echo-wf",
        name="EchoWf",
        served_kpis=(KpiDefinition("echoes", "count", "instances seen", "kit", "instance"),),
        kpi_values=f"{__name__}:echo_values",
    )
    registered = registry.workflows()
    monkeypatch.setattr(registry, "workflows", lambda: (*registered, fake))
    SEEN.clear()
    return fake


def test_a_registered_workflows_kpi_function_is_called_with_its_instances(echo):
    s = InMemoryStateStore()
    _instance(s, "E1", "echo-wf", NOW - D, "DONE")
    _instance(s, "E2", "echo-wf", NOW - D, "DONE", facility="fac-south")
    _instance(s, "E3", "echo-wf", NOW - H, None, status=InstanceStatus.RUNNING)
    report = kpis.kpis(s, ["echo-wf"], ["fac-north"], since=SINCE, now=NOW)
    assert report["workflows"][0]["echoes"] == 2
    assert SEEN == [["E1", "E3"]]
    assert report["definitions"]["echoes"] == "instances seen"


def test_a_kpi_function_answering_what_it_did_not_declare_is_refused(echo, monkeypatch):
    broken = replace(echo, kpi_values=f"{__name__}:_undeclared")
    monkeypatch.setattr(registry, "workflows", lambda: (broken,))
    with pytest.raises(ValueError, match="declares"):
        kpis.workflow_kpis(InMemoryStateStore(), "echo-wf", ["fac-north"], since=SINCE, now=NOW)


def _undeclared(store, instances, since, now):
    return {"echoes": 0, "surprise": 1}


def test_two_workflows_may_not_declare_one_kpi_differently():
    a = KpiDefinition("x", "count", "one thing", "o", "l")
    wf = registry.workflow(SG)
    with pytest.raises(registry.RegistryError, match="declared twice"):
        registry._check(
            [
                replace(wf, served_kpis=(a,), kpi_values="m:f"),
                replace(
                    registry.workflow(DC),
                    served_kpis=(replace(a, definition="another"),),
                    kpi_values="m:f",
                ),
            ]
        )
