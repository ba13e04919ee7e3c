"""The local cloud's short paths answer exactly as the long ones do.

The DynamoDB lane (item operations straight to moto's handler), the cached value
picker of moto's serializer, ``$.a.b`` JSONPaths without jsonpath_ng, and history
details written without a copy of the state: each is compared here with the path it
shortens, on the same backends.
"""

from __future__ import annotations

import base64
import copy
import gc
import json
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from careflow.localcloud.cloud import GC_YOUNG_THRESHOLD, SWITCH_INTERVAL_SECONDS, free_port_run
from careflow.localcloud.moto import inprocess, speed, state

ITEM = {
    "PK": {"S": "CASE#1"},
    "SK": {"S": "META"},
    "n": {"N": "3.50"},
    "flag": {"BOOL": True},
    "nothing": {"NULL": True},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "doc": {"M": {"name": {"S": "x"}, "list": {"L": [{"S": "y"}, {"N": "7"}, {"M": {}}]}}},
}

# Item operations as careflow and its users send them: every AttributeValue type but
# binary, expressions, names and values, paging keys, indexes, batches.
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("PutItem", {"TableName": "t", "Item": ITEM}),
    (
        "PutItem",
        {
            "TableName": "t",
            "Item": ITEM,
            "ConditionExpression": "attribute_not_exists(PK) OR #v = :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": {":v": {"N": "1"}},
            "ReturnValues": "ALL_OLD",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ReturnConsumedCapacity": "TOTAL",
        },
    ),
    (
        "GetItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "CASE#1"}, "SK": {"S": "META"}},
            "ConsistentRead": True,
            "ProjectionExpression": "#d.#n, flag",
            "ExpressionAttributeNames": {"#d": "doc", "#n": "name"},
        },
    ),
    (
        "UpdateItem",
        {
            "TableName": "t",
            "Key": {"PK": {"S": "CASE#1"}, "SK": {"S": "META"}},
            "UpdateExpression": "SET #c = if_not_exists(#c, :z) + :one REMOVE nothing",
            "ExpressionAttributeNames": {"#c": "count"},
            "ExpressionAttributeValues": {":z": {"N": "0"}, ":one": {"N": "1"}},
            "ReturnValues": "ALL_NEW",
        },
    ),
    ("DeleteItem", {"TableName": "t", "Key": {"PK": {"S": "CASE#1"}, "SK": {"S": "META"}}}),
    (
        "Query",
        {
            "TableName": "t",
            "IndexName": "GSI1",
            "KeyConditionExpression": "GSI1PK = :p AND begins_with(GSI1SK, :s)",
            "FilterExpression": "flag = :t",
            "ExpressionAttributeValues": {":p": {"S": "x"}, ":s": {"S": "y"}, ":t": {"BOOL": True}},
            "Limit": 25,
            "ScanIndexForward": False,
            "ExclusiveStartKey": {"PK": {"S": "a"}, "SK": {"S": "b"}},
            "Select": "ALL_ATTRIBUTES",
        },
    ),
    ("Scan", {"TableName": "t", "Segment": 0, "TotalSegments": 2, "Limit": 10}),
    (
        "BatchWriteItem",
        {
            "RequestItems": {
                "t": [
                    {"PutRequest": {"Item": ITEM}},
                    {"DeleteRequest": {"Key": {"PK": {"S": "a"}, "SK": {"S": "b"}}}},
                ]
            },
            "ReturnItemCollectionMetrics": "SIZE",
        },
    ),
    (
        "BatchGetItem",
        {"RequestItems": {"t": {"Keys": [{"PK": {"S": "a"}, "SK": {"S": "b"}}]}}},
    ),
]


def _serialize(operation: str, params: dict[str, Any]) -> bytes:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    model = client.meta.service_model.operation_model(operation)
    body = client._serializer.serialize_to_request(params, model)["body"]
    return body if isinstance(body, bytes) else body.encode()


@pytest.mark.parametrize(("operation", "params"), REQUESTS, ids=[op for op, _ in REQUESTS])
def test_the_lane_gives_moto_the_parameters_its_request_parser_would(operation, params):
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.utils import get_service_model
    from moto.dynamodb.responses import DynamoHandler

    body = _serialize(operation, params)
    assert inprocess._dynamodb_lane_takes(operation, body)
    parser = PROTOCOL_PARSERS["json"](
        get_service_model("dynamodb").operation_model(operation),
        map_type=DynamoHandler.PROTOCOL_PARSER_MAP_TYPE,
    )
    parsed = parser.parse(
        {
            "method": "POST",
            "values": {},
            "headers": {},
            "body": body,
            "url_path": "/",
            "url_params": {},
        }
    )
    assert json.loads(body) == parsed


def test_binary_values_and_other_operations_decline_the_lane():
    binary = {"TableName": "t", "Item": {**ITEM, "blob": {"B": b"\x00\x01"}}}
    assert not inprocess._dynamodb_lane_takes("PutItem", _serialize("PutItem", binary))
    binary_set = {"TableName": "t", "Item": {**ITEM, "blobs": {"BS": [b"\x00"]}}}
    assert not inprocess._dynamodb_lane_takes("PutItem", _serialize("PutItem", binary_set))
    assert not inprocess._dynamodb_lane_takes("DescribeTable", b'{"TableName": "t"}')


# --------------------------------------------------------------------------------------
# The lane and moto's HTTP path, side by side on one moto
# --------------------------------------------------------------------------------------


def _create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
    )


def _outcome(call: Any) -> Any:
    try:
        answer = call()
    except ClientError as e:
        error = dict(e.response)
        error.pop("ResponseMetadata", None)
        return ("error", type(e).__name__, e.operation_name, error)
    answer.pop("ResponseMetadata", None)
    return ("ok", answer)


def _script(client: Any, table: str) -> list[Any]:
    key = {"PK": {"S": "CASE#1"}, "SK": {"S": "META"}}
    item = {**ITEM, "version": {"N": "1"}, "blob": {"B": b"\x00\xffbinary"}}
    steps = [
        lambda: client.put_item(TableName=table, Item=item),
        lambda: client.put_item(  # the optimistic lock fails, and says what it found
            TableName=table,
            Item=item,
            ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": {"N": "9"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        lambda: client.get_item(TableName=table, Key=key, ConsistentRead=True),
        lambda: client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET version = version + :one, tags = :t",
            ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"SS": ["z"]}},
            ReturnValues="ALL_NEW",
        ),
        lambda: client.put_item(TableName=table, Item={"PK": {"S": "only-pk"}}),  # no SK
        lambda: client.get_item(TableName="no-such-table", Key=key),
        lambda: client.update_item(
            TableName=table, Key=key, UpdateExpression="SET x = :missing"
        ),  # a value the expression names is not given
        lambda: client.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"PK": {"S": "CASE#1"}, "SK": {"S": f"MS#{i}"}}}}
                    for i in range(5)
                ]
            }
        ),
        lambda: client.query(
            TableName=table,
            KeyConditionExpression="PK = :p AND begins_with(SK, :s)",
            ExpressionAttributeValues={":p": {"S": "CASE#1"}, ":s": {"S": "MS#"}},
            Limit=2,
            ReturnConsumedCapacity="TOTAL",
        ),
        lambda: client.batch_get_item(RequestItems={table: {"Keys": [key]}}),
        lambda: client.scan(TableName=table, Select="COUNT"),
        lambda: client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD"),
    ]
    outcomes = [_outcome(step) for step in steps]
    return json.loads(json.dumps(outcomes, default=repr).replace(table, "<table>"))


def test_the_lane_answers_as_moto_answers_over_http(cloud):
    lane = cloud.client("dynamodb")  # in-process: item operations take the lane
    wire = boto3.client(  # moto's server, through HTTP and its full dispatch
        "dynamodb",
        endpoint_url=cloud.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    a, b = f"lane-{uuid.uuid4().hex[:6]}", f"wire-{uuid.uuid4().hex[:6]}"
    _create(lane, a)
    _create(lane, b)
    by_lane, by_wire = _script(lane, a), _script(wire, b)
    assert by_lane == by_wire
    kinds = [o[0] for o in by_lane]
    assert kinds.count("error") == 4  # the lock, the key, the table, the expression
    assert by_lane[2][1]["Item"]["blob"]["B"] == repr(b"\x00\xffbinary")  # bytes, as bytes


def test_a_moto_failure_is_a_service_fault_not_an_exception_in_the_caller(cloud):
    # moto 5.2.5 raises KeyError on an unresolved #name in an UpdateExpression (AWS says
    # ValidationException; moto's server answers 500).
    with pytest.raises(ClientError) as caught:
        cloud.client("dynamodb").update_item(
            TableName="careflow-state",
            Key={"PK": {"S": "CASE#1"}, "SK": {"S": "META"}},
            UpdateExpression="SET #x = :x",
            ExpressionAttributeValues={":x": {"S": "y"}},
        )
    assert caught.value.response["Error"]["Code"] == "InternalFailure"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "KeyError" in caught.value.response["Error"]["Message"]


def test_a_parameter_error_is_botocores_own(cloud):
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        cloud.client("dynamodb").put_item(TableName="careflow-state", Item={"PK": "not-a-map"})


# --------------------------------------------------------------------------------------
# moto's serializer with the cached picker
# --------------------------------------------------------------------------------------


def test_responses_serialize_alike_with_the_cached_picker(cloud, monkeypatch):
    from moto.core.serialize import (
        AttributePicker,
        ResponseSerializer,
        XFormedAttributePicker,
        get_serializer_class,
    )
    from moto.core.utils import get_service_model
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends["123456789012"]["us-east-1"].get_table("careflow-state")
    service = get_service_model("dynamodb")
    samples = [
        ("DescribeTable", {"Table": table.describe()["TableDescription"]}),
        ("GetItem", {"Item": copy.deepcopy(ITEM)}),
        ("Query", {"Items": [copy.deepcopy(ITEM)] * 3, "Count": 3, "ScannedCount": 3}),
    ]
    serializer_cls = get_serializer_class("dynamodb", "json")

    def serialize_all() -> list[str]:
        return [
            serializer_cls(
                operation_model=service.operation_model(op), value_picker=XFormedAttributePicker()
            ).serialize(result)["body"]
            for op, result in samples
        ]

    with_cache = serialize_all()
    assert state.current() is not None
    originals = {(owner, name): fn for owner, name, fn in state.current().originals}
    for owner, name in (
        (AttributePicker, "__call__"),
        (ResponseSerializer, "_serialize_structure_member"),
    ):
        monkeypatch.setattr(owner, name, originals[(owner, name)])  # moto's own, for a moment
    assert serialize_all() == with_cache
    assert json.loads(with_cache[0])["Table"]["TableName"] == "careflow-state"
    assert json.loads(with_cache[1])["Item"]["doc"]["M"]["list"]["L"][1] == {"N": "7"}


# --------------------------------------------------------------------------------------
# $.a.b paths
# --------------------------------------------------------------------------------------

DATA = {
    "a": {"b": {"c": 1}, "n": None, "s": "text", "l": [1, 2]},
    "top": 0,
}
PATHS = ["$.a", "$.a.b", "$.a.b.c", "$.a.n", "$.top", "$.missing", "$.a.s.x", "$.a.l", "$.a.l.x"]


@pytest.mark.parametrize("path", PATHS)
def test_dotted_paths_find_what_jsonpath_ng_finds(path):
    from jsonpath_ng.ext import parse

    expression = parse(path)
    fields = speed._dotted_fields(expression)
    assert fields is not None
    dotted = speed._DottedPath(expression, fields)
    expected = [(m.value, str(m.path)) for m in expression.find(copy.deepcopy(DATA))]
    assert [(m.value, str(m.path)) for m in dotted.find(copy.deepcopy(DATA))] == expected


@pytest.mark.parametrize("path", [*PATHS, "$.new.deeper.field", "$.a.b.new"])
def test_dotted_paths_update_as_jsonpath_ng_does(path):
    from jsonpath_ng import parse

    expression = parse(path)
    fields = speed._dotted_fields(expression)
    assert fields is not None
    dotted = speed._DottedPath(expression, fields)

    def outcome(update: Any) -> Any:
        try:
            return "ok", update(copy.deepcopy(DATA), {"result": [1]})
        except Exception as e:  # jsonpath_ng's own failure, e.g. a field of a list
            return "raised", type(e)

    assert outcome(dotted.update_or_create) == outcome(expression.update_or_create)


@pytest.mark.parametrize("path", ["$", "$.a[0]", "$.a[*].b", "$..b", "$['a b']", "$.a.*"])
def test_other_paths_stay_with_jsonpath_ng(path):
    from jsonpath_ng.ext import parse

    fields = speed._dotted_fields(parse(path))
    assert fields is None or fields == ("a b",)  # a quoted name is still a plain field


# --------------------------------------------------------------------------------------
# History details, GC settings, ports
# --------------------------------------------------------------------------------------


def test_history_shows_each_states_input_and_output(cloud):
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Add",
        "States": {
            "Add": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.added", "Next": "Pick"},
            "Pick": {"Type": "Pass", "OutputPath": "$.added", "End": True},
        },
    }
    arn = sfn.create_state_machine(
        name=f"history-{uuid.uuid4().hex[:6]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/r",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input='{"case": "c-1"}')["executionArn"]
    for _ in range(200):
        if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
            break
        cloud.clock.sleep(0.01)
    events = sfn.get_execution_history(executionArn=execution)["events"]
    entered = {
        e["stateEnteredEventDetails"]["name"]: json.loads(e["stateEnteredEventDetails"]["input"])
        for e in events
        if "stateEnteredEventDetails" in e
    }
    exited = {
        e["stateExitedEventDetails"]["name"]: json.loads(e["stateExitedEventDetails"]["output"])
        for e in events
        if "stateExitedEventDetails" in e
    }
    assert entered == {"Add": {"case": "c-1"}, "Pick": {"case": "c-1", "added": {"x": 1}}}
    assert exited == {"Add": {"case": "c-1", "added": {"x": 1}}, "Pick": {"x": 1}}


def test_a_running_cloud_has_tuned_the_runtime(cloud):
    assert gc.get_freeze_count() > 100_000  # start-up's objects, out of the collector's sight
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_SECONDS)
    assert set(cloud._handlers) == set(cloud._specs)  # every handler loaded at start


def test_a_stopped_cloud_gives_the_runtime_back():
    # Its own process: a second cloud in this one would reset the session cloud's moto.
    probe = (
        "import gc, json\n"
        "from careflow.localcloud.cloud import LocalCloud, free_port\n"
        "import sys\n"
        "before = [gc.get_threshold(), sys.getswitchinterval()]\n"
        "with LocalCloud(free_port(), payer_ticker=False):\n"
        "    during = [gc.get_threshold(), gc.get_freeze_count()]\n"
        "after = [gc.get_threshold(), sys.getswitchinterval()]\n"
        "print(json.dumps([before, during, after, gc.get_freeze_count()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    before, (during, frozen), after, frozen_after = json.loads(out.stdout.strip().splitlines()[-1])
    assert during[0] == GC_YOUNG_THRESHOLD and frozen > 0
    assert after == before and frozen_after == 0


def test_free_port_run_gives_consecutive_free_ports():
    import socket

    base = free_port_run(3)
    for port in range(base, base + 3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_base64_of_a_binary_value_matches_the_wire_form():
    # The lane declines binary values; botocore puts them on the wire as base64.
    body = _serialize("PutItem", {"TableName": "t", "Item": {"b": {"B": b"\x01"}}})
    assert json.loads(body)["Item"]["b"]["B"] == base64.b64encode(b"\x01").decode()


def test_the_lane_calls_the_method_moto_would():
    from moto.core.utils import camelcase_to_underscores

    assert set(inprocess._LANE_METHODS) == inprocess.DYNAMODB_LANE_OPERATIONS
    for operation, method in inprocess._LANE_METHODS.items():
        assert camelcase_to_underscores(operation) == method


def test_request_ids_look_like_dynamodbs():
    ids = {speed._request_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 52 and i.isalnum() and i.upper() == i for i in ids)
