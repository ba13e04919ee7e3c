"""The in-process sandbox EHR's encounters: covered by default, self-pay or unknown when a
demo or test says so, faults like every other EHR call; and the fake the logic tests use."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from careflow.adapters.sandbox import Sandbox, default_encounter_coverage
from careflow.canonical.payer import EncounterCoverage
from careflow.ports import ConnectorError, ConnectorUnavailable
from tests.fakes import FakeEhr

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox.seeded(NOW)


def test_every_encounter_has_a_coverage_by_default(sandbox):
    assert sandbox.encounter_coverage("2001") == EncounterCoverage(
        encounter_id="2001",
        patient_ref="Patient/pat-enc-2001",
        coverage_ref="Coverage/cov-enc-2001",
        payer_id="payer-lakeshore",
    )
    assert sandbox.encounter_coverage("2002").payer_id == "payer-summit"


def test_the_payer_is_one_the_sandbox_uses_for_cases_and_stable_for_any_visit_number(sandbox):
    case_payers = {c.payer_id for c in sandbox.cases.values()}
    for visit in ("V123", "ENC-77", "abc", "x/y z"):
        first = sandbox.encounter_coverage(visit)
        assert first is not None and first.payer_id in case_payers
        assert sandbox.encounter_coverage(visit) == first


def test_odd_characters_in_a_visit_number_give_valid_fhir_ids(sandbox):
    found = sandbox.encounter_coverage("V 12/3|4")
    assert found is not None
    assert found.encounter_id == "V 12/3|4"
    assert found.patient_ref == "Patient/pat-enc-V-12-3-4"
    assert found.coverage_ref == "Coverage/cov-enc-V-12-3-4"


def test_a_self_pay_encounter_has_its_patient_and_no_coverage(sandbox):
    marked = sandbox.set_self_pay("3001")
    assert (
        sandbox.encounter_coverage("3001")
        == marked
        == EncounterCoverage(encounter_id="3001", patient_ref="Patient/pat-enc-3001")
    )
    assert sandbox.encounter_coverage("3002") == default_encounter_coverage("3002")


def test_an_unknown_encounter_is_none_until_reset(sandbox):
    sandbox.set_unknown_encounter("3003")
    assert sandbox.encounter_coverage("3003") is None
    sandbox.reset_encounter("3003")
    assert sandbox.encounter_coverage("3003") == default_encounter_coverage("3003")


def test_an_encounter_can_be_set_to_any_coverage(sandbox):
    given = EncounterCoverage(
        encounter_id="3004",
        patient_ref="Patient/pat-1001",
        coverage_ref="Coverage/cov-1001",
        payer_id="payer-lakeshore",
    )
    sandbox.set_encounter(given)
    assert sandbox.encounter_coverage("3004") == given


def test_a_new_sandbox_starts_with_every_encounter_covered(sandbox):
    sandbox.set_self_pay("3005")
    sandbox.set_unknown_encounter("3006")
    fresh = Sandbox.seeded(NOW)
    assert fresh.encounter_coverage("3005") == default_encounter_coverage("3005")
    assert fresh.encounter_coverage("3006") == default_encounter_coverage("3006")


def test_no_visit_number_is_an_error(sandbox):
    with pytest.raises(ConnectorError, match="visit number"):
        sandbox.encounter_coverage("")


def test_faults_on_the_ehr_or_on_the_call_make_it_unavailable(sandbox):
    sandbox.fault("ehr.encounter_coverage").fail_next = 1
    with pytest.raises(ConnectorUnavailable, match=r"ehr\.encounter_coverage"):
        sandbox.encounter_coverage("2001")
    assert sandbox.encounter_coverage("2001") is not None
    sandbox.fault("ehr").fail_always = True
    with pytest.raises(ConnectorUnavailable):
        sandbox.encounter_coverage("2001")
    # the record the FHIR sandbox server serves has no faults of its own
    assert sandbox.encounter_record("2001") == default_encounter_coverage("2001")
    sandbox.clear_faults()
    assert sandbox.encounter_coverage("2001") is not None


def test_marking_from_many_threads_is_safe(sandbox):
    def mark(start: int) -> None:
        for i in range(start, start + 200):
            if i % 2:
                sandbox.set_self_pay(str(i))
            else:
                sandbox.set_unknown_encounter(str(i))
            sandbox.encounter_coverage(str(i))

    threads = [threading.Thread(target=mark, args=(n * 200,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sandbox.encounters) == 800
    assert sandbox.encounter_coverage("1") == EncounterCoverage(
        encounter_id="1", patient_ref="Patient/pat-enc-1"
    )
    assert sandbox.encounter_coverage("2") is None


def test_the_fake_ehr_answers_what_it_is_given_and_none_otherwise():
    held = EncounterCoverage(encounter_id="V1", patient_ref="Patient/1")
    ehr = FakeEhr(encounters={"V1": held})
    assert ehr.encounter_coverage("V1") is held
    assert ehr.encounter_coverage("V2") is None
    assert ehr.encounters_asked == ["V1", "V2"]
