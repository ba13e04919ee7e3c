"""ModelDrift: run daily by a schedule; per triage model, the largest PSI of its recent
inputs against its training inputs (``careflow.ml.drift_check``), emitted as the metric
``ModelDriftPsi`` (dimension ``model_id``) that the model's drift alarm watches. A model
with fewer recent inputs than the policy's ``drift_min_inputs`` emits nothing (too few say
nothing about a population; the alarm treats missing data as not breaching)."""

from typing import Any

from careflow import clock, wiring
from careflow.ml import drift_check
from careflow.observability import MODEL_DRIFT_METRIC, kpi_metric, logger, step


@step("model_drift")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    results = drift_check.run(wiring.store(), now=clock.now(), policies=wiring.policies())
    for r in results:
        if r.enough:
            kpi_metric(MODEL_DRIFT_METRIC, "None", r.max_psi, model_id=r.model_id)
        if r.alarm:
            logger.warning("model drift", extra={"model_id": r.model_id, "psi": r.max_psi})
    return {
        "models": [
            {
                "model_id": r.model_id,
                "inputs": r.inputs,
                "enough": r.enough,
                "max_psi": r.max_psi,
                "alarm": r.alarm,
            }
            for r in results
        ]
    }
