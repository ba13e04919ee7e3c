"""Da Vinci PAS documents written by others, read as their authors meant them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from careflow.adapters import pas
from careflow.canonical.payer import AuthDecision
from tests import fixtures

FIXTURES = fixtures.DAVINCI_PAS
CAREFLOW = str(Path(sys.executable).parent / "careflow")


def load(name: str) -> dict:
    assert FIXTURES.is_dir(), f"{FIXTURES} is missing: copied into tests/fixtures"
    return json.loads((FIXTURES / name).read_text())


def with_review_action(code: str, *, outcome: str = "complete") -> dict:
    """The approved response with another X12 306 code (the rest as the authors wrote it)."""
    bundle = copy.deepcopy(load("valid_pa_response_bundle.json"))
    response = bundle["entry"][0]["resource"]
    response["outcome"] = outcome
    for item in response["item"]:
        for adjudication in item["adjudication"]:
            for ext in adjudication["extension"]:
                for sub in ext.get("extension", []):
                    if sub["url"].endswith("extension-reviewActionCode"):
                        sub["valueCodeableConcept"]["coding"][0]["code"] = code
    return bundle


def test_the_approved_response_is_approved_with_its_authorization_number():
    decision = pas.read_response_bundle(load("valid_pa_response_bundle.json"))
    assert decision.decision is AuthDecision.APPROVED
    assert decision.preauth_ref == "AUTH0001"
    assert [(i.sequence, i.review_action, i.code) for i in decision.items] == [(1, "A1", "3")]
    assert decision.conformance == ()
    assert not decision.needs_review


def test_the_inquiry_response_is_read_the_same_way():
    decision = pas.read_response_bundle(load("valid_pa_inquire_response_bundle.json"))
    assert decision.decision is AuthDecision.APPROVED
    assert decision.conformance == ()


def test_an_item_without_a_review_action_is_unknown_and_named():
    bundle = with_review_action("A1")
    del bundle["entry"][0]["resource"]["item"][0]["adjudication"][0]["extension"]
    decision = pas.read_response_bundle(bundle)
    assert decision.decision is AuthDecision.UNKNOWN  # never read as approved or pended
    assert decision.conformance == (
        "Bundle.entry[0].resource.item[0].adjudication.extension(reviewAction) is missing",
    )


def test_a_review_action_without_an_x12_coding_is_unknown_and_named():
    bundle = with_review_action("A1")
    ext = bundle["entry"][0]["resource"]["item"][0]["adjudication"][0]["extension"][0]
    ext["extension"][1]["valueCodeableConcept"]["coding"][0]["system"] = "urn:other"
    decision = pas.read_response_bundle(bundle)
    assert decision.decision is AuthDecision.UNKNOWN
    assert "reviewActionCode has no X12 306 coding" in decision.conformance[0]


def test_a_response_that_references_what_the_bundle_does_not_hold_is_not_conformant():
    bundle = with_review_action("A1")
    bundle["entry"][0]["resource"]["request"] = {"reference": "Claim/xyz"}
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    decision = pas.read_response_bundle(bundle)
    assert decision.decision is AuthDecision.APPROVED  # what the items say...
    assert decision.needs_review  # ...but careflow does not act on it
    assert decision.conformance == (
        "Bundle.entry[0].resource.patient references a Patient that is not in the Bundle",
        "Bundle.entry[0].resource.request references a Claim that is not in the Bundle",
    )
    assert not any("xyz" in p or "SubscriberExample" in p for p in decision.conformance)


def test_a_response_bundle_missing_required_elements_is_not_conformant():
    bundle = with_review_action("A1")
    del bundle["timestamp"]
    del bundle["entry"][1]["fullUrl"]
    bundle["type"] = "searchset"
    bundle["entry"][0]["resource"]["status"] = "draft"
    problems = pas.read_response_bundle(bundle).conformance
    assert problems == (
        "Bundle.type is not 'collection' (PAS Response Bundle: fixed value)",
        "Bundle.timestamp is missing (PAS Response Bundle: 1..1)",
        "Bundle.entry[1].fullUrl is missing (PAS Response Bundle: 1..1)",
        "Bundle.entry[0].resource.status is not 'active' (PAS ClaimResponse pattern)",
    )


def test_a_claim_response_that_decides_no_item_is_unknown():
    bundle = with_review_action("A1")
    del bundle["entry"][0]["resource"]["item"]
    decision = pas.read_response_bundle(bundle)
    assert decision.decision is AuthDecision.UNKNOWN
    assert decision.conformance[-1].startswith("Bundle.entry[0].resource.item is missing")


@pytest.mark.parametrize(
    ("code", "decision"),
    [
        ("A3", AuthDecision.DENIED),
        ("A4", AuthDecision.PENDED),
        ("A2", AuthDecision.PARTIAL),
        ("A6", AuthDecision.MODIFIED),
        ("CT", AuthDecision.UNKNOWN),  # "contact payer": a person, not a silent pend
        ("ZZ", AuthDecision.UNKNOWN),  # not a code careflow knows: never a pend
    ],
)
def test_the_decision_comes_from_the_review_action(code, decision):
    assert pas.read_response_bundle(with_review_action(code)).decision is decision


def test_an_unknown_item_makes_the_response_unknown_even_beside_a_pend():
    items = [
        pas.PriorAuthItem(sequence=1, code="", decision=AuthDecision.PENDED),
        pas.PriorAuthItem(sequence=2, code="", decision=AuthDecision.UNKNOWN),
    ]
    assert pas.overall(items) is AuthDecision.UNKNOWN


def test_a_pend_is_a_pend_even_when_the_outcome_says_complete():
    bundle = with_review_action("A4", outcome="complete")
    assert bundle["entry"][0]["resource"]["outcome"] == "complete"
    assert pas.read_response_bundle(bundle).decision is AuthDecision.PENDED


def test_a_certified_item_with_an_authorized_add_item_is_modified():
    bundle = with_review_action("A1")
    bundle["entry"][0]["resource"]["addItem"] = [
        {
            "itemSequence": [1],
            "productOrService": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1365", "code": "3"}]
            },
            "quantity": {"value": 1},
            # R4 requires 1..* adjudication on an addItem (read with R4B since the decision
            # is taken from the canonical record)
            "adjudication": copy.deepcopy(
                bundle["entry"][0]["resource"]["item"][0]["adjudication"]
            ),
        }
    ]
    assert pas.read_response_bundle(bundle).decision is AuthDecision.MODIFIED


def test_a_claim_response_that_is_not_r4_is_refused_with_its_path_only():
    bundle = with_review_action("A1")
    bundle["entry"][0]["resource"]["item"][0]["itemSequence"] = "Jane Doe"
    with pytest.raises(pas.PasError) as err:
        pas.read_response_bundle(bundle)
    assert "item[0].itemSequence" in err.value.reason
    assert "Jane Doe" not in err.value.reason


def test_mixed_item_decisions_are_partial():
    bundle = with_review_action("A1")
    response = bundle["entry"][0]["resource"]
    denied = copy.deepcopy(response["item"][0])
    denied["itemSequence"] = 2
    code = denied["adjudication"][0]["extension"][0]["extension"][1]
    code["valueCodeableConcept"]["coding"][0]["code"] = "A3"
    response["item"].append(denied)
    result = pas.read_response_bundle(bundle)
    assert result.decision is AuthDecision.PARTIAL
    assert [i.decision for i in result.items] == [AuthDecision.APPROVED, AuthDecision.DENIED]


def test_the_id_only_notification_names_its_focus_and_no_decision():
    note = pas.read_notification(load("PAS_notification_example_id_only.json"))
    assert note.id_only
    assert note.topic == pas.PAS_TOPIC
    assert note.focus == ("urn:uuid:482fd012-7825-423d-83de-69d09920198b",)


def notification_with_focus(*refs: str) -> dict:
    bundle = copy.deepcopy(load("PAS_notification_example_id_only.json"))
    event = bundle["entry"][0]["resource"]["parameter"][-1]
    event["part"] = [p for p in event["part"] if p["name"] != "focus"] + [
        {"name": "focus", "valueReference": {"reference": r}} for r in refs
    ]
    return bundle


@pytest.mark.parametrize(
    ("refs", "reason"),
    [
        ((), "part(focus) is missing: the notification names no ClaimResponse"),
        (("Patient/123",), "names no ClaimResponse the payer connector can fetch"),
    ],
)
def test_a_notification_without_a_resolvable_focus_is_an_error(refs, reason):
    with pytest.raises(pas.PasError) as err:
        pas.read_notification(notification_with_focus(*refs))
    assert err.value.reason.endswith(reason)
    assert "123" not in err.value.reason


def test_a_full_resource_notification_whose_focus_is_not_a_claim_response_is_an_error():
    bundle = notification_with_focus("urn:uuid:482fd012-7825-423d-83de-69d09920198b")
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:482fd012-7825-423d-83de-69d09920198b",
            "resource": {"resourceType": "Patient", "id": "p"},
        }
    )
    with pytest.raises(pas.PasError, match="a Patient, not a ClaimResponse"):
        pas.read_notification(bundle)


def test_an_id_only_focus_may_be_a_claim_response_url():
    note = pas.read_notification(
        notification_with_focus("https://payer.example/fhir/ClaimResponse/abc")
    )
    assert note.id_only and note.focus == ("https://payer.example/fhir/ClaimResponse/abc",)


def test_a_full_resource_notification_carries_the_decision():
    bundle = copy.deepcopy(load("PAS_notification_example_id_only.json"))
    response = with_review_action("A3")["entry"][0]["resource"]
    bundle["entry"].append(
        {"fullUrl": "urn:uuid:482fd012-7825-423d-83de-69d09920198b", "resource": response}
    )
    note = pas.read_notification(bundle)
    assert not note.id_only
    assert note.decisions[0].decision is AuthDecision.DENIED


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("nonconformant_pas_bundle_v110.json", "Bundle.entry: the Bundle has no entries"),
        (
            "invalid_first_entry_response_bundle.json",
            "Bundle.entry[0]: a PAS response starts with a ClaimResponse, found Organization",
        ),
    ],
)
def test_malformed_response_bundles_are_rejected_with_a_clear_reason(name, reason):
    with pytest.raises(pas.PasError) as err:
        pas.read_response_bundle(load(name))
    assert err.value.reason == reason


def test_the_conformant_request_bundles_are_accepted():
    for name in ("conformant_pas_bundle_v110.json", "conformant_pas_inquire_bundle_v110.json"):
        claim = pas.validate_request_bundle(load(name))
        assert claim["use"] == "preauthorization"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "missing_referenced_resource_request_bundle.json",
            "Claim.careTeam[0].provider: references Practitioner not in the Bundle",
        ),
        ("nonconformant_pas_bundle_v110.json", "Bundle.entry: the Bundle has no entries"),
        (
            "valid_pa_response_bundle.json",
            "Bundle.entry[0]: a PAS request starts with a Claim, found ClaimResponse",
        ),
    ],
)
def test_bad_request_bundles_are_rejected_with_a_clear_reason(name, reason):
    with pytest.raises(pas.PasError) as err:
        pas.validate_request_bundle(load(name))
    assert err.value.reason == reason


def run(*args):
    return subprocess.run(
        [CAREFLOW, "pas", "decision", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_the_decision_as_json():
    proc = run(str(FIXTURES / "valid_pa_response_bundle.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "decision": "APPROVED",
        "items": [{"sequence": 1, "code": "3", "decision": "APPROVED", "review_action": "A1"}],
        "preauth_ref": "AUTH0001",
        "conformance": [],
    }


def test_cli_prints_an_id_only_notification_with_its_focus():
    proc = run(str(FIXTURES / "PAS_notification_example_id_only.json"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "decision": None,
        "items": [],
        "preauth_ref": None,
        "notification": "id-only",
        "focus": ["urn:uuid:482fd012-7825-423d-83de-69d09920198b"],
        "conformance": [],
    }


def test_cli_exits_1_with_the_json_when_a_person_must_look(tmp_path):
    bundle = with_review_action("ZZ")
    bundle["entry"][0]["resource"]["request"] = {"reference": "Claim/xyz"}
    path = tmp_path / "response.json"
    path.write_text(json.dumps(bundle))
    proc = run(str(path))
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["decision"] == "UNKNOWN"
    assert out["items"][0]["review_action"] == "ZZ"
    assert out["conformance"] == [
        "Bundle.entry[0].resource.request references a Claim that is not in the Bundle"
    ]


def test_cli_refuses_a_notification_without_a_focus_with_one_line(tmp_path):
    path = tmp_path / "note.json"
    path.write_text(json.dumps(notification_with_focus()))
    proc = run(str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "part(focus) is missing" in proc.stderr


@pytest.mark.parametrize(
    "name",
    [
        "invalid_first_entry_response_bundle.json",
        "nonconformant_pas_bundle_v110.json",
        "pas_claim.json",
    ],
)
def test_cli_rejects_bad_input_with_one_line(name):
    proc = run(str(FIXTURES / name))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


def test_cli_rejects_a_file_that_is_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = run(str(bad))
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and "not JSON" in proc.stderr


# What each fixture means, as its authors wrote it: a decision with no conformance problem,
# or a document that is not a PAS response or notification (a request, a Subscription,
# malformed) and is refused with a reason.
MEANING = {
    "valid_pa_response_bundle.json": ("APPROVED", []),
    "valid_pa_inquire_response_bundle.json": ("APPROVED", []),
    "PAS_notification_example_id_only.json": (None, []),  # id-only: fetched by the connector
    "invalid_first_entry_response_bundle.json": "starts with a ClaimResponse, found",
    "nonconformant_pas_bundle_v110.json": "the Bundle has no entries",
    "conformant_pas_bundle_v110.json": "starts with a ClaimResponse, found Claim",
    "conformant_pas_inquire_bundle_v110.json": "starts with a ClaimResponse, found Claim",
    "missing_referenced_resource_request_bundle.json": "starts with a ClaimResponse, found",
    "pas_claim.json": "a Claim is a PAS request",
    "PAS_Subscription_example_full_resource.json": "not a FHIR Bundle",
    "PAS_Subscription_example_v221_good.json": "not a FHIR Bundle",
}


def test_every_fixture_is_given_a_meaning_here():
    assert {p.name for p in FIXTURES.glob("*.json")} == set(MEANING)


@pytest.mark.parametrize("name", sorted(MEANING))
def test_every_fixture_reads_as_its_authors_meant(name):
    meant = MEANING[name]
    if isinstance(meant, str):
        with pytest.raises(pas.PasError) as err:
            pas.decision_summary(load(name))
        assert meant in err.value.reason
        return
    summary = pas.decision_summary(load(name))
    assert (summary["decision"], summary["conformance"]) == meant
