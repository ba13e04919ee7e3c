"""Step Functions behaviour moto 5.2.5 gets wrong, made as AWS has it.

Patched (paths under ``moto/stepfunctions/parser/``):

- ``models.py`` ``StepFunctionsParserBackend.start_execution``: a StartExecution without
  ``name`` gets a UUID (moto names it ``None``: the second one fails with
  ExecutionAlreadyExists, or returns the first when the input is the same);
- ``backend/execution_worker.py`` ``ExecutionWorker._get_evaluation_environment``:
  ``$$.Execution.StartTime`` is an ISO string (moto puts a datetime there, and an output
  holding it makes DescribeExecution fail with a 500);
- ``asl/component/state/wait/wait_function/timestamp.py``
  ``Timestamp._from_timestamp_string`` and
  ``asl/component/state/choice/comparison/operator/implementations/is_operator.py``
  ``IsTimestamp.string_to_timestamp``: RFC 3339 timestamps with fractions or offsets
  (moto only takes ``...:SSZ``: ``EnteredTime`` was no valid Wait timestamp, and a
  Choice on ``2030-01-01T00:00:00.5Z`` was silently false).

Child executions (``states:startExecution``) are :mod:`.children`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .clock import aws_timestamp
from .shapes import Patch, params
from .state import ASL, SFN


def _make_start_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        """Wraps ``StepFunctionsParserBackend.start_execution``: a StartExecution without
        a name gets a UUID, as on AWS (moto names it ``None``, so a second one fails
        with ExecutionAlreadyExists or returns the first)."""
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    start_execution.__wrapped__ = original  # type: ignore[attr-defined]
    return start_execution


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An ASL timestamp (RFC 3339: ``Z`` or an offset, optional fraction) as a naive
    UTC datetime, what moto's comparisons use; None if it is not one."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None)


def _wait_timestamp(timestamp: str) -> datetime | None:
    """Replaces ``Timestamp._from_timestamp_string``: RFC 3339, offsets included."""
    return parse_timestamp(timestamp)


def _choice_timestamp(string: str) -> datetime | None:
    """Replaces ``IsTimestamp.string_to_timestamp``: RFC 3339, fractions and offsets."""
    return parse_timestamp(string)


def _make_evaluation_environment(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_evaluation_environment(self: Any) -> Any:
        """Wraps ``ExecutionWorker._get_evaluation_environment``: ``$$.Execution.StartTime``
        is an ISO-8601 string as on AWS (moto puts a datetime there, and an execution
        whose output holds it makes DescribeExecution fail with a 500)."""
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime):
            execution["StartTime"] = aws_timestamp(execution["StartTime"])
        return env

    _get_evaluation_environment.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_evaluation_environment


def patches() -> list[Patch]:
    choice_is = f"{ASL}.component.state.choice.comparison.operator.implementations.is_operator"
    return [
        Patch(
            f"{SFN}.models:StepFunctionsParserBackend",
            "start_execution",
            _make_start_execution,
            params("self", "state_machine_arn", "name", "execution_input", "trace_header"),
        ),
        Patch(
            f"{ASL}.component.state.wait.wait_function.timestamp:Timestamp",
            "_from_timestamp_string",
            lambda _o: staticmethod(_wait_timestamp),
            params("timestamp"),
        ),
        Patch(
            f"{choice_is}:IsTimestamp",
            "string_to_timestamp",
            lambda _o: staticmethod(_choice_timestamp),
            params("string"),
        ),
        Patch(
            f"{SFN}.backend.execution_worker:ExecutionWorker",
            "_get_evaluation_environment",
            _make_evaluation_environment,
            params("self"),
        ),
    ]
