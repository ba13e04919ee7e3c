"""Child workflow executions: ``arn:aws:states:::states:startExecution`` (``.sync``,
``.sync:2``) on the local cloud.

moto 5.2.5 has LocalStack's ``StateTaskServiceSfn`` (under
``moto/stepfunctions/parser/asl/component/state/exec/state_task/service/``): it starts
the child, and for ``.sync``/``.sync:2`` polls DescribeExecution until the child ends,
then gives its description as the task's result (``.sync:2`` with ``Input``/``Output``
parsed), or fails the task with ``States.TaskFailed`` and the description as the cause.
What moto left out is LocalStack's casing between the ASL's fields and boto3's: its
``StateTaskService._normalise_parameters`` / ``_normalise_response`` are no-ops, so
``StartExecution`` went to boto3 as ``StateMachineArn=...`` (a ``KeyError`` in botocore's
serializer: moto's clients do not validate) and the resolvers read ``ExecutionArn``
from a response that has ``executionArn``. Patched, for this service only:

- ``state_task_service_sfn.py`` ``StateTaskServiceSfn._normalise_parameters`` (wrapped):
  after moto's own (``Input`` as a JSON string), the ASL's fields take boto3's names
  from the operation's input shape (``StateMachineArn`` -> ``stateMachineArn``), with
  moto's ``StateTaskService._to_boto_request``;
- ``StateTaskServiceSfn._normalise_response`` (moto's class inherits the no-op): the
  response takes the ASL's names from the operation's output shape
  (``executionArn`` -> ``ExecutionArn``, nested ``InputDetails.Included`` too), with
  moto's ``StateTaskService._from_boto_response``; dates become epoch milliseconds, the
  form Step Functions gives them in a task's result (a datetime would also break
  DescribeExecution of the parent, as ``$$.Execution.StartTime`` did);
- ``state_task_service_callback.py`` module attribute ``time``: ``_eval_sync`` sleeps
  0.5 s between two DescribeExecutions; the sleep ends as soon as any execution ends, so
  the parent resumes when its child does;
- ``backend/execution.py`` ``BaseExecutionWorkerCommunication.terminated`` (wrapped):
  tells those sleeps an execution ended, and hands the end (ARNs, name, status, error,
  cause, input) to the installed ``execution_ended`` listener in the async pool: the
  local cloud announces it on the default bus as Step Functions does
  (``careflow.domain.executions``).

The child runs on the virtual clock like any execution: its Wait states and task-token
waits do not hold real time, and the parent's poll is a real-time half second at most.
``AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID`` in ``Input`` reaches the child's input
as written (``"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"``).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import threading
import time as _time_module
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .shapes import Check, Patch, all_of, is_, params, source_has
from .state import ASL, SFN, ModuleShim, current

_SERVICE = f"{ASL}.component.state.exec.state_task.service"
_SFN_TASK = f"{_SERVICE}.state_task_service_sfn:StateTaskServiceSfn"
_BASE_TASK = f"{_SERVICE}.state_task_service:StateTaskService"
_CALLBACK = f"{_SERVICE}.state_task_service_callback"

_ended = threading.Condition()
# The child a ``.sync`` poll waits on, per polling thread (set when it started the child),
# and one event per child that its end sets: a child's end wakes only its own parent.
_waiting = threading.local()
_child_ended: dict[str, threading.Event] = {}
_child_lock = threading.Lock()


def _child_event(arn: str) -> threading.Event:
    with _child_lock:
        event = _child_ended.get(arn)
        if event is None:
            event = _child_ended[arn] = threading.Event()
        return event


def _notify_ended(arn: str | None = None) -> None:
    if arn is not None:
        _child_event(arn).set()  # kept set: a poll that starts after the end returns at once
        return
    with _ended:
        _ended.notify_all()


def _sleep_until_an_execution_ends(seconds: float) -> None:
    """``time.sleep`` for ``_eval_sync``'s poll: at most ``seconds`` (real time), less if
    the child it waits on (or, not knowing it, any execution) ends meanwhile."""
    arn = getattr(_waiting, "arn", None)
    if arn is not None:
        if _child_event(arn).wait(timeout=seconds):
            with _child_lock:
                _child_ended.pop(arn, None)  # its parent has seen it: forget it
            _waiting.arn = None
        return
    with _ended:
        _ended.wait(timeout=seconds)


_TIME_WAKING_ON_EXECUTION_END = ModuleShim(_time_module, sleep=_sleep_until_an_execution_ends)


@functools.lru_cache(maxsize=1)
def _sfn_operations() -> dict[str, Any]:
    """boto3's Step Functions operations by snake-case name (``start_execution``)."""
    import botocore.session
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = botocore.session.get_session().get_service_model("stepfunctions")
    return {
        camel_to_snake_case(name): model.operation_model(name) for name in model.operation_names
    }


def _make_normalise_parameters(original: Callable[..., None]) -> Callable[..., None]:
    def _normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        """Wraps ``StateTaskServiceSfn._normalise_parameters``: then boto3's names."""
        original(self, parameters, boto_service_name, service_action_name)
        operation = _sfn_operations().get(
            self._get_boto_service_action(service_action_name=service_action_name)
        )
        if operation is not None and operation.input_shape is not None:
            self._to_boto_request(parameters, operation.input_shape)

    _normalise_parameters.__wrapped__ = original  # type: ignore[attr-defined]
    return _normalise_parameters


def _epoch_millis(value: Any) -> Any:
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {key: _epoch_millis(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_epoch_millis(inner) for inner in value]
    return value


def _normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """``StateTaskServiceSfn._normalise_response``: the ASL's names, dates in ms."""
    if not isinstance(response, dict):
        return
    operation = _sfn_operations().get(
        self._get_boto_service_action(service_action_name=service_action_name)
    )
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)
    if operation is not None and operation.name == "StartExecution" and "ExecutionArn" in response:
        _waiting.arn = response["ExecutionArn"]  # this thread now polls for that child
        _child_event(response["ExecutionArn"])
    for key, value in list(response.items()):
        response[key] = _epoch_millis(value)


def _announce(execution: Any) -> None:
    """The end, to the installed listener (off this thread: it may put events)."""
    state = current()
    listener = state.execution_ended if state is not None else None
    if listener is None or execution is None or execution.exec_status is None:
        return
    status = getattr(execution.exec_status, "value", execution.exec_status)
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": str(status),
        "error": execution.error,
        "cause": execution.cause,
        "input": execution.execution_input,
    }
    assert state is not None
    try:
        state.pool.submit(listener, detail)
    except RuntimeError:  # the cloud is closing (its pool shut down): nobody to tell
        return


def _make_terminated(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def terminated(self: Any) -> None:
        """Wraps ``BaseExecutionWorkerCommunication.terminated``: then wake the polls."""
        try:
            original(self)
        finally:
            execution = getattr(self, "execution", None)
            _notify_ended(getattr(execution, "exec_arn", None))
            _announce(execution)

    terminated.__wrapped__ = original  # type: ignore[attr-defined]
    return terminated


def _inherits_the_no_op(owner: Any, original: Any) -> str | None:
    """``StateTaskServiceSfn`` has no ``_normalise_response`` of its own, and the one it
    inherits does nothing (so replacing it drops nothing of moto's)."""
    if "_normalise_response" in vars(owner):
        return "is defined by the class itself"
    tree = ast.parse(textwrap.dedent(inspect.getsource(original)))
    function = tree.body[0]
    if not isinstance(function, ast.FunctionDef) or [type(n) for n in function.body] != [ast.Pass]:
        return "is no longer a no-op"
    return None


def patches() -> list[Patch]:
    normalise_params: Check = params("self", "response", "boto_service_name", "service_action_name")
    return [
        Patch(
            _SFN_TASK,
            "_normalise_parameters",
            _make_normalise_parameters,
            all_of(
                params("self", "parameters", "boto_service_name", "service_action_name"),
                source_has(
                    'if self._get_boto_service_action() == "start_execution":',
                    'parameters["Input"] = to_json_str(',
                    "super()._normalise_parameters(",
                ),
            ),
        ),
        Patch(
            _SFN_TASK,
            "_normalise_response",
            lambda _o: _normalise_response,
            all_of(normalise_params, _inherits_the_no_op),
        ),
        Patch(
            _SFN_TASK,
            "_build_sync2_resolver",
            None,
            source_has(
                'execution_arn: str = submission_output["ExecutionArn"]',
                "self._sync2_api_output_of(",
                'service_action_name="describe_execution"',
                "error=StatesErrorNameType.StatesTaskFailed.to_name()",
                "cause=to_json_str(describe_execution_output)",
            ),
        ),
        Patch(
            _BASE_TASK,
            "_to_boto_request",
            None,
            params("self", "parameters", "structure_shape"),
        ),
        Patch(
            _BASE_TASK,
            "_from_boto_response",
            None,
            params("self", "response", "structure_shape"),
        ),
        Patch(
            _CALLBACK,
            "time",
            lambda _o: _TIME_WAKING_ON_EXECUTION_END,
            is_(
                _time_module,
                used_in=[
                    (
                        f"{_CALLBACK}:StateTaskServiceCallback._eval_sync",
                        "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)",
                    )
                ],
            ),
        ),
        Patch(
            f"{SFN}.backend.execution:BaseExecutionWorkerCommunication",
            "terminated",
            _make_terminated,
            all_of(params("self"), source_has("self._reflect_execution_status()")),
        ),
    ]
