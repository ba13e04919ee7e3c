"""Logging and metrics that never carry PHI.

Log identifiers (instance, case, task, event ids), never names, birth dates,
member ids or whole events. :func:`safe_ids` keeps only known identifier keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = "careflow"
NAMESPACE = "Careflow"

logger = Logger(service=SERVICE, log_uncaught_exceptions=True)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

ID_KEYS = frozenset(
    {
        "instance_id",
        "case_id",
        "appointment_id",
        "task_id",
        "event_id",
        "correlation_id",
        "facility_id",
        "workflow_id",
        "preauth_ref",
        "requisition_id",
        "execution_name",
        "dependency",
        "outcome",
        "decision",
        "status",
        "queue",
        "detail_type",
    }
)


def log_to_stderr() -> None:
    """The step logger writes to stderr from here on. In a Lambda its JSON lines go to
    stdout, which CloudWatch Logs reads; a command that hosts the local cloud in its own
    process (``careflow demo``, ``careflow up``) keeps stdout for its output, so that
    ``careflow demo --json | jq`` reads one document even when a step fails and retries.
    The lines stop there: the root logger's handler (the CLI's plain lines) would repeat
    each one without its identifiers."""
    import logging
    import sys

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is not sys.stderr:
            handler.setStream(sys.stderr)
    logging.getLogger(SERVICE).propagate = False


def safe_ids(values: Mapping[str, Any]) -> dict[str, Any]:
    """The identifier fields of ``values``; everything else is dropped."""
    return {k: v for k, v in values.items() if k in ID_KEYS and isinstance(v, str | int)}


def flush_metrics() -> None:
    """Publishes the invocation's metrics (one EMF line on stdout, which CloudWatch turns
    into metrics), then forgets them; with ``POWERTOOLS_METRICS_DISABLED`` (the local
    cloud, the tests) it only forgets them, so they never pile up across invocations."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if not metrics.metric_set:
        return
    if is_metrics_disabled():
        metrics.clear_metrics()
    else:
        metrics.flush_metrics()


# The dimensions a KPI metric may carry: identifiers and categories, never PHI.
KPI_DIMENSIONS = frozenset({"workflow_id", "facility_id", "service_line", "cause", "model_id"})

# A review of a model's suggestion (careflow.ml.governance.record_review): 1 overridden,
# 0 accepted, by model_id; its Average is the override rate, its SampleCount the reviews.
MODEL_OVERRIDDEN_METRIC = "ModelOverridden"
# The drift check's largest PSI of a model's recent inputs (careflow.ml.drift_check).
MODEL_DRIFT_METRIC = "ModelDriftPsi"


def kpi_metric(name: str, unit: str, value: float, **dimensions: str) -> None:
    """One KPI metric with its own dimensions (``workflow_id``, ``facility_id``, and a
    category: :data:`KPI_DIMENSIONS` only), as its own EMF line through Powertools'
    ``single_metric`` (so the invocation's other metrics keep their dimension-less
    identity); with ``POWERTOOLS_METRICS_DISABLED`` (the local cloud, the tests) nothing."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    unknown = set(dimensions) - KPI_DIMENSIONS
    if unknown:
        raise ValueError(f"not a KPI metric dimension: {sorted(unknown)}")
    if is_metrics_disabled():
        return
    with single_metric(
        name=name, unit=MetricUnit(unit), value=value, namespace=NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, found in dimensions.items():
            metric.add_dimension(name=key, value=found)


def step(name: str) -> Any:
    """Decorates a Lambda handler: logs its identifiers and failures, never its payload,
    and publishes the metrics it added (what Powertools' ``log_metrics`` would do) whether
    it succeeded or failed."""
    import functools
    import time

    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(event: Any, context: Any) -> Any:
            ids = safe_ids(event) if isinstance(event, Mapping) else {}
            started = time.perf_counter()
            try:
                result = fn(event, context)
            except Exception as exc:
                logger.warning(
                    "step failed", extra={"step": name, "error": type(exc).__name__, **ids}
                )
                raise
            finally:
                flush_metrics()
            logger.debug(
                "step done",
                extra={"step": name, **ids, "ms": round((time.perf_counter() - started) * 1000, 1)},
            )
            return result

        return wrapper

    return decorate
