"""AWS clients for the interpreter's service integrations: cached, and answered in-process.

``asl/utils/boto_client.py`` ``boto_client_for`` (under ``moto/stepfunctions/parser/``)
builds a new boto3 client on every call (each Lambda task, each DynamoDB/EventBridge/
SQS/SNS integration). It is replaced there and in the 13 parser modules that imported it
by name (:data:`BOTO_CLIENT_IMPORTERS`), and in any parser module imported later, with
:func:`cached_boto_client_for`: one client per (region, service, endpoint), attached to
the in-process transport (:mod:`.inprocess`). For ``lambda`` it is an
:class:`InProcessLambdaClient`, whose ``invoke`` runs the function here (:mod:`.lambda_`).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import uuid
from collections.abc import Callable
from typing import Any

from .inprocess import attach_in_process
from .lambda_ import as_bytes, call_invoke, invoke_async, qualified
from .shapes import Patch, params
from .state import ASL, SFN, Installed, current

BOTO_CLIENT_MODULE = f"{ASL}.utils.boto_client"
# Every module of moto 5.2.5 that did ``from ...boto_client import boto_client_for``.
BOTO_CLIENT_IMPORTERS = (
    f"{ASL}.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3",
    f"{ASL}.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
    f"{ASL}.component.state.exec.state_task.lambda_eval_utils",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_unsupported",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_glue",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_events",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_ecs",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_sqs",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_sfn",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_dynamodb",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_batch",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_sns",
    f"{ASL}.component.state.exec.state_task.service.state_task_service_aws_sdk",
)


class InProcessLambdaClient:
    """The ``lambda`` client the interpreter gets: ``invoke`` runs in this process.

    Other operations go to a real (cached) boto3 client against the moto server.
    """

    def __init__(self, region: str, real_client: Callable[[], Any]) -> None:
        self.region = region
        self._real_client = real_client

    def invoke(
        self,
        *,
        FunctionName: str,
        Payload: Any = None,
        InvocationType: str = "RequestResponse",
        Qualifier: str | None = None,
        **_ignored: Any,
    ) -> dict[str, Any]:
        from botocore.response import StreamingBody

        state = current()
        if state is None:  # uninstalled mid-flight: behave like moto's client
            return self._real_client().invoke(
                FunctionName=FunctionName, Payload=as_bytes(Payload), InvocationType=InvocationType
            )
        function = qualified(FunctionName, Qualifier)
        payload = as_bytes(Payload)
        if InvocationType == "DryRun":
            status, body, error = 204, b"", None
        elif InvocationType == "Event":
            invoke_async(state, function, payload, on_failure=None)
            status, body, error = 202, b"", None
        else:
            body, error = call_invoke(state.invoke, function, payload)
            status = 200
        response: dict[str, Any] = {
            "StatusCode": status,
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": str(uuid.uuid4()),
                "HTTPHeaders": {},
            },
        }
        if error:
            response["FunctionError"] = error
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real_client(), name)


def cached_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """Replaces moto's ``boto_client_for``: one client per (region, service, endpoint)."""
    state = current()
    if state is None or state.boto_client_for is None:  # pragma: no cover - uninstall race
        module = importlib.import_module(BOTO_CLIENT_MODULE)
        return module.boto_client_for(region, service, state_credentials)
    if service == "lambda":
        return _client(state, region, "lambda#in-process", state_credentials)
    return _client(state, region, service, state_credentials)


def _client(state: Installed, region: str, service: str, state_credentials: Any) -> Any:
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
    key = (region, service, endpoint)
    client = state.clients.get(key)
    if client is not None:
        return client
    with state.clients_lock:
        client = state.clients.get(key)
        if client is None:
            if service == "lambda#in-process":
                client = InProcessLambdaClient(
                    region, lambda: _client(state, region, "lambda", state_credentials)
                )
            else:
                assert state.boto_client_for is not None
                client = attach_in_process(
                    state.boto_client_for(region, service, state_credentials)
                )
            state.clients[key] = client
    return client


def import_importers() -> None:
    """Import every parser module that takes ``boto_client_for`` by name, so all get patched."""
    for module in BOTO_CLIENT_IMPORTERS:
        importlib.import_module(module)


def moto_boto_client_for() -> Callable[..., Any]:
    """moto's own ``boto_client_for`` (what the cache builds clients with)."""
    function: Callable[..., Any] = importlib.import_module(BOTO_CLIENT_MODULE).boto_client_for
    return function


def rebind_late_importers(state: Installed) -> None:
    """Any other parser module holding moto's function (imported by name later on)."""
    for name, loaded in list(sys.modules.items()):
        if (
            name.startswith(SFN)
            and loaded is not None
            and vars(loaded).get("boto_client_for") is state.boto_client_for
        ):
            vars(loaded)["boto_client_for"] = cached_boto_client_for
            state.originals.append((loaded, "boto_client_for", state.boto_client_for))


def unbind_late_importers(state: Installed) -> None:
    """A parser module imported while installed took our function by name."""
    for name, loaded in list(sys.modules.items()):
        if (
            name.startswith(SFN)
            and loaded is not None
            and vars(loaded).get("boto_client_for") is cached_boto_client_for
        ):
            vars(loaded)["boto_client_for"] = state.boto_client_for


def close_clients(state: Installed) -> None:
    with contextlib.suppress(Exception):
        for client in state.clients.values():
            if isinstance(client, InProcessLambdaClient):
                continue  # getattr would build the real client it stands in for
            close = getattr(client, "close", None)
            if callable(close):
                close()
    state.clients.clear()


def patches() -> list[Patch]:
    client_params = params("region", "service", "state_credentials")
    # the defining module first, then every importer
    return [
        Patch(module, "boto_client_for", lambda _o: cached_boto_client_for, client_params)
        for module in (BOTO_CLIENT_MODULE, *BOTO_CLIENT_IMPORTERS)
    ]
