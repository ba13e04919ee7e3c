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


def safe_ids(values: Mapping[str, Any]) -> dict[str, Any]:
    """The identifier fields of ``values``; everything else is dropped."""
    return {k: v for k, v in values.items() if k in ID_KEYS and isinstance(v, str | int)}


def step(name: str) -> Any:
    """Decorates a Lambda handler: logs its identifiers and failures, never its payload."""
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
            logger.debug(
                "step done",
                extra={"step": name, **ids, "ms": round((time.perf_counter() - started) * 1000, 1)},
            )
            return result

        return wrapper

    return decorate
