"""``make bench``'s case (careflow.kit.bench): an MRI the payer approves on submission
(the demo's pa-2001), one request per execution.

``waiting``: an MRI the payer will not decide without a document (the progress note):
a utilization review nurse's task in ``utilization_review_imaging`` to attach it, which
nobody does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from careflow.kit.bench import start_target


def _requested(cloud: Any, key: str, request_id: str, rule: Any) -> dict[str, Any]:
    cloud.set_payer_rule(request_id, f"cov-{request_id}", rule)
    now = cloud.clock.now()
    return start_target(
        "prior-authorization",
        "careflow.ehr",
        "PriorAuth.Requested",
        facility_id="fac-north",
        key=key,
        now=now,
        data={
            "request_id": request_id,
            "service_line": "imaging",
            "patient_ref": f"Patient/pt-{request_id}",
            "coverage_ref": f"Coverage/cov-{request_id}",
            "payer_id": "payer-acme",
            "procedure_codes": [
                {
                    "system": "http://www.ama-assn.org/go/cpt",
                    "code": "70553",
                    "display": "MRI brain without and with contrast",
                }
            ],
            "service_date": (now + timedelta(days=10)).isoformat(),
            "priority": "routine",
        },
    )


def case(cloud: Any, key: str) -> dict[str, Any]:
    from careflow.adapters.sandbox import PayerRule
    from careflow.canonical.payer import AuthDecision

    return _requested(cloud, key, f"pa-bench-{key}", PayerRule(AuthDecision.APPROVED))


def waiting(cloud: Any, key: str) -> dict[str, Any]:
    """The payer asks for the progress note (LOINC 11506-3): the nurse's task waits."""
    from careflow.adapters.sandbox import PayerRule
    from careflow.canonical.payer import AuthDecision

    rule = PayerRule(AuthDecision.APPROVED, documents=("11506-3",))
    return _requested(cloud, key, f"pa-wait-{key}", rule)
