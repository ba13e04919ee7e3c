"""Staffing gap rules, with numbers worked by hand: acuity-weighted ratios, PACU by cases,
shifts in the facility's zone, the census kept by encounter, the options costed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from careflow.canonical import encounters as enc
from careflow.canonical.workforce import RosterEntry, StaffingOption
from careflow.policies import FilePolicyStore, resolve
from careflow.workflows.staffing_gaps import rules as r

CHICAGO = ZoneInfo("America/Chicago")
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 06:00 in Chicago (UTC-6)


@pytest.fixture(scope="module")
def policy() -> r.Policy:
    return r.staffing_policy(resolve("staffing", "fac-north", at=T0, store=FilePolicyStore()))


def test_the_policy_reads_ratios_skills_and_weights(policy):
    assert policy.ratios == {"icu": 2.0, "med-surg": 5.0, "pacu": 2.0}
    assert policy.skills["icu"] == "critical-care"
    assert policy.acuity_weights == {1: 1.0, 2: 1.0, 3: 1.25, 4: 1.5, 5: 2.0}


def test_icu_needs_one_nurse_per_two_weighted_patients(policy):
    # 2 + 1.5 + 1.25 + 1 = 5.75 weighted patients / 2 = 2.875 -> 3 nurses
    assert r.required_staff("icu", policy, acuities=[5, 4, 3, 2]) == 3


def test_med_surg_rounds_up_and_a_patient_without_acuity_weighs_one(policy):
    # 22 x 1 + 4 x 1.5 = 28 / 5 = 5.6 -> 6
    assert r.required_staff("med-surg", policy, acuities=[2] * 22 + [4] * 4) == 6
    # exactly 20 / 5 = 4: no nurse for a rounding error
    assert r.required_staff("med-surg", policy, acuities=[None] * 20) == 4
    assert r.required_staff("med-surg", policy, acuities=[]) == 0


def test_pacu_counts_scheduled_cases(policy):
    assert r.required_staff("pacu", policy, cases=13) == 3  # 13 / 6 = 2.17 -> 3
    assert r.required_staff("pacu", policy, cases=0) == 0


def test_only_rostered_nurses_with_the_units_skill_count():
    def entry(role: str, *skills: str) -> RosterEntry:
        return RosterEntry(staff_id="s", unit_id="4W", shift_start=T0, role=role, skills=skills)

    roster = [entry("RN", "med-surg"), entry("RN", "pacu"), entry("CNA", "med-surg")]
    assert r.rostered(roster, "med-surg") == 1
    assert r.gap(6, 4, "med-surg").size == 2
    assert r.gap(3, 5, "icu").size == 0


def test_the_next_shift_is_in_the_facilitys_zone(policy):
    start, end = r.next_shift(T0, CHICAGO, policy)  # 06:00 local -> the 07:00 shift
    assert start == datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    night, morning = r.next_shift(T0 + timedelta(hours=2), CHICAGO, policy)  # 08:00 local
    assert night == datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert r.shift_end(night, CHICAGO, policy) == morning == datetime(2026, 12, 1, 13, tzinfo=UTC)


def test_pacu_recovers_the_cases_that_start_in_its_shift():
    starts = [T0 + timedelta(hours=h) for h in (0, 1, 5, 12)]
    assert r.cases_in_window(starts, T0, T0 + timedelta(hours=12)) == 3


def _entry(kind: str, unit: str | None, hours: int, stored=None, acuity: int | None = None):
    at = T0 + timedelta(hours=hours)
    return r.census_entry(
        "fac-north", kind, "V1", unit=unit, acuity=acuity, occurred_at=at, stored=stored
    )


def test_the_census_keeps_one_entry_per_encounter_and_remembers_its_unit():
    admitted = _entry(enc.ADMITTED, "4W", 0, acuity=3)
    assert (admitted.unit, admitted.acuity, admitted.present) == ("4W", 3, True)
    discharged = _entry(enc.DISCHARGED, None, 1, admitted)
    assert (discharged.unit, discharged.acuity, discharged.present) == ("4W", 3, False)
    back = _entry(enc.DISCHARGE_CANCELLED, None, 2, discharged)
    assert back.present and back.unit == "4W"
    entries = [back, admitted.model_copy(update={"encounter_id": "V2", "unit": "5W"})]
    assert [e.encounter_id for e in r.unit_census(entries, "4W")] == ["V1"]
    assert r.superseded(entries, "4W", T0 + timedelta(hours=1))
    assert not r.superseded(entries, "4W", T0 + timedelta(hours=2))


def test_options_in_time_come_first_cheapest_first():
    def option(kind, available, lead, cost):
        return StaffingOption(
            kind=kind, available=available, lead_time_hours=lead, cost_per_hour=cost
        )

    options = r.costed_options(
        [
            option("agency", 4, 8, 145),
            option("float_pool", 1, 1, 68),
            option("overtime", 2, 1, 96),
            option("flex_census", 0, 0, 0),  # none to offer: left out
        ],
        size=2,
        hours_to_shift=6,
        shift_hours=12,
    )
    assert [(o.kind, o.covers, o.in_time, o.cost) for o in options] == [
        ("float_pool", 1, True, 816.0),  # 1 x 68 x 12
        ("overtime", 2, True, 2304.0),  # 2 x 96 x 12
        ("agency", 2, False, 3480.0),  # 2 x 145 x 12, but 8 h lead time > 6 h
    ]
    assert r.option_reason(options[2]).startswith("agency: covers 2, lead time 8 h (too late)")
    assert r.outcome_of("FLOAT_POOL") == "FILLED"
    assert r.outcome_of("NO_ACTION") == r.outcome_of(None) == "UNFILLED"
