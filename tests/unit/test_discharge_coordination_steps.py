"""Every step of discharge coordination through the kit's entry point with in-memory fakes,
and its rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from careflow.canonical.payer import EligibilityResponse, EncounterCoverage
from careflow.domain.records import Milestone
from careflow.kit.registry import workflow
from careflow.kit.runtime import invoke
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.discharge_coordination import rules as r
from careflow.workflows.prior_authorization.steps import IncomingRequest
from tests import fakes
from tests.fakes import FakeErp, FakePayer, FakePublisher, FakeServices, InMemoryStateStore

NOW = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)  # 08:00 in Chicago
CHICAGO = ZoneInfo("America/Chicago")
STEPS = "careflow.workflows.discharge_coordination.steps"
SPEC = workflow("discharge-coordination")
POLICIES = FilePolicyStore()
EXPECTED = datetime(2026, 11, 29, 11, 0, tzinfo=CHICAGO)


def policy(disposition: str | None = "01", expected: datetime | None = EXPECTED) -> r.Policy:
    snapshot = resolve(r.POLICY, "fac-north", at=NOW, store=POLICIES)
    return r.discharge_policy(
        snapshot,
        disposition=disposition,
        expected_discharge_at=expected,
        received_at=NOW,
        zone=CHICAGO,
    )


class CoverageEhr:
    """The EHR's encounters and their coverage, by visit number (None: no such encounter)."""

    def __init__(self, **encounters: EncounterCoverage | None) -> None:
        self.encounters = encounters
        self.asked: list[str] = []

    def encounter_coverage(self, encounter_id: str) -> EncounterCoverage | None:
        self.asked.append(encounter_id)
        return self.encounters.get(encounter_id)


COVERED = EncounterCoverage(
    encounter_id="V100", patient_ref="Patient/p1", coverage_ref="Coverage/c1", payer_id="payer-a"
)
SELF_PAY = COVERED.model_copy(update={"coverage_ref": None, "payer_id": None})


def ports(**given):
    base = {
        "ehr": CoverageEhr(V100=COVERED),
        "payer": FakePayer(eligibility=EligibilityResponse(active=True, covered=True)),
        "store": InMemoryStateStore(),
        "publisher": FakePublisher(),
        "policies": POLICIES,
        "now": NOW,
        "transport": FakeServices(NOW),
        "pharmacy": FakeServices(NOW, lead=timedelta(minutes=30)),
        "erp": FakeErp(expected_delivery=NOW + timedelta(hours=1)),
        "predictor": None,  # no model: the rules decide (the model's tests give one)
    }
    base.update(given)
    return base.__getitem__, base


def run(name: str, event: dict, **given) -> tuple[dict, dict]:
    resolver, used = ports(**given)
    return invoke(f"{STEPS}:{name}", event, ports=resolver), used


def arrange_input(p: r.Policy) -> dict:
    return {
        "instance_id": "dc-1",
        "facility_id": "fac-north",
        "encounter_id": "V100",
        "policy": p.model_dump(mode="json"),
    }


# -- rules ---------------------------------------------------------------------------------
def test_without_an_expected_time_the_policy_expects_11_00_the_next_day_facility_time():
    p = policy(expected=None)
    assert p.expected_discharge_at == datetime(2026, 11, 30, 11, 0, tzinfo=CHICAGO)
    assert p.threat_at == p.expected_discharge_at - timedelta(minutes=60)


@pytest.mark.parametrize(
    ("disposition", "needs"),
    [
        ("01", ("transport", "pharmacy", "billing")),
        ("06", ("transport", "pharmacy", "dme", "post_acute_authorization", "billing")),
        ("03", ("transport", "post_acute_authorization", "billing")),
        ("07", ("billing",)),
        (None, ("transport", "pharmacy", "billing")),
    ],
)
def test_the_disposition_decides_the_dependencies(disposition, needs):
    assert policy(disposition).needs == needs


def test_every_delay_cause_of_the_policy_is_one_of_the_fixed_list():
    assert {o.cause for o in policy().owners.values()} <= set(r.DELAY_CAUSES)


def test_a_dependency_ready_after_the_threat_line_threatens_the_discharge():
    p = policy()
    late = r.arranged("transport", "TRN-1", p.expected_discharge_at + timedelta(minutes=90), p)
    met = r.arranged("pharmacy", "RX-1", p.threat_at, p)
    evaluation = r.evaluate([late, met], p)
    assert (late.status, met.status) == (r.LATE, r.MET)
    assert evaluation.threatened == ("transport",)
    assert evaluation.predicted[0].model_dump() == {
        "dependency": "transport",
        "cause": "awaiting transport",
        "owner": "case_manager",
        "minutes": 90,
    }


def test_delays_are_counted_against_the_expected_time_up_to_the_departure():
    p = policy()
    deps = [
        r.arranged("transport", "T", p.expected_discharge_at + timedelta(hours=2), p),
        r.arranged("dme", "D", p.expected_discharge_at + timedelta(hours=5), p),
        r.arranged("pharmacy", "R", p.expected_discharge_at - timedelta(hours=2), p),
        r.Dependency(dependency="post_acute_authorization", status=r.NOT_NEEDED),
    ]
    departed = p.expected_discharge_at + timedelta(hours=3)
    got = {d.dependency: (d.cause, d.minutes) for d in r.delays(deps, p, departed)}
    assert got == {"transport": ("awaiting transport", 120), "dme": ("DME", 180)}
    assert r.before_noon(p.expected_discharge_at, p)
    assert not r.before_noon(departed, p)


# -- steps ---------------------------------------------------------------------------------
def test_register_discharge_pins_the_policy_and_keeps_the_patient_off_the_state():
    out, used = run(
        "register_discharge",
        {
            "instance_id": "dc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "occurred_at": NOW.isoformat(),
            "encounter_id": "V100",
            "disposition": "06",
            "expected_discharge_at": None,
            "patient_id": "MRN123",
            "patient_id_authority": "NVMC",
        },
    )
    assert out["needs"] == {
        "transport": True,
        "pharmacy": True,
        "dme": True,
        "post_acute_authorization": True,
        "billing": True,
    }
    assert "MRN123" not in str(out)
    instance = used["store"].get_instance("dc-1")
    assert instance.subject_type == "encounter" and instance.subject_id == "V100"
    assert instance.subject_refs == {"patient": "NVMC|MRN123"}
    assert out["policy"]["policy_version"].startswith("discharge-coordination@")


def test_book_transport_asks_the_vendor_for_the_expected_time_and_records_it():
    p = policy()
    vendor = FakeServices(NOW, lead=timedelta(hours=6))  # pickup at 14:00 Chicago
    out, used = run("book_transport", arrange_input(p), transport=vendor)
    assert out["status"] == r.LATE and out["reference"] == "BK-1"
    assert vendor.requests[0].needed_by == p.expected_discharge_at
    assert vendor.requests[0].reference == "V100"
    [m] = used["store"].milestones("dc-1")
    assert (m.name, m.status) == ("transport_arranged", "PENDING")


def test_order_meds_to_beds_is_met_when_the_pharmacy_is_ready_in_time():
    out, _ = run("order_meds_to_beds", arrange_input(policy()))
    assert out["status"] == r.MET and out["dependency"] == "pharmacy"


def test_order_dme_is_an_erp_requisition_idempotent_on_the_encounter():
    erp = FakeErp(expected_delivery=NOW + timedelta(hours=8))
    out, _ = run("order_dme", arrange_input(policy("06")), erp=erp)
    [req] = erp.requisitions
    assert req.reference == "discharge:V100"
    assert [line.item_id for line in req.lines] == ["DME-WALKER-STD"]
    assert req.supplier_id == "sup-homemed"
    assert out["status"] == r.LATE and out["reference"] == "REQ-1"


def test_post_acute_authorization_goes_to_the_prior_authorization_workflow_as_a_child():
    p = policy("06")
    out, used = run("request_post_acute_authorization", arrange_input(p))
    assert out["route"] == "CHILD" and out["auth_instance_id"] == "dc-1-auth"
    request = out["auth_request"]
    assert request == {
        "request_id": "dc-1-auth",
        "encounter_id": "V100",
        "service_line": "post-acute",
        "payer_id": "payer-a",
        "procedure_codes": [
            {
                "system": "https://www.nubc.org/CodeSystem/RevenueCodes",
                "code": "0023",
                "display": "Home health prospective payment system",
            }
        ],
        "service_date": p.expected_discharge_at.isoformat(),
        "priority": "expedited",
    }
    # the child takes it as it is; no patient or coverage reference enters the state
    assert IncomingRequest.model_validate(request).encounter_id == "V100"
    assert "Patient/" not in str(out) and "Coverage/" not in str(out)
    [m] = used["store"].milestones("dc-1")
    assert (m.name, m.status) == ("post_acute_authorization_requested", "PENDING")


@pytest.mark.parametrize(
    ("ehr", "disposition", "why"),
    [
        (CoverageEhr(), "06", "the EHR does not know the encounter"),
        (CoverageEhr(V100=SELF_PAY), "03", "no active coverage with a payer"),
        (CoverageEhr(V100=COVERED), "99", "the policy has no service code"),
    ],
)
def test_post_acute_authorization_is_pending_on_a_person_without_coverage_or_code(
    ehr, disposition, why
):
    out, _ = run("request_post_acute_authorization", arrange_input(policy(disposition)), ehr=ehr)
    assert out["route"] == "PERSON" and out["auth_request"] is None
    dep = out["dependency"]
    assert dep["status"] == r.PENDING and dep["reason"].startswith(why)
    assert r.evaluate([r.Dependency.model_validate(dep)], policy()).threatened == (
        "post_acute_authorization",
    )


def test_the_post_acute_wait_ends_at_the_threat_line():
    p = policy("06")
    assert p.post_acute_wait_s == int((p.threat_at - NOW).total_seconds())
    assert policy("06", expected=NOW).post_acute_wait_s == 60  # never less than a minute


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("APPROVED", r.MET),
        ("MODIFIED", r.MET),
        ("NOT_REQUIRED", r.MET),
        ("DENIED", r.DENIED),
        ("PARTIAL", r.PENDING),
        ("EXPIRED", r.PENDING),
        ("ERROR", r.PENDING),
    ],
)
def test_the_childs_outcome_is_the_post_acute_dependency(outcome, status):
    store = InMemoryStateStore()
    store.record_milestone(Milestone(instance_id="dc-1-auth", name="submitted", at=NOW))
    store.record_milestone(Milestone(instance_id="dc-1-auth", name="pended", at=NOW))
    out, _ = run(
        "record_post_acute_authorization",
        {
            "instance_id": "dc-1",
            "policy": policy("06").model_dump(mode="json"),
            "auth": {"outcome": outcome, "preauth_ref": "PA-1", "instance_id": "dc-1-auth"},
        },
        store=store,
    )
    assert out["dependency"] == "post_acute_authorization" and out["status"] == status
    names = [m.name for m in store.milestones("dc-1")]
    assert names == [
        "post_acute_authorization_submitted",
        "post_acute_authorization_pended",
        "post_acute_authorization_arranged",
    ]
    if status == r.MET:
        assert out["reference"] == "PA-1" and datetime.fromisoformat(out["ready_at"]) == NOW
    else:  # a denial or an open authorization threatens the discharge
        assert r.evaluate([r.Dependency.model_validate(out)], policy("06")).threatened


@pytest.mark.parametrize(
    ("ehr", "eligibility", "status", "why"),
    [
        (CoverageEhr(V100=COVERED), EligibilityResponse(active=True, covered=True), r.MET, ""),
        (
            CoverageEhr(V100=COVERED),
            EligibilityResponse(active=False, covered=False, reason="member termed 2026-10-31"),
            r.PENDING,
            "coverage not active",
        ),
        (CoverageEhr(V100=SELF_PAY), None, r.PENDING, "no active coverage (self-pay)"),
        (CoverageEhr(), None, r.PENDING, "the EHR does not know the encounter"),
    ],
)
def test_billing_readiness_is_the_encounters_coverage_active_with_its_payer(
    ehr, eligibility, status, why
):
    payer = FakePayer(eligibility=eligibility)
    out, used = run("check_billing_readiness", arrange_input(policy()), ehr=ehr, payer=payer)
    assert out["dependency"] == "billing" and out["status"] == status
    assert out["reason"].startswith(why)
    assert "termed" not in str(out)  # the payer's free text is not kept
    assert len(payer.checked) == (1 if eligibility is not None else 0)
    if payer.checked:
        assert payer.checked[0].coverage_ref == "Coverage/c1"
    [m] = used["store"].milestones("dc-1")
    assert m.name == ("billing_ready" if status == r.MET else "billing_not_ready")


def test_billing_never_holds_the_patient_nor_counts_as_a_delay():
    p = policy()
    billing = r.Dependency(dependency="billing", status=r.PENDING, reason="self-pay")
    assert r.evaluate([billing], p).threatened == ()
    assert r.delays([billing], p, p.expected_discharge_at + timedelta(hours=3)) == ()


def test_a_failed_arrangement_is_recorded_as_error():
    out, used = run(
        "record_dependency_error",
        {"instance_id": "dc-1", "dependency": "transport", "error": {"Error": "ConnectorError"}},
    )
    assert out["status"] == r.ERROR
    assert used["store"].milestones("dc-1")[0].name == "transport_failed"


def test_a_post_acute_authorization_still_with_the_payer_at_the_threat_line_is_pending():
    out, used = run(
        "record_dependency_error",
        {
            "instance_id": "dc-1",
            "dependency": "post_acute_authorization",
            "error": {"Error": "States.Timeout"},
        },
    )
    assert out["status"] == r.PENDING and out["reason"].startswith("no decision by the threat")
    assert [m.name for m in used["store"].milestones("dc-1")] == [
        "post_acute_authorization_waiting"
    ]
    assert used["store"].audit_trail("dc-1") == []


def test_evaluate_discharge_opens_a_case_manager_task_spec_when_threatened():
    p = policy()
    late = r.arranged("transport", "T", p.expected_discharge_at + timedelta(hours=1), p)
    event = {
        **arrange_input(p),
        "dependencies": [
            late.model_dump(mode="json"),
            {"dependency": "dme", "status": "NOT_NEEDED"},
        ],
    }
    out, used = run("evaluate_discharge", event)
    assert out["threatened"] is True
    assert out["task"]["escalation_chain"] == [
        "case_manager",
        "charge_nurse",
        "department_director",
    ]
    assert out["task"]["allowed_decisions"] == ["EXPEDITE", "ACCEPT_DELAY"]
    assert [a.action for a in used["store"].audit_trail("dc-1")] == ["discharge_threatened"]
    ok = r.arranged("transport", "T", p.threat_at, p)
    out, _ = run("evaluate_discharge", {**event, "dependencies": [ok.model_dump(mode="json")]})
    assert out == {"threatened": False, "reasons": [], "task": None}


def test_apply_case_manager_decision_records_it():
    out, used = run(
        "apply_case_manager_decision",
        {
            "instance_id": "dc-1",
            "policy": policy().model_dump(mode="json"),
            "case_manager": {"decision": "EXPEDITE"},
        },
    )
    assert out == {"decision": "EXPEDITE"}
    assert used["store"].milestones("dc-1")[0].detail == "EXPEDITE"


def test_check_departure_reads_the_a03_milestone_and_gives_up_after_the_policy_wait():
    store = InMemoryStateStore()
    p = policy()
    event = {"instance_id": "dc-1", "policy": p.model_dump(mode="json")}
    out, _ = run("check_departure", event, store=store)
    assert out == {"departed": False, "departed_at": None, "gave_up": False}
    out, _ = run("check_departure", event, store=store, now=p.give_up_at)
    assert out["gave_up"] is True
    left = NOW + timedelta(hours=1)
    store.record_milestone(Milestone(instance_id="dc-1", name="discharged", at=left))
    out, _ = run("check_departure", event, store=store)
    assert out["departed"] is True and datetime.fromisoformat(out["departed_at"]) == left


def test_finalize_discharge_records_each_delay_with_cause_owner_and_minutes():
    p = policy()
    departed = p.expected_discharge_at + timedelta(minutes=150)
    deps = [
        r.arranged("transport", "T", p.expected_discharge_at + timedelta(minutes=120), p),
        r.arranged("pharmacy", "R", p.threat_at, p),
    ]
    out, used = run(
        "finalize_discharge",
        {
            "instance_id": "dc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "encounter_id": "V100",
            "ordered_at": NOW.isoformat(),
            "policy": p.model_dump(mode="json"),
            "dependencies": [d.model_dump(mode="json") for d in deps],
            "departure": {"departed": True, "departed_at": departed.isoformat()},
        },
    )
    assert out["outcome"] == "DISCHARGED"
    assert out["delays"] == [
        {
            "dependency": "transport",
            "cause": "awaiting transport",
            "owner": "case_manager",
            "minutes": 120,
        }
    ]
    data = out["detail"]["data"]
    assert data["order_to_departure_seconds"] == int((departed - NOW).total_seconds())
    assert data["before_noon"] is False
    assert data["billing_readiness"] is None  # not checked
    delays = [a for a in used["store"].audit_trail("dc-1") if a.action == "delay_recorded"]
    assert [(a.reason, a.detail["minutes"]) for a in delays] == [("awaiting transport", 120)]


def test_finalize_discharge_reports_billing_not_ready_without_holding_the_outcome():
    p = policy()
    deps = [
        r.arranged("transport", "T", p.threat_at, p),
        r.Dependency(dependency="billing", status=r.PENDING, reason="self-pay: counseling"),
    ]
    out, _ = run(
        "finalize_discharge",
        {
            "instance_id": "dc-1",
            "correlation_id": "c-1",
            "facility_id": "fac-north",
            "encounter_id": "V100",
            "ordered_at": NOW.isoformat(),
            "policy": p.model_dump(mode="json"),
            "dependencies": [d.model_dump(mode="json") for d in deps],
            "departure": {"departed": True, "departed_at": p.expected_discharge_at.isoformat()},
        },
    )
    assert out["outcome"] == "DISCHARGED" and out["delays"] == []
    assert out["reasons"] == ["on time", "billing not ready: self-pay: counseling"]
    assert out["detail"]["data"]["billing_readiness"] == "PENDING"


def test_every_step_of_the_spec_is_tested_here():
    source = Path(__file__).read_text(encoding="utf-8")
    for fn in SPEC.steps:
        assert f'"{fn.step.split(":")[1]}"' in source, fn.name


def test_finalize_discharge_records_the_order_and_departure_times_for_the_kpis():
    p = policy()
    departed = datetime(2026, 11, 29, 10, 30, tzinfo=CHICAGO)
    event = {
        "instance_id": "dc-1",
        "correlation_id": "c-1",
        "facility_id": "fac-north",
        "encounter_id": "V100",
        "ordered_at": NOW.isoformat(),
        "policy": p.model_dump(mode="json"),
        "dependencies": [],
        "departure": {"departed": True, "departed_at": departed.isoformat()},
    }
    _, used = run("finalize_discharge", event)
    (measured,) = [a for a in used["store"].audit_trail("dc-1") if a.action == "discharge_measured"]
    assert measured.detail == {
        "ordered_at": NOW.isoformat(),
        "departed_at": departed.isoformat(),
        "order_to_departure_seconds": int((departed - NOW).total_seconds()),
        "before_noon": True,
        "noon_hour": p.noon_hour,
    }
    gone = {**event, "departure": {"departed": False, "gave_up": True}}
    _, used = run("finalize_discharge", gone)
    assert not [a for a in used["store"].audit_trail("dc-1") if a.action == "discharge_measured"]


# -- the discharge delay model at the A16 (decision 47) ---------------------------------------
REGISTER = {
    "instance_id": "dc-1",
    "correlation_id": "c-1",
    "facility_id": "fac-north",
    "occurred_at": NOW.isoformat(),
    "encounter_id": "V100",
    "disposition": "03",
    "expected_discharge_at": None,
    "patient_id": "MRN123",
    "patient_id_authority": "NVMC",
}


def FakePredictor(label: str, confidence: float) -> fakes.FakePredictor:
    """Answers every input with one label at one confidence; remembers what it saw."""
    from careflow.workflows.discharge_coordination import model

    return fakes.FakePredictor(label, confidence, model.CLASSES, ("weekend",))


def ai_policies(tmp_path, mode: str, threshold: float = 0.6) -> FilePolicyStore:
    """The repository's policies with the discharge_delay row of ai-models set."""
    return fakes.ai_models_policies(tmp_path, "discharge_delay", mode, threshold)


def test_register_discharge_escalates_at_once_on_a_confident_foreseen_delay(tmp_path):
    predictor = FakePredictor("post_acute_authorization", 0.82)
    out, used = run(
        "register_discharge",
        REGISTER,
        predictor=predictor,
        policies=ai_policies(tmp_path, "on"),
    )
    early = out["early"]
    assert early["escalate"] is True and early["cause"] == "post_acute_authorization"
    store = used["store"]
    task = store.get_task(early["task_id"])
    # informational: opened at once, nothing waits on it (the execution goes on)
    assert task.task_token is None and task.informational
    assert task.task_id.startswith("task-") and task.queue == "case_manager"
    assert task.reasons[0].startswith("likely delay: post_acute_authorization")
    assert task.allowed_decisions == ("EXPEDITE", "ACCEPT_DELAY")
    assert task.suggestion["decision"] == "EXPEDITE"
    assert task.suggestion["version"] == "1.test"
    assert "MRN123" not in str(out) and "MRN123" not in task.model_dump_json()
    seen = predictor.seen[0]
    assert seen["disposition"] == "03" and seen["needs_post_acute_authorization"] is True
    assert "MRN123" not in str(seen) and "V100" not in str(seen)
    assert "discharge_at_risk" in [m.name for m in store.milestones("dc-1")]
    ours = [a for a in store.audit_trail("dc-1") if a.detail.get("model_id") == "discharge_delay"]
    assert [a.action for a in ours] == ["model.predicted"]
    assert [e[1] for e in used["publisher"].events] == ["HumanTask.Opened"]


@pytest.mark.parametrize(
    ("mode", "label", "confidence", "audited"),
    [
        ("on", "post_acute_authorization", 0.4, "model.predicted"),  # below the threshold
        ("on", "on_time", 0.9, "model.predicted"),  # confident, but nothing foreseen
        ("shadow", "post_acute_authorization", 0.95, "model.predicted"),  # never acts
        ("off", "post_acute_authorization", 0.95, "model.skipped"),  # the kill switch
    ],
)
def test_register_discharge_leaves_the_threat_line_to_decide_otherwise(
    tmp_path, mode, label, confidence, audited
):
    predictor = FakePredictor(label, confidence)
    out, used = run(
        "register_discharge", REGISTER, predictor=predictor, policies=ai_policies(tmp_path, mode)
    )
    assert out["early"] == {"escalate": False, "cause": None, "task_id": None}
    assert not used["store"].tasks_for_instance("dc-1")
    store = used["store"]
    assert "discharge_at_risk" not in [m.name for m in store.milestones("dc-1")]
    assert [a.action for a in store.audit_trail("dc-1") if a.action.startswith("model.")] == [
        audited
    ]
    assert predictor.seen == ([] if mode == "off" else predictor.seen[:1])


@pytest.mark.parametrize(
    ("decision", "audited"),
    [("EXPEDITE", "model.accepted"), ("ACCEPT_DELAY", "model.overridden")],
)
def test_the_early_task_is_decided_without_a_waiting_execution_and_reviewed(
    tmp_path, decision, audited
):
    """The informational early task takes a decision (no token, nothing to resume): the
    person's answer is recorded and the suggestion's review audited with the version."""
    from careflow.domain.tasks import claim_task, complete_task

    out, used = run(
        "register_discharge",
        REGISTER,
        predictor=FakePredictor("post_acute_authorization", 0.82),
        policies=ai_policies(tmp_path, "on"),
    )
    store, task_id = used["store"], out["early"]["task_id"]

    class NoEngine:
        def send_task_success(self, token, output):
            raise AssertionError("nothing waits on the early task")

    claim_task(store, task_id=task_id, actor="user:casemgr-lrossi", now=NOW, policies=POLICIES)
    done = complete_task(
        store,
        NoEngine(),
        task_id=task_id,
        actor="user:casemgr-lrossi",
        decision=decision,
        reason="checked",
        now=NOW,
        policies=POLICIES,
    )
    assert done.decision == decision and done.completed_by == "user:casemgr-lrossi"
    review = [a for a in store.audit_trail("dc-1") if a.action in (audited, "task_completed")]
    assert [a.action for a in review] == ["task_completed", audited]
    assert review[1].detail["version"] == "1.test" and review[1].detail["decided"] == decision
