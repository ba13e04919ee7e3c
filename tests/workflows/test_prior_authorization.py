"""Prior authorization: the real ASL on the local cloud, started by ``PriorAuth.Requested``.

Branches, waits and timing (the steps' logic is unit-tested with fakes). The last test
checks that, together, the tests entered every state of the machine.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest

from careflow import wiring
from careflow.adapters.sandbox import PayerRule, sandbox
from careflow.canonical.payer import AuthDecision
from careflow.domain.intake import instance_id_for
from careflow.kit.registry import workflow
from tests.workflows.harness import Case, advance_through_timer, ai_models, claim_and_complete

WORKFLOW = "prior-authorization"


@pytest.fixture(autouse=True)
def _no_timer_outlives_its_test(cloud):
    """Stops what a test leaves waiting. The virtual clock's timers are global: a case an
    earlier test left pended holds a 24 h timer, which ``wait_for_timer`` would take for
    the next test's (and advance before that one's timer started)."""
    yield
    sfn = cloud.client("stepfunctions")
    for workflow_id in cloud.state_machine_arns:
        for execution in cloud.executions(workflow_id):
            if execution["status"] == "RUNNING":
                sfn.stop_execution(executionArn=execution["executionArn"])


ENTERED: set[str] = set()
_numbers = itertools.count(8001)


def request(cloud, rule: PayerRule, *, priority: str = "routine", line: str = "imaging") -> Case:
    rid = f"pa-t{next(_numbers)}"
    cloud.set_payer_rule(rid, f"cov-{rid}", rule)
    key = f"prior-auth:{rid}:requested"
    cloud.put_event(
        "careflow.ehr",
        "PriorAuth.Requested",
        facility_id="fac-north",
        idempotency_key=key,
        data={
            "request_id": rid,
            "service_line": line,
            "patient_ref": f"Patient/p-{rid}",
            "coverage_ref": f"Coverage/cov-{rid}",
            "payer_id": "payer-acme",
            "procedure_codes": [{"system": "http://www.ama-assn.org/go/cpt", "code": "70553"}],
            "service_date": (cloud.clock.now() + timedelta(days=10)).isoformat(),
            "priority": priority,
        },
    )
    return Case(cloud, rid, instance_id_for(WORKFLOW, key), WORKFLOW).started()


def advance_once_waiting(cloud, case: Case, timer: timedelta, by: timedelta | None = None) -> None:
    """Advances the clock once the execution waits on a timer of ``timer`` and the inquiries
    so far are recorded (advancing earlier would jump past the next timer's start)."""
    before = case.milestone_names().count("inquired")

    def awaiting() -> bool:  # this execution waits again (once per inquiry so far, plus one)
        entered = [
            e
            for e in case.history()
            if e.get("stateEnteredEventDetails", {}).get("name") == "AwaitDecision"
        ]
        return len(entered) > before

    # another execution of the session's cloud may hold a timer of the same length: gate
    # on this one's own wait first
    cloud.wait_for(awaiting, 30, "the execution's wait for the payer")
    found = cloud.clock.wait_for_timer(timer - timedelta(minutes=1), timer, timeout=20)
    assert found is not None, f"no timer of {timer} started"
    cloud.clock.advance(by or timer)
    cloud.wait_for(
        # a day's jump wakes every waiting execution of the session's cloud: on a busy
        # machine the inquiry can take more than 20 s to show
        lambda: case.milestone_names().count("inquired") > before,
        60,
        "the next inquiry",
    )


def output(case: Case) -> dict:
    out = case.output()  # the execution has ended: its history is whole
    ENTERED.update(case.entered_states())
    return out


def test_approved_on_first_pass(cloud):
    case = request(cloud, PayerRule(AuthDecision.APPROVED))
    out = output(case)
    assert (out["outcome"], out["first_pass"], out["preauth_ref"]) == (
        "APPROVED",
        True,
        f"PA-{case.case_id}",
    )
    assert case.instance().outcome == "APPROVED"
    assert case.instance().service_line == "imaging"  # the request's


def test_documents_asked_for_are_attached_by_the_nurse_and_the_resubmission_approved(cloud):
    case = request(cloud, PayerRule(AuthDecision.APPROVED, documents=("11506-3",)), line="infusion")
    task = case.open_task()
    assert task.queue == "utilization_review_infusion"  # routed by the policy's table
    claim_and_complete(cloud, task, "ATTACHED", actor="user:urn-pkaur", reason="op note attached")
    out = output(case)
    assert (out["outcome"], out["first_pass"]) == ("APPROVED", False)
    assert case.milestone_names()[:4] == [
        "request_received",
        "submitted",
        "documents_requested",
        "task_opened",
    ]
    assert "resubmitted" in case.milestone_names()
    # no document ids (no proposal, none chosen): the requested types travel, as before
    sent = sandbox().submissions[case.case_id][-1]
    assert (sent.attachments, sent.documents) == (("11506-3",), ())


def _chart(*docs) -> str:
    """The next request's patient's documents in the sandbox EHR; returns its request id."""
    from careflow.canonical.payer import ClinicalDocument

    rid = f"pa-t{next(_numbers)}"
    sandbox().set_documents(
        f"Patient/p-{rid}",
        [ClinicalDocument(document_id=f"DocumentReference/{rid}-{n}", text=t) for n, t in docs],
    )
    return rid


def _request_as(cloud, rid: str, rule: PayerRule) -> Case:
    cloud.set_payer_rule(rid, f"cov-{rid}", rule)
    key = f"prior-auth:{rid}:requested"
    cloud.put_event(
        "careflow.ehr",
        "PriorAuth.Requested",
        facility_id="fac-north",
        idempotency_key=key,
        data={
            "request_id": rid,
            "service_line": "surgery",
            "patient_ref": f"Patient/p-{rid}",
            "coverage_ref": f"Coverage/cov-{rid}",
            "payer_id": "payer-acme",
            "procedure_codes": [{"system": "http://www.ama-assn.org/go/cpt", "code": "29881"}],
            "service_date": (cloud.clock.now() + timedelta(days=10)).isoformat(),
            "priority": "routine",
        },
    )
    return Case(cloud, rid, instance_id_for(WORKFLOW, key), WORKFLOW).started()


def test_a_low_confidence_attachment_guess_proposes_nothing_and_the_nurse_decides(cloud):
    """The payer asks for the operative note (LOINC 11504-8); the chart's only document is
    uncoded and vague: the model's guess is below the policy's threshold, so nothing is
    proposed, the nurse attaches what she chose, and the audit keeps the guess (with the
    model's version) and her override."""
    rid = _chart(("summary", "Procedure summary"))
    case = _request_as(cloud, rid, PayerRule(AuthDecision.APPROVED, documents=("11504-8",)))
    task = case.open_task()
    assert task.allowed_decisions == ("ATTACHED",)  # as without the model
    assert task.suggestion is not None and task.suggestion["acts"] is False
    assert task.suggestion["proposed"] == [] and "decision" not in task.suggestion
    assert task.suggestion["label"] == "operative_note"
    assert any("below the policy's threshold" in r for r in task.reasons)
    assert "Procedure summary" not in " ".join([task.title, *task.reasons])  # ids, no text
    claim_and_complete(cloud, task, "ATTACHED", actor="user:urn-pkaur", reason="chose the note")
    assert output(case)["outcome"] == "APPROVED"
    trail = wiring.store().audit_trail(case.instance_id)
    ours = [a for a in trail if a.detail.get("model_id") == "pa_attachments"]
    predicted = [a for a in ours if a.action == "model.predicted"]
    overridden = [a for a in ours if a.action == "model.overridden"]
    assert [a.detail["about"] for a in predicted] == [f"DocumentReference/{rid}-summary"]
    assert predicted[0].detail["confidence"] < predicted[0].detail["threshold"]
    assert len(overridden) == 1 and overridden[0].actor == "user:urn-pkaur"
    assert overridden[0].detail["decided"] == "ATTACHED"
    assert overridden[0].detail["version"] == predicted[0].detail["version"]
    assert predicted[0].detail["version"] == json.loads(_artifact_text())["version"]
    assert not any("Procedure summary" in json.dumps(a.detail) for a in trail)


def _artifact_text() -> str:
    from careflow.ml.registry import ARTIFACTS

    return (ARTIFACTS / "pa_attachments.json").read_text(encoding="utf-8")


def _coded_operative_note(rid: str):
    """The chart's operative note, its type coded in LOINC (11504-8)."""
    from careflow.canonical.datatypes import Coding
    from careflow.canonical.payer import ClinicalDocument

    return ClinicalDocument(
        document_id=f"DocumentReference/{rid}-op",
        type_codings=(Coding(system="http://loinc.org", code="11504-8"),),
        text="Surgical operation note",
    )


def _coded_chart() -> str:
    """A chart with a coded operative note, an uncoded imaging report the model reads
    confidently, and a lab result; returns the next request's id."""
    from careflow.canonical.payer import ClinicalDocument

    rid = f"pa-t{next(_numbers)}"
    sandbox().set_documents(
        f"Patient/p-{rid}",
        [
            _coded_operative_note(rid),
            ClinicalDocument(
                document_id=f"DocumentReference/{rid}-mri",
                text="MRI of right knee: impression meniscal tear",
            ),
            ClinicalDocument(
                document_id=f"DocumentReference/{rid}-lab",
                text="Lab results: complete blood count",
            ),
        ],
    )
    return rid


def _resubmitted(case: Case):
    """What the payer received last for the case (the in-process payer sandbox keeps it)."""
    received = sandbox().submissions[case.case_id]
    assert len(received) == 2  # the first submission, then the one with the documents
    assert received[0].attachments == () and received[0].documents == ()
    return received[-1]


def _review_of(case: Case, action: str):
    trail = wiring.store().audit_trail(case.instance_id)
    ours = [a for a in trail if a.detail.get("model_id") == "pa_attachments"]
    return [a for a in ours if a.action == action], trail


def test_the_nurse_confirms_the_proposal_and_the_payer_gets_those_documents(cloud):
    """ATTACH_PROPOSED: the resubmission references exactly the proposed documents, by
    their EHR ids (no text in the execution's history), and her acceptance is audited with
    the model's version."""
    rid = _coded_chart()
    rule = PayerRule(AuthDecision.APPROVED, documents=("11504-8", "18748-4"))
    case = _request_as(cloud, rid, rule)
    task = case.open_task()
    proposed = task.suggestion["proposed"]
    assert proposed == [f"DocumentReference/{rid}-op", f"DocumentReference/{rid}-mri"]
    claim_and_complete(cloud, task, "ATTACH_PROPOSED", actor="user:urn-pkaur")
    assert output(case)["outcome"] == "APPROVED"
    sent = _resubmitted(case)
    assert list(sent.documents) == proposed
    assert sent.attachments == ("11504-8", "18748-4")  # the types asked for, still
    history = json.dumps(case.history(), default=str)
    assert f"{rid}-op" in history and "meniscal" not in history  # ids, never the text
    accepted, trail = _review_of(case, "model.accepted")
    assert len(accepted) == 1 and accepted[0].actor == "user:urn-pkaur"
    assert accepted[0].detail["decided"] == "ATTACH_PROPOSED"
    # the proposal is as strong as its least sure part: the model's, with its version
    assert accepted[0].detail["version"] == json.loads(_artifact_text())["version"]
    assert not any("meniscal" in json.dumps(a.detail) for a in trail)


def test_the_nurse_attaches_her_own_documents_and_the_payer_gets_hers(cloud):
    """ATTACHED with the documents she chose (checked against the patient's documents:
    another patient's id is refused, the task stays hers): the resubmission references
    exactly those, and her override is audited with the model's version."""
    from careflow.domain.tasks import TaskError, claim_task, complete_task

    rid = _coded_chart()
    rule = PayerRule(AuthDecision.APPROVED, documents=("11504-8", "18748-4"))
    case = _request_as(cloud, rid, rule)
    task = case.open_task()
    assert task.suggestion["proposed"] == [
        f"DocumentReference/{rid}-op",
        f"DocumentReference/{rid}-mri",
    ]
    governed = {"now": cloud.clock.now(), "policies": wiring.policies()}
    actor = "user:urn-pkaur"
    claim_task(wiring.store(), task_id=task.task_id, actor=actor, **governed)
    decide = {"task_id": task.task_id, "actor": actor, "reason": "chosen", **governed}
    with pytest.raises(TaskError) as refused:  # not this patient's document
        complete_task(
            wiring.store(),
            wiring.engine(),
            decision="ATTACHED",
            documents=["DocumentReference/someone-else-op"],
            **decide,
        )
    assert refused.value.kind == "invalid"
    with pytest.raises(TaskError) as refused:  # a confirmation takes what was proposed
        complete_task(
            wiring.store(),
            wiring.engine(),
            decision="ATTACH_PROPOSED",
            documents=[f"DocumentReference/{rid}-lab"],
            **decide,
        )
    assert refused.value.kind == "invalid"
    mine = [f"DocumentReference/{rid}-op", f"{rid}-lab"]  # a bare id is a DocumentReference
    complete_task(wiring.store(), wiring.engine(), decision="ATTACHED", documents=mine, **decide)
    assert output(case)["outcome"] == "APPROVED"
    sent = _resubmitted(case)
    assert sent.documents == (f"DocumentReference/{rid}-op", f"DocumentReference/{rid}-lab")
    overridden, trail = _review_of(case, "model.overridden")
    assert len(overridden) == 1 and overridden[0].actor == actor
    assert overridden[0].detail["decided"] == "ATTACHED"
    assert overridden[0].detail["version"] == json.loads(_artifact_text())["version"]
    [completed] = [a for a in trail if a.action == "task_completed"]
    assert completed.detail["documents"] == list(sent.documents)


def test_the_attachments_model_switched_off_returns_the_task_to_the_rules(cloud):
    """The ai-models policy's pa_attachments row off (a published version): no proposal,
    not even for a coded document, and ``model.skipped`` audited for the uncoded one."""
    from careflow.canonical.payer import ClinicalDocument

    rid = f"pa-t{next(_numbers)}"
    sandbox().set_documents(
        f"Patient/p-{rid}",
        [
            _coded_operative_note(rid),
            ClinicalDocument(
                document_id=f"DocumentReference/{rid}-scan",
                text="Operative note: arthroscopic meniscectomy of right knee",
            ),
        ],
    )
    with ai_models(cloud, "pa_attachments", mode="off") as version:
        case = _request_as(cloud, rid, PayerRule(AuthDecision.APPROVED, documents=("11504-8",)))
        task = case.open_task()
        assert task.suggestion is None
        assert task.allowed_decisions == ("ATTACHED",)
        assert task.reasons == ("requested: 11504-8",)
        claim_and_complete(cloud, task, "ATTACHED", actor="user:urn-pkaur")
        assert output(case)["outcome"] == "APPROVED"
        trail = wiring.store().audit_trail(case.instance_id)
        ours = [a for a in trail if a.detail.get("model_id") == "pa_attachments"]
        skipped = [a for a in ours if a.action == "model.skipped"]
        assert [a.detail["model_id"] for a in skipped] == ["pa_attachments"]
        assert skipped[0].policy_version == version
        assert ours == skipped  # nothing predicted, proposed or reviewed


def test_documents_never_provided_exhaust_the_chain(cloud):
    case = request(cloud, PayerRule(AuthDecision.APPROVED, documents=("34117-2",)))
    task = case.open_task()
    chain = task.escalation_chain  # from the policy: the routed queue, the nurse, the director
    for level in range(1, len(chain) + 1):
        advance_through_timer(cloud, timedelta(hours=24), case=case)
        if level < len(chain):
            assert case.open_task(level=level).queue == chain[level]
    out = output(case)
    assert out["outcome"] == "NO_DOCUMENTS"


def test_a_pend_resumes_on_the_payers_notification_and_the_decision_is_reread(cloud):
    case = request(cloud, PayerRule(AuthDecision.PENDED, timedelta(days=2), AuthDecision.APPROVED))
    case.wait_milestone("pended")
    # waits up to 3 days (the standard notification-overdue point); the payer decides at 2
    advance_once_waiting_for(cloud, case, timedelta(days=3), by=timedelta(days=2))
    out = output(case)
    assert out["outcome"] == "APPROVED"
    names = case.milestone_names()
    # PayerDecision re-read it with $inquire (once, for the notification); the workflow
    # acts on that answer without asking again: no polling
    assert "payer_decided" in names and "inquired" not in names
    reread = [
        a for a in wiring.store().audit_trail(case.instance_id) if a.action == "payer_decided"
    ]
    assert reread[0].detail["verified_with"] == "$inquire"
    assert out["turnaround_seconds"] == 2 * 86400


def test_an_expedited_pend_the_payer_never_answers_expires_at_72_hours(cloud):
    case = request(cloud, PayerRule(AuthDecision.PENDED), priority="expedited", line="surgery")
    case.wait_milestone("pended")
    for _ in range(3):
        advance_once_waiting(cloud, case, timedelta(hours=24))
    out = output(case)
    assert out["outcome"] == "EXPIRED"
    names = case.milestone_names()
    assert names.count("inquired") == 3  # at 24 h, 48 h and 72 h, never more
    assert "pend_escalated" in names
    escalated = next(m for m in case.milestones() if m.name == "pend_escalated")
    after = escalated.at - case.milestones()[0].at
    assert timedelta(hours=48) <= after < timedelta(hours=48, minutes=1)


def test_a_forged_approval_does_not_approve_a_pend_the_payer_still_holds(cloud):
    case = request(cloud, PayerRule(AuthDecision.PENDED, timedelta(days=2), AuthDecision.DENIED))
    case.wait_milestone("pended")
    ref = f"PA-{case.case_id}"
    cloud.wait_for(lambda: wiring.store().peek_wait(ref), 20, "the parked token")
    cloud.put_event(
        "careflow.payer",
        "PriorAuth.Decided",
        facility_id="fac-north",
        idempotency_key=f"{ref}:forged",
        data={
            "preauth_ref": ref,
            "decision": "APPROVED",
            "decided_at": cloud.clock.now().isoformat(),
        },
    )
    # PayerDecision asks the payer, which still pends: the claim is audited, nothing resumes
    mismatch = cloud.wait_for(
        lambda: [
            a
            for a in wiring.store().audit_trail(case.instance_id)
            if a.action == "payer_decision_mismatch"
        ],
        20,
        "the mismatch audit",
    )
    assert mismatch[0].detail == {
        "preauth_ref": ref,
        "event_id": mismatch[0].detail["event_id"],
        "claimed": "APPROVED",
        "payer": "PENDED",
    }
    assert wiring.store().peek_wait(ref) is not None  # still waiting on the payer
    assert "payer_decided" not in case.milestone_names()
    assert case.instance().outcome is None
    # the payer decides at 2 days (inside the 3-day wait): its real decision resumes it
    advance_once_waiting_for(cloud, case, timedelta(days=3), by=timedelta(days=2))
    out = output(case)
    assert out["outcome"] == "DENIED"  # what the payer decided, not what the event said
    names = case.milestone_names()
    assert "payer_decided" in names and "inquired" not in names  # one $inquire, the signal's


def advance_once_waiting_for(cloud, case: Case, timer: timedelta, by: timedelta) -> None:
    """Advances the clock once the execution waits on a timer of ``timer``, until the
    payer's decision has resumed it."""
    found = cloud.clock.wait_for_timer(timer - timedelta(minutes=5), timer, timeout=20)
    assert found is not None, f"no timer of {timer} started"
    cloud.clock.advance(by)
    case.wait_milestone("payer_decided", timeout=60)


def test_a_decision_on_an_authorization_the_payer_does_not_know_is_parked(cloud):
    ref = f"PA-unknown-{next(_numbers)}"
    cloud.put_event(
        "careflow.payer",
        "PriorAuth.Decided",
        facility_id="fac-north",
        idempotency_key=f"{ref}:decided",
        data={"preauth_ref": ref, "decision": "APPROVED", "decided_at": "2026-11-30T09:00:00Z"},
    )
    parked = cloud.wait_for(
        lambda: [
            p
            for p in wiring.store().parked_events()
            if p.detail_type == "PriorAuth.Decided" and "resolves no authorization" in p.reason
        ],
        20,
        "the parked decision",
    )
    assert ref not in parked[0].reason  # the reason names the field, not the value


def review_task(case: Case, cloud, decision: str) -> None:
    task = case.open_task()
    assert task.allowed_decisions == ("APPROVED", "DENIED", "REQUEST_AGAIN")
    claim_and_complete(
        cloud,
        task,
        decision,
        actor="user:urn-sbrown",
        reason="read the payer's response on the portal",
    )


def test_an_unknown_review_action_goes_to_a_person_who_asks_again(cloud):
    case = request(cloud, PayerRule(AuthDecision.UNKNOWN))
    case.wait_milestone("payer_answer_review")
    assert case.instance().outcome is None  # not read as a pend, not acted on
    sandbox().payer_rules[case.case_id] = PayerRule(AuthDecision.APPROVED)
    review_task(case, cloud, "REQUEST_AGAIN")
    out = output(case)
    assert (out["outcome"], out["first_pass"]) == ("APPROVED", False)
    assert case.milestone_names().count("submitted") == 2


def test_a_non_conformant_approval_is_not_acted_on_a_person_decides(cloud):
    problem = "Bundle.entry[0].resource.patient references a Patient that is not in the Bundle"
    case = request(cloud, PayerRule(AuthDecision.APPROVED, conformance=(problem,)))
    case.wait_milestone("payer_answer_review")
    task = case.open_task()
    assert problem in task.reasons
    review_task(case, cloud, "DENIED")
    out = output(case)
    assert out["outcome"] == "DENIED"  # the person's decision, not the unconformant approval
    (appeal,) = [t for t in case.tasks() if "appeal" in t.title]
    assert appeal.queue == "utilization_review_imaging"


def test_a_non_conformant_answer_nobody_reviews_ends_in_error(cloud):
    case = request(cloud, PayerRule(AuthDecision.APPROVED, conformance=("x is missing",)))
    task = case.open_task()
    chain = task.escalation_chain
    for level in range(1, len(chain) + 1):
        advance_through_timer(cloud, timedelta(hours=24), case=case)
        if level < len(chain):
            assert case.open_task(level=level).queue == chain[level]
    out = output(case)
    assert out["outcome"] == "ERROR"


def test_a_denial_opens_an_appeal_task(cloud):
    case = request(cloud, PayerRule(AuthDecision.DENIED))
    out = output(case)
    assert out["outcome"] == "DENIED"
    (task,) = case.tasks()
    assert task.queue == "utilization_review_imaging" and "appeal" in task.title


def test_a_payer_that_stays_down_ends_in_error_not_a_stuck_execution(cloud):
    case_rule = PayerRule(AuthDecision.APPROVED)
    switch = sandbox().fault("payer.submit_prior_auth")
    switch.fail_always = True
    try:
        case = request(cloud, case_rule)
        out = case.drive(step=timedelta(minutes=2), timeout=60)
    finally:
        switch.fail_always = False
    assert out["status"] == "SUCCEEDED"
    ENTERED.update(case.entered_states())
    assert json.loads(out["output"])["outcome"] == "ERROR"


def test_zz_every_state_of_the_machine_was_entered():
    definition = workflow(WORKFLOW).expanded()
    missing = set(definition["States"]) - ENTERED
    # Registering writes one item: only a failed table (nothing a test can cause here
    # without breaking the cloud for the others) reaches the Fail state.
    assert missing == {"RequestNotRegistered"}


def test_a_new_policy_version_does_not_change_a_running_instance(cloud):
    """The instance pins the version it started with: publishing a shorter decision clock
    mid-pend changes the next request, not this one."""
    from careflow.policies import FilePolicyStore, parse_document, publish, resolve
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    table = DynamoPolicyStore(cloud.client("dynamodb"), wiring.settings().table_name)
    before = resolve("prior-authorization", "fac-north", store=wiring.policies())
    running = request(cloud, PayerRule(AuthDecision.PENDED), priority="expedited")
    running.wait_milestone("pended")

    current = FilePolicyStore().current("prior-authorization", None)
    document = json.loads(current.model_dump_json(by_alias=True, exclude_none=True))
    base, bump = document["version"], next(_numbers)
    version = f"{base}.{bump}"
    document["version"] = version
    for row in document["tables"]["pend_clock"]["rows"]:
        if row["id"] == "expedited":
            row["then"]["decision_clock_seconds"] = 36 * 3600  # a shorter clock
            row["then"]["escalate_after_seconds"] = 30 * 3600
            row["then"]["inquire_after_seconds"] = 12 * 3600
    assert publish(table, parse_document(document, "test")) == "published"
    after = resolve("prior-authorization", "fac-north", store=wiring.policies())
    assert after.version != before.version
    try:
        _run_pinned(cloud, running, before, after)
    finally:  # the cloud is shared: put the usual clocks back as a newer version
        restored = json.loads(current.model_dump_json(by_alias=True, exclude_none=True))
        restored["version"] = f"{base}.{bump + 1}"
        publish(table, parse_document(restored, "test"))


def _run_pinned(cloud, running: Case, before, after) -> None:
    later = request(cloud, PayerRule(AuthDecision.PENDED), priority="expedited")
    later.wait_milestone("pended")
    for _ in range(3):
        advance_once_waiting(cloud, running, timedelta(hours=24))
    out = output(running)
    assert out["outcome"] == "EXPIRED"
    assert out["policy_version"] == before.version  # its own version, to the end
    expired = next(m for m in running.milestones() if m.name == "concluded_expired")
    assert expired.at - running.milestones()[0].at >= timedelta(hours=72)
    audited = {a.policy_version for a in wiring.store().audit_trail(running.instance_id)}
    assert audited == {before.version}
    assert later.output()["policy_version"] == after.version  # the next request: the new one
