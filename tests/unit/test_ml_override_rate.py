"""model_override_rate (GET /v1/kpis's enterprise block, ``careflow kpis``): people's
answers to the models' suggestions, from the audit entries record_review writes,
hand-computed by model, workflow and facility over the window; and the EMF metric a review
emits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from careflow import kpis
from careflow.cli import kpi_table
from careflow.domain.records import Instance, InstanceStatus
from careflow.ml.governance import record_review
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)
SINCE = NOW - 7 * D
PA, DC = "prior-authorization", "discharge-coordination"


def _instance(s, iid, workflow, facility):
    s.instances[iid] = Instance(
        instance_id=iid,
        workflow_id=workflow,
        subject_type="x",
        subject_id=f"s-{iid}",
        facility_id=facility,
        status=InstanceStatus.WAITING,
        started_at=NOW - 2 * D,
        updated_at=NOW - H,
        correlation_id=iid,
        execution_name=iid,
    )


def _review(s, iid, model, decision, *, at=NOW - H):
    suggestion = {"model_id": model, "version": "v1", "label": "x", "decision": "follow"}
    record_review(s, instance_id=iid, suggestion=suggestion, decision=decision, actor="u", now=at)


def _scenario():
    s = InMemoryStateStore()
    _instance(s, "pa-1", PA, "fac-north")
    _instance(s, "pa-2", PA, "fac-south")
    _instance(s, "dc-1", DC, "fac-north")
    # pa_attachments at fac-north: 2 accepted, 1 overridden; at fac-south: 1 overridden.
    _review(s, "pa-1", "pa_attachments", "follow")
    _review(s, "pa-1", "pa_attachments", "follow")
    _review(s, "pa-1", "pa_attachments", "other")
    _review(s, "pa-2", "pa_attachments", "other")
    # task_priority in both workflows at fac-north: 3 accepted.
    _review(s, "pa-1", "task_priority", "follow")
    _review(s, "dc-1", "task_priority", "follow")
    _review(s, "dc-1", "task_priority", "follow")
    # discharge_delay: 1 overridden within the window, 1 before it (not counted).
    _review(s, "dc-1", "discharge_delay", "other")
    _review(s, "dc-1", "discharge_delay", "other", at=SINCE - H)
    return s


def test_override_rate_is_hand_computed_by_model_workflow_and_facility():
    report = kpis.kpis(_scenario(), [PA, DC], ["fac-north", "fac-south"], since=SINCE, now=NOW)
    k = report["enterprise"]["model_override_rate"]
    # 8 reviews within the window, 3 overridden (pa_attachments 2, discharge_delay 1).
    assert k["value"] == round(3 / 8, 4)
    assert k["by_model"] == {"discharge_delay": 1.0, "pa_attachments": 0.5, "task_priority": 0.0}
    # prior-authorization: 5 reviews (4 pa_attachments, 1 task_priority), 2 overridden.
    assert k["by_workflow"] == {DC: round(1 / 3, 4), PA: 0.4}
    # fac-north: 2+1 pa_attachments, 3 task_priority, 1 discharge_delay = 7, 2 overridden.
    assert k["by_facility"] == {"fac-north": round(2 / 7, 4), "fac-south": 1.0}
    assert k["by_model_facility"]["pa_attachments"] == {
        "fac-north": {"accepted": 2, "overridden": 1, "ratio": round(1 / 3, 4)},
        "fac-south": {"accepted": 0, "overridden": 1, "ratio": 1.0},
    }
    assert k["unit"] == "ratio" and "model.overridden" in k["lineage"] and k["owner"]
    # What GET /v1/kpis answers validates against its declared model.
    kpis.KpiReport.model_validate(report)


def test_override_rate_is_null_without_reviews_and_kept_to_the_facilities_asked():
    report = kpis.kpis(_scenario(), [PA, DC], ["fac-south"], since=SINCE, now=NOW)
    k = report["enterprise"]["model_override_rate"]
    assert k["value"] == 1.0 and k["by_model"] == {"pa_attachments": 1.0}
    empty = InMemoryStateStore()
    none = kpis.kpis(empty, [PA], ["fac-north"], since=SINCE, now=NOW)
    assert none["enterprise"]["model_override_rate"]["value"] is None
    assert none["enterprise"]["model_override_rate"]["by_model"] == {}


def test_careflow_kpis_prints_the_override_rate_by_model():
    report = kpis.kpis(_scenario(), [PA, DC], ["fac-north", "fac-south"], since=SINCE, now=NOW)
    text = kpi_table(json.loads(json.dumps(report, default=str)))
    assert "model override rate: 38%" in text
    assert "by model: discharge_delay 100%, pa_attachments 50%, task_priority 0%" in text


def test_a_review_emits_one_emf_line_with_the_model_id(monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    s = InMemoryStateStore()
    _review(s, "pa-1", "pa_attachments", "other")
    _review(s, "pa-1", "pa_attachments", "follow")
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert [(x["model_id"], x["ModelOverridden"]) for x in lines] in (
        [("pa_attachments", 1.0), ("pa_attachments", 0.0)],
        [("pa_attachments", [1.0]), ("pa_attachments", [0.0])],
    )
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model_id"]]
    assert [a.action for a in s.audit] == ["model.overridden", "model.accepted"]
