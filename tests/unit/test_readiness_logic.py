"""The readiness rules: each dependency's result and the case's outcome."""

from datetime import UTC, datetime, timedelta

import pytest

from careflow.adapters.sandbox import HIP, KNEE, SPINE
from careflow.canonical.cases import Participant, ParticipantStatus, SurgicalCase
from careflow.canonical.datatypes import Coding
from careflow.canonical.dependencies import DependencyResult, DependencyStatus, Outcome
from careflow.canonical.payer import EligibilityResponse
from careflow.canonical.supply import Requisition, StockPosition, TrayStatus
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.surgical_case_readiness import rules as r

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def case(**kw):
    base = dict(
        case_id="appt-1",
        appointment_id="appt-1",
        facility_id="fac-north",
        patient_ref="Patient/p1",
        scheduled_start=NOW + timedelta(days=5),
        procedure_codes=(Coding(system="cpt", code="27130"),),
        service_line="orthopedics",
        supplies=HIP,
        tray_ids=("TRAY-1",),
    )
    base.update(kw)
    return SurgicalCase(**base)


POLICIES = FilePolicyStore()  # the packaged policy files


def policy(c=None, facility="fac-north"):
    snapshot = resolve("surgical-readiness", facility, at=NOW, store=POLICIES)
    return r.case_policy(c or case(), snapshot)


def position(item, on_hand, reserved=0, lead=5.0, consignment=False):
    return StockPosition(
        facility_id="fac-north",
        item_id=item,
        on_hand=on_hand,
        reserved=reserved,
        par_level=2,
        supplier_id="sup-x",
        lead_time_days=lead,
        consignment=consignment,
    )


def ok(dep):
    return DependencyResult(dependency=dep, status=DependencyStatus.OK)


class TestPolicy:
    def test_the_case_pins_the_policy_version_in_force_for_its_facility(self):
        north, south = policy(), policy(facility="fac-south")
        assert north.policy_version.startswith("surgical-readiness@")
        assert "fac-south" in south.policy_version and "fac-south" not in north.policy_version

    def test_a_facility_overlay_changes_only_what_it_names(self):
        north, south = policy(), policy(facility="fac-south")
        assert north.coordinator_task_s == 4 * 3600
        assert south.coordinator_task_s < north.coordinator_task_s  # fac-south's own SLA
        assert south.escalation_chains == north.escalation_chains

    def test_hard_stop_is_72_hours_before_the_case(self):
        c = case()
        assert policy(c).hard_stop_at == c.scheduled_start - timedelta(hours=72)

    def test_escalation_chains_come_from_the_policys_table(self):
        chains = policy().escalation_chains
        assert chains[r.SUPPLIES] == ("supply_chain_buyer", "department_director")
        assert set(chains) == set(r.DEPENDENCIES)


class TestAuthorization:
    @pytest.mark.parametrize(
        ("outcome", "status"),
        [
            ("APPROVED", DependencyStatus.OK),
            ("NOT_REQUIRED", DependencyStatus.OK),
            ("DENIED", DependencyStatus.BLOCKED),
            ("MODIFIED", DependencyStatus.THREATENED),
            ("PARTIAL", DependencyStatus.THREATENED),
            ("EXPIRED", DependencyStatus.THREATENED),
            ("NO_DOCUMENTS", DependencyStatus.THREATENED),
            ("ERROR", DependencyStatus.ERROR),
            ("SOMETHING_NEW", DependencyStatus.ERROR),  # never read as approved
        ],
    )
    def test_each_prior_authorization_outcome_maps_to_a_dependency_status(self, outcome, status):
        result = r.authorization_result(outcome, "PA-1")
        assert result.status is status
        assert result.details["preauth_ref"] == "PA-1"

    def test_an_expired_clock_threatens_the_case_and_names_the_clock(self):
        result = r.authorization_result("EXPIRED", "PA-1", decision_clock_hours=72)
        assert result.status is DependencyStatus.THREATENED
        assert "72 h" in result.reasons[0]


class TestBenefits:
    def test_inactive_coverage_blocks(self):
        assert r.benefits_result(EligibilityResponse(active=False, covered=False)).status is (
            DependencyStatus.BLOCKED
        )

    def test_uncovered_procedure_blocks_with_the_payer_reason(self):
        result = r.benefits_result(
            EligibilityResponse(active=True, covered=False, reason="benefit exhausted")
        )
        assert result.status is DependencyStatus.BLOCKED
        assert result.reasons == ("benefit exhausted",)

    def test_active_and_covered_is_ok(self):
        assert r.benefits_result(EligibilityResponse(active=True, covered=True)).status is (
            DependencyStatus.OK
        )


class TestClinicianAndRoom:
    def parts(self, surgeon=ParticipantStatus.ACCEPTED, room=ParticipantStatus.ACCEPTED):
        return [
            Participant(role="surgeon", ref="Practitioner/s", status=surgeon),
            Participant(role="room", ref="Location/r", status=room),
        ]

    def test_all_accepted_is_ok(self):
        assert r.clinician_and_room_result(self.parts(), case(), NOW).status is DependencyStatus.OK

    def test_a_declined_surgeon_threatens_the_case(self):
        result = r.clinician_and_room_result(
            self.parts(surgeon=ParticipantStatus.DECLINED), case(), NOW
        )
        assert result.status is DependencyStatus.THREATENED

    def test_unconfirmed_room_is_pending_far_out_and_threatened_inside_72_hours(self):
        parts = self.parts(room=ParticipantStatus.TENTATIVE)
        far = r.clinician_and_room_result(parts, case(), NOW)
        near = r.clinician_and_room_result(parts, case(), NOW + timedelta(days=4))
        assert far.status is DependencyStatus.PENDING
        assert near.status is DependencyStatus.THREATENED

    def test_an_appointment_without_a_room_is_threatened(self):
        parts = [
            Participant(role="surgeon", ref="Practitioner/s", status=ParticipantStatus.ACCEPTED)
        ]
        result = r.clinician_and_room_result(parts, case(), NOW)
        assert result.status is DependencyStatus.THREATENED
        assert "no room" in result.reasons[0]


class TestSupplies:
    def test_available_means_on_hand_minus_reserved(self):
        c = case(supplies=HIP[:1])
        shortages = r.find_shortages(c, [position("IMP-THA-STEM-12", on_hand=1, reserved=1)])
        assert [(s.item_id, s.shortfall) for s in shortages] == [("IMP-THA-STEM-12", 1)]

    def test_consignment_implants_are_never_short(self):
        c = case(supplies=SPINE[:1])
        assert r.find_shortages(c, [position("IMP-SPN-SCR-6545", 0, consignment=True)]) == []

    def test_an_item_missing_from_the_item_master_is_a_shortage_without_supplier(self):
        c = case(supplies=KNEE[:1])
        shortages = r.find_shortages(c, [])
        assert shortages[0].supplier_id == "unknown"
        result = r.supplies_result(shortages, (), policy(c))
        assert result.status is DependencyStatus.THREATENED
        assert r.requisitions_for(c, shortages, policy(c)) == []

    def test_one_requisition_per_supplier_needed_by_the_hard_stop(self):
        c = case()
        p = policy(c)
        shortages = r.find_shortages(
            c,
            [
                position("IMP-THA-STEM-12", 0),
                position("IMP-THA-CUP-52", 0),
                position("SUP-DRAPE-ORTHO", 10),
            ],
        )
        reqs = r.requisitions_for(c, shortages, p)
        assert len(reqs) == 1
        assert {line.item_id for line in reqs[0].lines} == {"IMP-THA-STEM-12", "IMP-THA-CUP-52"}
        assert reqs[0].needed_by == p.hard_stop_at
        assert reqs[0].reference == "appt-1:sup-x"

    def test_delivery_after_the_hard_stop_threatens_delivery_before_is_pending(self):
        c = case(supplies=HIP[:1])
        p = policy(c)
        shortages = r.find_shortages(c, [position("IMP-THA-STEM-12", 0)])
        late = Requisition(
            requisition_id="R1",
            status="SUBMITTED",
            expected_delivery=p.hard_stop_at + timedelta(hours=1),
        )
        early = Requisition(
            requisition_id="R2",
            status="SUBMITTED",
            expected_delivery=p.hard_stop_at - timedelta(hours=1),
        )
        assert r.supplies_result(shortages, [late], p).status is DependencyStatus.THREATENED
        assert r.supplies_result(shortages, [early], p).status is DependencyStatus.PENDING


class TestSterile:
    def test_missing_and_late_trays_threaten(self):
        c = case(tray_ids=("T1", "T2", "T3"))
        p = policy(c)
        trays = [
            TrayStatus(tray_id="T1", status="missing"),
            TrayStatus(
                tray_id="T2", status="in_process", ready_at=p.hard_stop_at + timedelta(hours=1)
            ),
        ]
        result = r.sterile_result(trays, c, p)
        assert result.status is DependencyStatus.THREATENED
        assert len(result.reasons) == 3  # missing, late, unknown T3

    def test_ready_trays_are_ok(self):
        c = case(tray_ids=("T1",))
        assert (
            r.sterile_result([TrayStatus(tray_id="T1", status="ready")], c, policy(c)).status
            is DependencyStatus.OK
        )


class TestEvaluate:
    def test_all_ok_is_ready(self):
        ev = r.evaluate([ok(d) for d in r.DEPENDENCIES], policy())
        assert ev.outcome is Outcome.READY
        assert not ev.needs_coordinator

    def test_anything_blocked_blocks_without_a_coordinator_wait(self):
        results = [ok(d) for d in r.DEPENDENCIES[1:]] + [
            DependencyResult(
                dependency=r.AUTHORIZATION, status=DependencyStatus.BLOCKED, reasons=("denied",)
            )
        ]
        ev = r.evaluate(results, policy())
        assert ev.outcome is Outcome.BLOCKED
        assert ev.reasons == ("denied",)
        assert not ev.needs_coordinator

    def test_threatened_supplies_put_the_buyer_then_the_director_on_the_chain(self):
        results = [ok(d) for d in r.DEPENDENCIES if d != r.SUPPLIES] + [
            DependencyResult(dependency=r.SUPPLIES, status=DependencyStatus.THREATENED)
        ]
        ev = r.evaluate(results, policy())
        assert ev.outcome is Outcome.AT_RISK
        assert ev.needs_coordinator
        assert ev.escalation_chain == ("supply_chain_buyer", "department_director")

    def test_an_unchecked_dependency_is_at_risk(self):
        ev = r.evaluate([ok(r.AUTHORIZATION)], policy())
        assert ev.outcome is Outcome.AT_RISK
        assert any("was not checked" in reason for reason in ev.reasons)

    def test_a_failed_check_is_at_risk_and_needs_a_person(self):
        results = [ok(d) for d in r.DEPENDENCIES if d != r.BENEFITS] + [
            r.error_result(r.BENEFITS, "ConnectorUnavailable")
        ]
        ev = r.evaluate(results, policy())
        assert ev.outcome is Outcome.AT_RISK
        assert "ConnectorUnavailable" in ev.reasons[-1]


class TestAfterCoordinator:
    def test_cancel_blocks(self):
        assert (
            r.after_coordinator("CANCEL", [], "patient declined", policy()).outcome
            is Outcome.BLOCKED
        )

    def test_reschedule_stays_at_risk_even_when_the_data_is_clear(self):
        ev = r.after_coordinator("RESCHEDULE", [ok(d) for d in r.DEPENDENCIES], "", policy())
        assert ev.outcome is Outcome.AT_RISK

    def test_proceed_follows_the_rechecked_data(self):
        assert (
            r.after_coordinator("PROCEED", [ok(d) for d in r.DEPENDENCIES], "", policy()).outcome
            is Outcome.READY
        )
