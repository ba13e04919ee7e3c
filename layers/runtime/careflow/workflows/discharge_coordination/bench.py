"""``make bench``'s case (careflow.kit.bench) and its driver: a pending discharge home
(A16, disposition 01: transport and meds to beds, no equipment, no post-acute
authorization), expected in two days: the cheapest that ends DISCHARGED. The
coordination ends only at the patient's departure (A03), which the driver sends as the
EHR would once the coordination waits for it, then lets the departure poll's timer pass
on the local cloud's clock."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from careflow.kit.bench import pass_timers, poll, running, start_target

WORKFLOW = "discharge-coordination"
SOURCE = "careflow.ehr"
FACILITY = "fac-north"
# Far enough that the clock's moves for the departure polls of many executions at once
# never reach the threat line (an hour before it): no case manager is asked. (At 8 h, one
# run of 60 had discharges threatened when every look moved the clock.)
EXPECTED_IN = timedelta(hours=48)
# The longest timer the driver lets pass: the policy's departure_poll_seconds (900 s);
# never an SLA's.
DEPARTURE_POLL = timedelta(minutes=15)
WAITS_FOR_DEPARTURE = "AwaitDeparture"  # the Wait state between two looks for the A03
PASS_EVERY = 0.5  # seconds between a driver's moves of the clock


def _data(key: str, **more: object) -> dict[str, object]:
    return {
        "encounter_id": f"VB-{key}",
        "patient_id": f"MRN-B-{key}",
        "patient_id_authority": "NVMC",
        **more,
    }


def case(cloud: Any, key: str) -> dict[str, Any]:
    now = cloud.clock.now()
    return start_target(
        WORKFLOW,
        SOURCE,
        "Encounter.DischargePending",
        facility_id=FACILITY,
        key=key,
        now=now,
        data=_data(key, disposition="01", expected_discharge_at=(now + EXPECTED_IN).isoformat()),
    )


def _waits_for_departure(cloud: Any, instance_id: str) -> bool:
    """The execution's last event is its entry into the departure poll's Wait state."""
    sfn = cloud.client("stepfunctions")
    events = sfn.get_execution_history(
        executionArn=cloud.execution_arn(instance_id, WORKFLOW), maxResults=1000
    )["events"]
    last = events[-1] if events else {}
    entered = last.get("stateEnteredEventDetails") or {}
    return bool(entered.get("name") == WAITS_FOR_DEPARTURE)


def drive(cloud: Any, key: str, instance_id: str) -> None:
    """As the EHR would: once the coordination has arranged the discharge and waits for the
    departure, the A03; then the departure poll's timer passes on the clock until the
    coordination has seen it and ended."""
    from careflow import wiring

    store = wiring.store()

    def arranged() -> bool:
        return any(m.name == "dependencies_arranged" for m in store.milestones(instance_id))

    poll(arranged, "the coordination's dependencies arranged")
    poll(
        lambda: _waits_for_departure(cloud, instance_id),
        f"the coordination at {WAITS_FOR_DEPARTURE}",
    )
    try:
        cloud.put_event(
            SOURCE,
            "Encounter.Discharged",
            facility_id=FACILITY,
            idempotency_key=f"encounter:VB-{key}:A03",
            data=_data(key, discharged_at=cloud.clock.now().isoformat(), disposition="01"),
        )
    except Exception as error:  # stock moto's EventBridge: no Lambda target, a 500
        said = str(error).split(" (reached max retries")[0].split(": <")[0]
        raise RuntimeError(f"the A03 was not put on the bus ({said})") from error

    def departed() -> bool:
        return any(m.name == "discharged" for m in store.milestones(instance_id))

    poll(departed, "the A03 recorded on the instance")
    moved = [0.0]

    def ended() -> bool:
        if not running(cloud, WORKFLOW, instance_id):
            return True
        # at most one move per driver every PASS_EVERY seconds: many drivers moving the
        # clock to the soonest timer at every look would walk it through every poll
        if time.monotonic() - moved[0] >= PASS_EVERY:
            moved[0] = time.monotonic()
            pass_timers(cloud, DEPARTURE_POLL)
        return False

    poll(ended, "the coordination's end after the A03")
    outcome = store.get_instance(instance_id).outcome
    if outcome != "DISCHARGED":
        raise RuntimeError(f"the coordination ended {outcome}, not DISCHARGED")
