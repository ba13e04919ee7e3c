"""Drift: PSI hand-computed; the daily check over model.predicted audit entries (the
ModelDrift handler's logic, and the handler emitting ModelDriftPsi); ``careflow models
drift --history FILE`` on a history shifted on purpose (ALARM, exit 1) and not (ok, 0)."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from careflow import cli
from careflow.domain.records import AuditEntry, Instance, InstanceStatus
from careflow.ml import drift, drift_check, priority, registry
from careflow.ml.history import write_jsonl
from tests.fakes import InMemoryStateStore

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def test_psi_is_hand_computed_for_a_category_and_a_number():
    ref = {
        "queue": {"shares": {"a": 0.5, "b": 0.5}},
        "hours": {"edges": [10.0], "shares": [0.5, 0.5]},
    }
    rows = [{"queue": "a", "hours": 1.0}] * 3 + [{"queue": "b", "hours": 20.0}]
    # queue: recent a .75, b .25: (.75-.5)ln(.75/.5) + (.25-.5)ln(.25/.5); hours the same
    expected = round(0.25 * math.log(1.5) + (-0.25) * math.log(0.5), 4)
    assert drift.psi(ref, rows) == {"queue": expected, "hours": expected}
    assert expected == pytest.approx(0.2747, abs=1e-4)
    assert drift.psi(ref, [{"queue": "a", "hours": 1.0}, {"queue": "b", "hours": 11.0}]) == {
        "queue": 0.0,
        "hours": 0.0,
    }


def _inputs(shift: float, n: int, seed: int = 7) -> list[dict]:
    """task_priority inputs like the generated history's, hours_to_deadline shifted."""
    rng = random.Random(seed)
    rows = []
    for rec in priority.generate(rng, n):
        t = rec["tasks"][0]
        created = datetime.fromisoformat(t["created_at"])
        due = datetime.fromisoformat(t["due_at"])
        deadline = datetime.fromisoformat(t["deadline_at"]) if t["deadline_at"] else None
        rows.append(
            priority.features_of(
                workflow_id=t["workflow_id"],
                queue=t["queue"],
                due_in_seconds=(due - created).total_seconds(),
                deadline_at=deadline - timedelta(hours=shift) if deadline else None,
                value_usd=t["value_usd"],
                awaits_decision=bool(t["allowed_decisions"]),
                now=created,
            )
        )
    return rows


def _store_with(rows: list[dict], *, at: datetime) -> InMemoryStateStore:
    from careflow.ml.features import checked

    s = InMemoryStateStore()
    s.instances["i-1"] = Instance(
        instance_id="i-1",
        workflow_id="prior-authorization",
        subject_type="x",
        subject_id="s",
        facility_id="fac-north",
        status=InstanceStatus.WAITING,
        started_at=at,
        updated_at=at,
        correlation_id="i-1",
        execution_name="i-1",
    )
    for n, row in enumerate(rows):
        s.record_audit(
            AuditEntry(
                instance_id="i-1",
                at=at,
                actor="model:task_priority",
                action="model.predicted",
                reason="r",
                detail={
                    "model_id": "task_priority",
                    "about": f"t{n}",
                    "features": checked(priority.FEATURES, row),
                },
            )
        )
    return s


DEADLINE_FEATURES = {"hours_to_deadline", "deadline_within_day", "deadline_within_shift"}


def test_the_daily_check_reads_recent_predictions_and_alarms_on_a_shift():
    defn = registry.definition("task_priority")
    steady = _store_with(_inputs(0, 600), at=NOW - timedelta(days=2))
    shifted = _store_with(_inputs(200, 600), at=NOW - timedelta(days=2))
    old = _store_with(_inputs(200, 600), at=NOW - timedelta(days=45))  # outside 30 days
    days, line, least = drift_check.policy_values()
    assert (days, line, least) == (30, 0.25, 100)  # policies/enterprise/ai-models.json
    few = _store_with(_inputs(200, least - 1), at=NOW - timedelta(days=2))
    results = {}
    for name, store in (("steady", steady), ("shifted", shifted), ("old", old), ("few", few)):
        audit = drift_check.audit_since(store, ["prior-authorization"], NOW - timedelta(days=90))
        (r,) = drift_check.check(
            audit, now=NOW, window_days=days, line=line, models=[defn], min_inputs=least
        )
        results[name] = r
    assert results["steady"].inputs == 600 and not results["steady"].alarm
    assert results["steady"].max_psi < 0.1
    assert results["shifted"].alarm and results["shifted"].feature in DEADLINE_FEATURES
    assert results["shifted"].max_psi >= line
    assert results["old"].inputs == 0 and not results["old"].alarm
    # as shifted, but too few to judge a population: no alarm
    assert results["few"].max_psi >= line and not results["few"].enough
    assert not results["few"].alarm


def test_the_handler_emits_model_drift_psi_per_model(monkeypatch, capsys):
    import lambdas.model_drift as handler
    from careflow import wiring

    store = _store_with(_inputs(200, 300), at=NOW - timedelta(days=1))
    monkeypatch.setattr(wiring, "store", lambda: store)
    monkeypatch.setattr(wiring, "policies", lambda: None)
    monkeypatch.setattr(handler.clock, "now", lambda: NOW)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    out = handler.handler({}, None)
    mine = [m for m in out["models"] if m["model_id"] == "task_priority"]
    assert mine[0]["inputs"] == 300 and mine[0]["alarm"] is True
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    drifted = [e for e in emf if "ModelDriftPsi" in e]
    assert [e["model_id"] for e in drifted] == ["task_priority"]  # the others had no inputs
    value = drifted[0]["ModelDriftPsi"]
    assert (value[0] if isinstance(value, list) else value) == mine[0]["max_psi"]


def _history(tmp_path, shifted: bool):
    records = priority.generate(random.Random(11), 1500)
    if shifted:  # every deadline 200 hours nearer, as the model would have seen it
        for rec in records:
            t = rec["tasks"][0]
            if t["deadline_at"]:
                d = datetime.fromisoformat(t["deadline_at"]) - timedelta(hours=200)
                t["deadline_at"] = d.isoformat()
            for a in rec["audit"]:
                f = a["detail"]["features"]
                if f["hours_to_deadline"] is not None:
                    f["hours_to_deadline"] -= 200
    path = tmp_path / ("shifted.jsonl" if shifted else "steady.jsonl")
    write_jsonl(records, path)
    return path


@pytest.mark.parametrize(("shifted", "code", "flag"), [(False, 0, "ok"), (True, 1, "ALARM")])
def test_models_drift_on_a_history_file(tmp_path, capsys, shifted, code, flag):
    path = _history(tmp_path, shifted)
    assert cli.main(["models", "drift", "--history", str(path), "--model", "task_priority"]) == code
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("drift model=task_priority psi=") and line.endswith(f" {flag}")
    if shifted:
        assert "feature=hours_to_deadline" in line


def test_the_attachment_model_is_measured_on_its_resource_types_never_its_text():
    """A model with text keeps its other features in the audit (never the text), so the
    check measures it: asked only about Communications (3.6% of its training documents)
    its resource types have shifted; asked about its training mix, they have not."""
    from careflow.adapters.predictor_local import LocalPredictor, Predictors
    from careflow.ml.governance import suggest
    from careflow.policies import FilePolicyStore

    defn = registry.definition("pa_attachments")
    assert drift_check.measurable(defn) and any(f.kind == "text" for f in defn.features)
    shares = registry.artifact("pa_attachments")["reference"]["resource"]["shares"]
    mix = [kind for kind, share in shares.items() for _ in range(round(share * 200))]
    days, line, least = drift_check.policy_values()
    results = {}
    for name, kinds in (("mix", mix), ("communications", ["Communication"] * len(mix))):
        store = _store_with([], at=NOW - timedelta(days=1))
        for n, kind in enumerate(kinds):
            suggest(
                "pa_attachments",
                {"resource": kind, "text": f"Operative note, Jane Doe MRN 12345678, doc {n}"},
                instance_id="i-1",
                facility_id="fac-north",
                predictor=Predictors(LocalPredictor()),
                store=store,
                now=NOW - timedelta(days=1),
                policies=FilePolicyStore(),
                about=f"doc-{n}",
            )
        blob = json.dumps([e.model_dump(mode="json") for e in store.audit])
        assert "Operative" not in blob and "Jane" not in blob and "12345678" not in blob
        audit = drift_check.audit_since(store, ["prior-authorization"], NOW - timedelta(days=90))
        (results[name],) = drift_check.check(
            audit, now=NOW, window_days=days, line=line, models=[defn], min_inputs=least
        )
    assert results["mix"].inputs == len(mix) >= least and not results["mix"].alarm
    assert results["mix"].max_psi < 0.1
    assert results["communications"].alarm and results["communications"].feature == "resource"


def test_a_retried_steps_second_audit_of_the_same_prediction_counts_once():
    """A step that fails after predicting is retried by its state machine and audits the
    prediction again; the drift check counts one input per instance, subject and hash."""
    from careflow.ml.features import checked, input_hash

    row = checked(priority.FEATURES, _inputs(0, 1)[0])

    def predicted(instance_id: str, about: str, minutes: int) -> dict:
        return {
            "instance_id": instance_id,
            "at": (NOW - timedelta(minutes=minutes)).isoformat(),
            "action": "model.predicted",
            "detail": {
                "model_id": "task_priority",
                "about": about,
                "input_hash": input_hash(row),
                "features": row,
            },
        }

    audit = [
        predicted("i-1", "t1", 10),
        predicted("i-1", "t1", 9),  # the retry, a minute later
        predicted("i-1", "t2", 8),  # another task of the instance, same features
        predicted("i-2", "t1", 7),  # another instance
    ]
    found = drift_check.recent_inputs(audit, "task_priority", NOW - timedelta(days=1), NOW)
    assert found == [row, row, row]
