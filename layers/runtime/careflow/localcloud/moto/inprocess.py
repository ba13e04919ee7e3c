"""AWS calls to the local endpoint, answered by moto in this process.

:func:`attach_in_process` is applied to every boto3 client the local cloud builds for its
endpoint (the handlers' clients through ``wiring.CLIENT_HOOKS``, the interpreter's service
integrations, ``LocalCloud.client``). While the patches are installed (:mod:`.patches`):

- a call is answered at botocore's ``before-call``, once botocore has validated and
  serialized it: moto's handler for the path gets the request as a WSGI environ built
  directly, and botocore's parser reads the answer (:class:`_InProcessCall`);
- DynamoDB item operations take the lane: from botocore's ``serialize_to_request``
  straight to ``DynamoHandler``'s method, and back through moto's serializer and
  botocore's parser (:func:`_direct_item_operations`, :func:`_dynamodb_lane`);
- what neither takes (a streaming body, a path no handler is known for) goes through
  the ``before-send`` transport and moto's stubber (:class:`_InProcessTransport`);
- calls are unsigned, and the endpoint ruleset of services whose answer can only be
  the local URL is not evaluated per call;
- a moto failure that is not an AWS error is answered as HTTP 500 ``InternalFailure``.

What the lane relies on in moto is checked with the patches, at install (:func:`patches`
lists it: checked, not replaced). ``docs/local-cloud.md`` has the measurements.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import math
import re
import sys
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore import UNSIGNED
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.endpoint import convert_to_response_dict
from moto import backends
from moto import settings as moto_settings
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse, backend_index
from moto.core.exceptions import HTTPException, ServiceException
from moto.core.request import PRESERVED_HEADER_NAMES_ENVIRON_KEY, Request, normalize_request
from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores, utcnow
from moto.dynamodb.responses import DynamoHandler
from werkzeug.http import http_date

from .shapes import Patch, source_has
from .state import is_installed

LOG = logging.getLogger(__name__)


class _InProcessTransport:
    """A ``before-send`` hook: a call to the local endpoint is answered by moto's backends
    in this process (moto's own request dispatch, as ``mock_aws`` uses it), skipping the
    socket, the HTTP server thread and werkzeug. The first call of a service finds its
    route through moto's stubber; later calls go straight to it. Anything moto does not
    recognise falls through to the HTTP endpoint as before, so a call never leaves the
    machine.
    """

    def __init__(self, endpoint: str, aws_host: str) -> None:
        self._endpoint = endpoint.rstrip("/")
        self._aws_base = f"https://{aws_host}"

    def __call__(self, request: Any, **_kwargs: Any) -> Any:
        if not is_installed() or not request.url.startswith(self._endpoint):
            return None
        aws_request = AWSPreparedRequest(
            method=request.method,
            url=self._aws_base + request.url[len(self._endpoint) :],
            headers=request.headers,
            body=request.body,
            stream_output=request.stream_output,
        )
        response = _dispatch(aws_request)
        if response is None:
            return None
        status, headers, body = response
        return AWSResponse(request.url, status, headers, MockRawResponse(body))


# (scheme://host/path of a request) -> moto's handler for it, learnt on first use.
_ROUTES: dict[str, Any] = {}


def _dispatch(request: Any) -> Any:
    """moto's ``BotocoreStubber.process_request``, minus its scan of every service's URL
    patterns on every call once a path's handler is known."""
    parts = urlsplit(request.url)
    clean_url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    handler = _ROUTES.get(clean_url)
    if handler is None:
        handler = _find_route(clean_url)
        if handler is None:
            return _STUBBER.process_request(request)  # moto's own answer, or None
        if len(_ROUTES) < 1024:
            _ROUTES[clean_url] = handler
    normalized = normalize_request(request)
    try:
        return handler(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as e:
        return e.code, e.get_headers(), e.get_body()


def _find_route(clean_url: str) -> Any:
    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        for url, handler in backend.urls.items():
            if re.compile(url).match(clean_url):
                return handler
    return None


class _InProcessCall:
    """A ``before-call`` hook: answers a call to the local endpoint from moto's handler in
    this process as soon as botocore has validated and serialized it, skipping the rest
    of botocore's HTTP pipeline (request preparation, the ``before-send`` round, retries)
    and werkzeug's request builder. The request moto sees is the one the wire would carry
    (method, path, query, headers, body); the response goes through botocore's parser for
    the operation as always, modeled error fields included.

    It declines (returns None) what it cannot carry whole, a streaming body or a path no
    handler is known for, and those calls take the ``before-send`` transport instead.
    """

    def __init__(self, client: Any, host: str) -> None:
        self._endpoint = client.meta.endpoint_url.rstrip("/")
        self._host = host
        self._botocore_endpoint = client._endpoint
        self._protocol = client.meta.service_model.resolved_protocol

    def __call__(self, model: Any, params: dict[str, Any], **_kwargs: Any) -> Any:
        url: str = params.get("url") or ""
        if not is_installed() or not url.startswith(self._endpoint):
            return None
        raw = params.get("body")
        if raw is None:
            body = b""
        elif isinstance(raw, str):
            body = raw.encode("utf-8")
        elif isinstance(raw, bytes | bytearray):
            body = bytes(raw)
        else:
            return None  # a stream: the before-send transport reads it
        path, _, query = (url[len(self._endpoint) :] or "/").partition("?")
        clean_url = f"https://{self._host}{path}"
        handler = _ROUTES.get(clean_url)
        if handler is None:
            handler = _find_route(clean_url)
            if handler is None:
                return None
            if len(_ROUTES) < 1024:
                _ROUTES[clean_url] = handler
        request = _wire_request(params["method"], self._host, path, query, params["headers"], body)
        try:
            status, headers, payload = handler(request, request.raw_url, request.headers)
        except HTTPException as e:
            status, headers, payload = e.code or 500, e.get_headers(), e.get_body()
        except Exception as e:  # a moto bug: answered as a service fault
            if self._protocol not in ("json", "rest-json"):
                raise
            status, headers, payload = internal_failure(model.name, e)
        return _read(self._botocore_endpoint, self._protocol, url, model, status, headers, payload)


def _read(
    botocore_endpoint: Any,
    protocol: str,
    url: str,
    model: Any,
    status: int,
    headers: Any,
    payload: Any,
) -> tuple[Any, dict[str, Any]]:
    """moto's answer as botocore reads an HTTP response: its parser for the operation's
    output, and for an error the modeled error fields too. Returns (response, parsed)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    http = AWSResponse(url, status, headers, MockRawResponse(payload))
    response_dict = convert_to_response_dict(http, model)
    parser = botocore_endpoint._response_parser_factory.create_parser(protocol)
    parsed = parser.parse(response_dict, model.output_shape)
    if http.status_code >= 300:
        botocore_endpoint._add_modeled_error_fields(response_dict, parsed, model, parser)
    return http, parsed


# The item operations the DynamoDB lane answers: none has a timestamp in its input.
DYNAMODB_LANE_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
    }
)


_LANE_METHODS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "Query": "query",
    "Scan": "scan",
    "BatchGetItem": "batch_get_item",
    "BatchWriteItem": "batch_write_item",
}


def _dynamodb_lane_takes(operation: str, body: bytes) -> bool:
    """Whether the lane may answer: an item operation whose request holds no binary
    attribute value (``"B"``/``"BS"``, which moto's parser base64-decodes; an attribute
    *named* B also declines, which is only slower), with moto's IAM checks off."""
    if operation not in DYNAMODB_LANE_OPERATIONS or b'"B"' in body or b'"BS"' in body:
        return False

    return math.isinf(moto_settings.INITIAL_NO_AUTH_ACTION_COUNT)


def _dynamodb_lane(operation: str, body: bytes, region: str) -> tuple[int, dict[str, Any], Any]:
    """A DynamoDB item operation through moto's ``DynamoHandler``, as moto's dispatch runs
    it, without the request around it: the handler's parameters are the request body as
    JSON (for these operations and bodies, exactly what moto's request parser returns: a
    test holds the two equal), and ``call_action``'s steps follow (the action, errors as
    moto serializes them, the response through moto's serializer, the request id).
    """
    handler = DynamoHandler()
    handler.headers = {
        "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        "Content-Type": "application/x-amz-json-1.0",
    }
    handler.querystring = {}
    handler.uri_match = {}
    handler.method = "POST"
    handler.region = region
    handler.current_account = handler.get_current_account()
    handler.response_headers = {"server": "amazon.com", "date": http_date(utcnow())}
    handler.params = json.loads(body) if body else {}
    handler.body = handler.params
    try:
        method = _LANE_METHODS.get(operation) or camelcase_to_underscores(operation)
        with DYNAMODB_LOCK:
            response: Any = getattr(handler, method)()
    except ServiceException as e:
        status, headers, payload = handler.serialized(ActionResult(e))
        headers["status"] = status
        response = payload, headers
    except HTTPException as e:
        error_headers: dict[str, Any] = dict(e.get_headers() or [])
        error_headers["status"] = e.code
        response = e.description, error_headers
    except Exception as e:  # a moto bug: answered as a service fault, not raised in the caller
        return internal_failure(operation, e)
    if isinstance(response, ActionResult):
        status, headers, payload = handler.serialized(response)
    else:
        status, headers, payload = handler._transform_response(handler.response_headers, response)
    headers, payload = handler._enrich_response(headers, payload)
    return status, headers, payload


DYNAMODB_LOCK = threading.RLock()
"""One DynamoDB call at a time against moto's backend, from the lane and from the server.
moto's tables are plain dicts: a query over an index iterates every item, and a put from
another thread in the meantime fails it with ``RuntimeError: dictionary changed size
during iteration`` (seen as an ``InternalFailure`` on Query under the benchmark's load).
DynamoDB itself is linearizable per item; so is a lock around the whole backend."""


def _serialized_call_action(original: Any) -> Any:
    def call_action(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return original(self)

    return call_action


def internal_failure(operation: str, error: Exception) -> tuple[int, dict[str, Any], bytes]:
    """What an in-process call answers when moto itself fails (an exception that is not
    an AWS error): HTTP 500 ``InternalFailure``, as AWS answers a fault and as moto's
    server answers it (with a page of HTML there), instead of the exception surfacing in
    the caller's code. Only the exception's type is logged: its text may hold data."""
    LOG.warning("moto failed on %s: %s", operation, type(error).__name__)
    body = {
        "__type": "InternalFailure",
        "message": f"The local cloud failed on {operation} ({type(error).__name__})",
    }
    return 500, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(body).encode()


def _wire_request(method: str, host: str, path: str, query: str, headers: Any, body: bytes) -> Any:
    """moto's request type over the WSGI environ werkzeug's ``EnvironBuilder`` would build
    for this request (what ``Request.from_primitives`` does, at a fraction of the cost)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(path).encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "REQUEST_URI": path,
        "RAW_URI": path,
        "SERVER_NAME": host,
        "SERVER_PORT": "443",
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        PRESERVED_HEADER_NAMES_ENVIRON_KEY: {},
    }
    for name, value in headers.items():
        if name.lower() in ("transfer-encoding", "content-length"):
            continue
        key = name.upper().replace("-", "_")
        text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = text
    return Request(environ)


def _make_stubber() -> Any:
    return BotocoreStubber()  # its process_request ignores ``enabled``; we call it directly


_STUBBER: Any = None


def attach_in_process(client: Any) -> Any:
    """Makes ``client`` (a boto3 client aimed at the local endpoint) answer in-process
    while the patches are installed. Returns the client. A client aimed elsewhere is left as is.
    """
    global _STUBBER
    endpoint = getattr(client.meta, "endpoint_url", "") or ""
    if not endpoint.startswith(("http://127.0.0.1:", "http://localhost:")):
        return client
    if _STUBBER is None:
        _STUBBER = _make_stubber()
    prefix = client.meta.service_model.endpoint_prefix
    host = f"{prefix}.{client.meta.region_name}.amazonaws.com"
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-send.{service}", _InProcessTransport(endpoint, host))
    client.meta.events.register_first(f"before-call.{service}", _InProcessCall(client, host))
    _skip_endpoint_rules(client)
    if client.meta.service_model.service_name == "dynamodb":
        _direct_item_operations(client)
    # No signature: nothing checks it in-process, and SigV4 is a good part of a call's cost.
    # moto then bills the default account, which is the local cloud's.
    client.meta.events.register_first(f"choose-signer.{service}", _unsigned)
    return client


def _direct_item_operations(client: Any) -> None:
    """DynamoDB item operations of an in-process client go from botocore's validation and
    serialization (its own ``serialize_to_request``, as every call) straight to the lane
    (:func:`_dynamodb_lane`), and the answer through botocore's parser, raising botocore's
    exception for an error as ``_make_api_call`` does. What is skipped is only the
    request's trip through botocore's event hooks, none of which acts on these
    operations (idempotency tokens, checksums, the Lambda recursion header), and its
    retries, which nothing in-process needs. Anything else takes botocore's path.
    """
    original = client._make_api_call
    service_model = client.meta.service_model
    botocore_endpoint = client._endpoint
    protocol = service_model.resolved_protocol
    region = client.meta.region_name
    url = client.meta.endpoint_url

    def make_api_call(operation_name: str, api_params: dict[str, Any]) -> Any:
        if not is_installed() or operation_name not in DYNAMODB_LANE_OPERATIONS:
            return original(operation_name, api_params)
        model = service_model.operation_model(operation_name)
        request = client._serializer.serialize_to_request(api_params, model)  # validates
        body = request["body"]
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not _dynamodb_lane_takes(operation_name, body):
            return original(operation_name, api_params)
        status, headers, payload = _dynamodb_lane(operation_name, body, region)
        _, parsed = _read(botocore_endpoint, protocol, url, model, status, headers, payload)
        if status < 300:
            return parsed
        raise client.exceptions.from_code(parsed.get("Error", {}).get("Code"))(
            parsed, operation_name
        )

    client._make_api_call = make_api_call


# Services whose endpoint ruleset, given an endpoint URL, answers that URL whatever the
# operation and its parameters (S3, which may put a bucket in the host, is not one).
_FIXED_ENDPOINT_SERVICES = frozenset(
    {"dynamodb", "stepfunctions", "events", "sqs", "sns", "lambda"}
)


def _skip_endpoint_rules(client: Any) -> None:
    """The client's endpoint is the local one, whatever the operation: its endpoint
    ruleset (evaluated on every call) can only answer that URL, with no extra headers or
    properties, and no signing region matters to an unsigned call. botocore's method is
    kept when its signature is not the one replaced."""
    resolve = client._resolve_endpoint_ruleset
    expected = ["operation_model", "params", "request_context", "ignore_signing_region"]
    if (
        client.meta.service_model.service_name not in _FIXED_ENDPOINT_SERVICES
        or list(inspect.signature(resolve).parameters) != expected
    ):
        return
    url = client.meta.endpoint_url

    def fixed(
        operation_model: Any, params: Any, request_context: Any, ignore_signing_region: bool = False
    ) -> Any:
        return url, {}, {}

    client._resolve_endpoint_ruleset = fixed


def _unsigned(**_kwargs: Any) -> Any:
    return UNSIGNED


def patches() -> list[Patch]:
    """What the DynamoDB lane relies on in moto, as it is: checked, not replaced."""
    return [
        Patch(
            "moto.core.responses:BaseResponse",
            "call_action",
            None,
            source_has(
                "self._authenticate_and_authorize_normal_action(resource)",
                "action = camelcase_to_underscores(self._get_action())",
                "except ServiceException as e:",
                "se_status, se_headers, se_body = self.serialized(ActionResult(e))",
                "except HTTPException as http_error:",
                "status, headers, body = self.serialized(response)",
                "status, headers, body = self._transform_response(headers, response)",
                "headers, body = self._enrich_response(headers, body)",
            ),
        ),
        Patch(
            "moto.dynamodb.responses:DynamoHandler",
            "call_action",
            _serialized_call_action,
            source_has('self.body = getattr(self, "params", {})', "return super().call_action()"),
        ),
        Patch(
            "moto.dynamodb.responses:DynamoHandler",
            "__init__",
            None,
            source_has("self.automated_parameter_parsing = True"),
        ),
        Patch(
            "moto.core.responses:BaseResponse",
            "setup_class",
            None,
            source_has(
                "self.uri_match: dict[str, Any] = {}",
                "self.current_account = self.get_current_account()",
                "self.parse_parameters(request)",
            ),
        ),
    ]
