"""``make bench``'s case (careflow.kit.bench): a clean total knee at North Valley (the
demo's case-7101 as a case of its own, case-9101): both components by lot and serial and
the cement charged the day after, the operative note signed, coded, covered and
authorized → CLAIM_SUBMITTED, with no person.

The authorization is the prior authorization workflow's, as for every case: on the
cloud's first call (the bench's untimed warm-up) the case is put in the EHR and its prior
authorization runs to APPROVED; every execution then bills the same completed case (the
bench starts executions without intake's one-instance-per-subject record, and the claim
is handed to billing once per claim id).

``waiting``: a total knee of its own (its case number from ``key``), authorized the same
way, whose tibial component was used but never charged: a DNFB for missing charges, a
task in ``charge_capture`` that nobody works."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from careflow.kit.bench import poll, start_target, subject_number

WORKFLOW = "revenue-cycle"
CASE_ID = "case-9101"
VISIT = "V-9101"
READY = "_revenue_cycle_bench_ready"  # set on a cloud once its case and authorization exist


def _completed(cloud: Any, case_id: str, visit: str, **seed: Any) -> Any:
    """A completed total knee in the EHR, and its prior authorization run to APPROVED."""
    from careflow.adapters.sandbox import sandbox
    from careflow.adapters.sandbox_revenue import CPT, ICD10, RevenueSeed, used_item
    from careflow.canonical.datatypes import Coding
    from careflow.workflows.revenue_cycle.demo import _authorize, _publish

    end = cloud.clock.now() - timedelta(hours=26)
    revenue_seed = RevenueSeed(
        case_id,
        "fac-north",
        Coding(system=CPT, code="27447"),
        Coding(system=ICD10, code="M17.11"),
        (
            used_item("IMP-TKA-FEM-5", 1, lot="LOT-F5-24117", serial="SN-5512080"),
            used_item("IMP-TKA-TIB-4", 1, lot="LOT-T4-24090", serial="SN-5512311"),
            used_item("SUP-CEMENT-40", 2),
        ),
        charge_lag=timedelta(hours=20),
        **seed,
    )
    case = sandbox().add_completed_case(revenue_seed, encounter_id=visit, procedure_end=end)
    _publish(SimpleNamespace(cloud=cloud), case)  # type: ignore[arg-type]  # the FHIR server's too
    arn = _authorize(SimpleNamespace(cloud=cloud), case)  # type: ignore[arg-type]
    sfn = cloud.client("stepfunctions")
    poll(
        lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING" or None,
        f"the prior authorization of {case_id}",
    )
    if sfn.describe_execution(executionArn=arn)["status"] != "SUCCEEDED":
        raise RuntimeError(f"the prior authorization of {case_id} did not succeed")
    return case


def _target(cloud: Any, key: str, billed: Any) -> dict[str, Any]:
    return start_target(
        WORKFLOW,
        "careflow.ehr",
        "SurgicalCase.Completed",
        facility_id=billed.facility_id,
        key=key,
        now=cloud.clock.now(),
        data={
            "case_id": billed.case_id,
            "encounter_id": billed.encounter_id,
            "procedure_end": billed.procedure_end.isoformat(),
        },
    )


def _prepare(cloud: Any) -> None:
    _completed(cloud, CASE_ID, VISIT)


def case(cloud: Any, key: str) -> dict[str, Any]:
    if not getattr(cloud, READY, False):
        _prepare(cloud)
        setattr(cloud, READY, True)
    from careflow.adapters.sandbox import sandbox

    return _target(cloud, key, sandbox().revenue.cases[CASE_ID])


def waiting(cloud: Any, key: str) -> dict[str, Any]:
    """The tibial component used, not charged: charge capture's DNFB task waits."""
    number = subject_number(key)
    billed = _completed(cloud, f"case-{number}", f"V-{number}", uncharged=("IMP-TKA-TIB-4",))
    return _target(cloud, key, billed)
