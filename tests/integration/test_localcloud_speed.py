"""The local cloud's speed patches keep behaviour: in-process AWS calls, parsed-once ASL,
programs without a thread of their own, reused worker threads."""

from __future__ import annotations

import json
import random
import sys
import threading

import boto3

from careflow.localcloud import moto as patched_moto
from careflow.localcloud.cloud import free_port
from careflow.localcloud.moto import state


def test_an_attached_client_is_answered_in_process_not_over_http(cloud):
    closed_port = free_port()  # nothing listens here: only the in-process path can answer
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    patched_moto.attach_in_process(client)
    tables = client.list_tables()["TableNames"]
    assert "careflow-state" in tables  # the local cloud's own table, from the same backends


def _definition(with_map: bool) -> str:
    states = {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}}
    if with_map:
        states = {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "End": True,
                "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
            }
        }
    return json.dumps({"StartAt": next(iter(states)), "States": states})


def test_a_definition_is_parsed_once_and_its_program_shared_unless_it_has_a_map(cloud):
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    plain, mapped = _definition(False), _definition(True)
    first, tree = AmazonStateLanguageParser.parse(plain)
    second, same_tree = AmazonStateLanguageParser.parse(plain)
    assert second is first and same_tree is tree
    m1, mtree = AmazonStateLanguageParser.parse(mapped)
    m2, mtree2 = AmazonStateLanguageParser.parse(mapped)
    assert mtree2 is mtree  # the parse tree is kept ...
    assert m2 is not m1  # ... but a Map's components are built per execution


def test_many_concurrent_executions_of_one_shared_program_keep_their_own_state(cloud):
    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {"Type": "Pass", "Parameters": {"n.$": "$.n"}, "Next": "Fan"},
            "Fan": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {"A": {"Type": "Pass", "InputPath": "$.n", "End": True}},
                    },
                    {
                        "StartAt": "B",
                        "States": {"B": {"Type": "Pass", "InputPath": "$.n", "End": True}},
                    },
                ],
            },
        },
    }
    arn = sfn.create_state_machine(
        name="shared-program",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    execs = [
        sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": i}))["executionArn"]
        for i in range(20)
    ]
    outputs = [cloud.wait_for_execution(e, 20) for e in execs]
    assert [json.loads(o["output"]) for o in outputs] == [[i, i] for i in range(20)]


def test_finished_interpreter_threads_are_released(cloud, monkeypatch):
    from moto.stepfunctions.parser.utils import TMP_THREADS

    # The session cloud's payer ticker releases finished threads every ten seconds: held
    # off here, so that what this test counts is what it started.
    release = patched_moto.release_finished_threads
    monkeypatch.setattr(patched_moto, "release_finished_threads", lambda: 0)

    sfn = cloud.client("stepfunctions")
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "TimeoutSeconds": 3600,  # a state with a timeout keeps moto's thread
                "Next": "Done",
                "Resource": cloud.function_arns["EvaluateReadiness"],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Done"}],
            },
            "Done": {"Type": "Succeed"},
        },
    }
    arn = sfn.create_state_machine(
        name="threads",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/x",
    )["stateMachineArn"]
    for _ in range(5):
        e = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        cloud.wait_for_execution(e, 20)
    assert len(TMP_THREADS) >= 5
    assert release() < 5
    assert all(t.is_alive() for t in TMP_THREADS)


def _parallel_of_lambdas(cloud, name: str, branches: int) -> str:
    task = cloud.function_arns["EvaluateReadiness"]
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": f"B{i}",
                        "States": {
                            f"B{i}": {
                                "Type": "Task",
                                "Resource": task,
                                "Parameters": {"branch": i},
                                "End": True,
                            }
                        },
                    }
                    for i in range(branches)
                ],
            }
        },
    }
    arn: str = cloud.client("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    return arn


def test_parallel_branches_on_reused_threads_still_run_at_the_same_time(cloud):
    """Each branch meets the others at a barrier: were the branches run one after the
    other (or queued behind busy threads), the barrier would time out and the tasks fail."""
    branches = 4
    barrier = threading.Barrier(branches, timeout=10)
    threads: set[int] = set()
    previous = state.current().invoke

    def invoke(function: str, payload: bytes) -> tuple[bytes, str | None]:
        threads.add(threading.get_ident())
        barrier.wait()
        return json.dumps({"branch": json.loads(payload)["branch"]}).encode(), None

    sfn = cloud.client("stepfunctions")
    arn = _parallel_of_lambdas(cloud, "barrier", branches)
    state.current().invoke = invoke
    try:
        for _ in range(3):  # later runs reuse the first run's threads
            barrier.reset()
            e = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
            out = cloud.wait_for_execution(e, 30)
            assert out["status"] == "SUCCEEDED", out
            assert json.loads(out["output"]) == [{"branch": i} for i in range(branches)]
    finally:
        state.current().invoke = previous
    assert len(threads) >= branches


def test_a_program_without_a_timeout_runs_in_its_callers_thread(cloud):
    """``Program.eval`` starts no thread unless the state machine has ``TimeoutSeconds``;
    executions still run apart from the caller (on a worker thread) and record their
    history as before."""
    from moto.stepfunctions.parser.asl.component.program.program import Program

    sfn = cloud.client("stepfunctions")
    arn = _parallel_of_lambdas(cloud, "program-threads", 2)
    seen: list[tuple[str, str]] = []
    previous = state.current().invoke

    def invoke(function: str, payload: bytes) -> tuple[bytes, str | None]:
        seen.append((threading.current_thread().name, function))
        return b"{}", None

    state.current().invoke = invoke
    try:
        e = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
        out = cloud.wait_for_execution(e, 30)
    finally:
        state.current().invoke = previous
    assert out["status"] == "SUCCEEDED"
    assert len(seen) == 2
    assert all(name.startswith("careflow-sfn-worker-") for name, _ in seen)
    history = sfn.get_execution_history(executionArn=e)["events"]
    types = [h["type"] for h in history]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("TaskStateEntered") == 2 and "ParallelStateSucceeded" in types
    assert Program.eval.__name__ == "eval_program"  # the patch is in place


def _items_table(cloud) -> tuple[object, str]:
    ddb = cloud.client("dynamodb")
    name = f"speed-{free_port()}"
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("PK", "SK", "G")
        ],
        KeySchema=[
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByG",
                "KeySchema": [{"AttributeName": "G", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return ddb, name


def test_a_query_on_the_table_key_reads_its_partition_with_dynamodbs_answers(cloud):
    ddb, name = _items_table(cloud)
    stored = {
        (f"P{p}", f"S{s:02d}"): s for p in range(5) for s in range(12)
    }  # five partitions of twelve
    for (pk, sk), n in stored.items():
        ddb.put_item(
            TableName=name,
            Item={"PK": {"S": pk}, "SK": {"S": sk}, "G": {"S": "all"}, "n": {"N": str(n)}},
        )

    def query(**kw) -> list[tuple[str, str]]:
        out, start = [], None
        while True:
            page = ddb.query(
                TableName=name, **kw, **({"ExclusiveStartKey": start} if start else {})
            )
            out += [(i["PK"]["S"], i["SK"]["S"]) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    p2 = sorted(k for k in stored if k[0] == "P2")
    by_pk = {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {"S": "P2"}}}
    assert query(**by_pk) == p2
    assert query(**by_pk, ScanIndexForward=False) == p2[::-1]
    assert query(**by_pk, Limit=5) == p2  # three pages, in order
    assert query(
        KeyConditionExpression="PK = :p AND SK BETWEEN :a AND :b",
        ExpressionAttributeValues={":p": {"S": "P2"}, ":a": {"S": "S03"}, ":b": {"S": "S06"}},
    ) == [("P2", f"S{s:02d}") for s in range(3, 7)]
    assert query(
        KeyConditionExpression="PK = :p",
        FilterExpression="n > :n",
        ExpressionAttributeValues={":p": {"S": "P2"}, ":n": {"N": "9"}},
    ) == [("P2", "S10"), ("P2", "S11")]
    assert (
        query(KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": {"S": "P9"}}) == []
    )
    # an index query still sees every partition
    assert sorted(
        query(
            IndexName="ByG",
            KeyConditionExpression="G = :g",
            ExpressionAttributeValues={":g": {"S": "all"}},
        )
    ) == sorted(stored)


def test_queries_and_writes_from_many_threads_never_fail_the_backend(cloud):
    """moto's tables are dicts: without the local cloud's lock an index query (which
    iterates every item) fails when another thread adds a partition meanwhile."""
    ddb, name = _items_table(cloud)
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(60):
                ddb.put_item(
                    TableName=name,
                    Item={"PK": {"S": f"W{w}-{i}"}, "SK": {"S": "x"}, "G": {"S": "all"}},
                )
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(30):
                ddb.query(
                    TableName=name,
                    IndexName="ByG",
                    KeyConditionExpression="G = :g",
                    ExpressionAttributeValues={":g": {"S": "all"}},
                )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a race shows in one run
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(round(interval, 6))  # a get and a set lose 1 µs
    assert errors == []
    assert ddb.scan(TableName=name, Select="COUNT")["Count"] == 180


def test_an_index_query_answers_as_moto_does_sorting_only_its_candidates(cloud, monkeypatch):
    """Same items, same order, same pages as moto's own all_items (the patch undone)."""
    from moto.dynamodb.models.table import Table

    ddb, name = _items_table(cloud)
    rng = random.Random(11)
    for n in range(90):  # several G values, ties on the index's hash key, some without G
        item = {"PK": {"S": f"P{rng.randrange(12)}"}, "SK": {"S": f"S{n:03d}"}}
        if n % 7:
            item["G"] = {"S": rng.choice(["a", "b", "c"])}
        ddb.put_item(TableName=name, Item=item)

    def pages(**kw) -> list[list[tuple[str, str]]]:
        out, start = [], None
        while True:
            page = ddb.query(
                TableName=name, **kw, **({"ExclusiveStartKey": start} if start else {})
            )
            out.append([(i["PK"]["S"], i["SK"]["S"]) for i in page["Items"]])
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    asks = [
        {"KeyConditionExpression": "G = :g", "ExpressionAttributeValues": {":g": {"S": g}}} | extra
        for g in ("a", "b", "zz")
        for extra in ({}, {"Limit": 4}, {"ScanIndexForward": False, "Limit": 7})
    ]
    asks = [{"IndexName": "ByG", **a} for a in asks]
    patched = [pages(**a) for a in asks]
    assert Table.all_items.__name__ == "all_items" and hasattr(Table.all_items, "__wrapped__")
    monkeypatch.setattr(Table, "all_items", Table.all_items.__wrapped__)  # moto's own
    assert [pages(**a) for a in asks] == patched
    assert sum(len(p) for p in patched[0]) > 10
