"""Versions, hashes, resolution in time, and the property running instances rely on:
publishing a new version never changes what a pinned version loads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from careflow.policies import (
    LayeredPolicyStore,
    MemoryPolicyStore,
    PolicyError,
    PolicyNotFound,
    PolicySnapshot,
    SnapshotVersion,
    StaleVersion,
    VersionConflict,
    load,
    parse_document,
    publish,
    resolve,
    seed,
)
from careflow.policies.store import FilePolicyStore
from careflow.policies.versions import sort_key

FILES = FilePolicyStore()


def enterprise(version: str, task: int = 14400, **kw: Any):
    return parse_document(
        {
            "kind": "enterprise",
            "name": "surgical-readiness",
            "version": version,
            "values": {"coordinator_task_seconds": {"value": task, "unit": "seconds"}},
            **kw,
        },
        "test",
    )


def overlay(version: str, task: int):
    return parse_document(
        {
            "kind": "facility-overlay",
            "name": "surgical-readiness",
            "facility_id": "fac-south",
            "version": version,
            "values": {"coordinator_task_seconds": {"value": task}},
        },
        "test",
    )


def test_version_strings_name_both_versions_and_parse_back():
    v = SnapshotVersion.parse("surgical-readiness@2026.11.1+fac-south@3")
    assert (v.name, v.enterprise, v.facility_id, v.overlay) == (
        "surgical-readiness",
        "2026.11.1",
        "fac-south",
        "3",
    )
    assert str(v) == "surgical-readiness@2026.11.1+fac-south@3"
    assert (
        str(SnapshotVersion.parse("surgical-readiness@2026.11.1")) == "surgical-readiness@2026.11.1"
    )
    for bad in ("surgical-readiness", "x@1+fac", "X@1", "x@1.a", "x@1+fac@v"):
        with pytest.raises(PolicyError):
            SnapshotVersion.parse(bad)


def test_sort_keys_order_like_versions():
    versions = ["1", "1.0.1", "1.2", "1.10", "2", "2026.11.1", "2026.11.1.1", "2026.12"]
    assert sorted(versions, key=sort_key) == versions


def test_snapshots_are_deterministic_small_json_that_round_trips():
    a = resolve("prior-authorization", "fac-south", store=FILES)
    b = resolve("prior-authorization", "fac-south", store=FilePolicyStore())
    assert a.to_json() == b.to_json()
    assert a.hash == b.hash and a.hash.startswith("sha256:") and len(a.hash) == 71
    assert len(a.to_json().encode()) < 8 * 1024  # Step Functions state is capped at 256 KB
    again = PolicySnapshot.model_validate_json(a.to_json())
    assert again == a
    assert json.loads(a.to_json())["version"] == "prior-authorization@2026.11.2+fac-south@2"


def test_the_hash_is_of_content_it_changes_with_a_value_and_not_with_a_description():
    store = MemoryPolicyStore(enterprise("1"))
    first = resolve("surgical-readiness", None, store=store)
    store.publish(enterprise("2", task=7200))
    second = resolve("surgical-readiness", None, store=store)
    assert first.hash != second.hash
    store.publish(enterprise("3", task=7200, description="reworded"))
    assert resolve("surgical-readiness", None, store=store).hash == second.hash


def test_publishing_new_versions_never_changes_what_a_pinned_version_loads():
    store = MemoryPolicyStore(enterprise("2026.11.1"), overlay("3", 7200))
    started = resolve("surgical-readiness", "fac-south", store=store)
    assert started.version == "surgical-readiness@2026.11.1+fac-south@3"
    pinned = started.ref()

    publish(store, enterprise("2026.12.1", task=3 * 3600))
    publish(store, overlay("4", 3600))

    later = load("surgical-readiness", "fac-south", pinned["version"], store=store)
    assert later == started
    assert later.hash == pinned["hash"]
    assert later.value("coordinator_task_seconds") == 7200
    newer = resolve("surgical-readiness", "fac-south", store=store)
    assert newer.version == "surgical-readiness@2026.12.1+fac-south@4"
    assert newer.value("coordinator_task_seconds") == 3600


def test_a_pinned_version_without_an_overlay_stays_without_one():
    store = MemoryPolicyStore(enterprise("1"))
    started = resolve("surgical-readiness", "fac-south", store=store)
    store.publish(overlay("1", 60))
    assert load("surgical-readiness", "fac-south", started.version, store=store) == started


def test_versions_are_immutable_and_only_move_forward():
    store = MemoryPolicyStore(enterprise("2"))
    assert store.publish(enterprise("2")) == "unchanged"
    with pytest.raises(VersionConflict, match="immutable"):
        store.publish(enterprise("2", task=60))
    with pytest.raises(StaleVersion, match="not above the current version 2"):
        store.publish(enterprise("1.9"))


def test_load_refuses_versions_of_other_policies_facilities_or_never_published():
    store = MemoryPolicyStore(enterprise("1"), overlay("3", 7200))
    with pytest.raises(PolicyError, match="belongs to facility fac-south"):
        load("surgical-readiness", "fac-north", "surgical-readiness@1+fac-south@3", store=store)
    with pytest.raises(PolicyError, match="not a version of surgical-readiness"):
        load("surgical-readiness", None, "prior-authorization@1", store=store)
    with pytest.raises(PolicyNotFound, match="overlay fac-south@9"):
        load("surgical-readiness", "fac-south", "surgical-readiness@1+fac-south@9", store=store)


def test_an_overlay_is_refused_at_publish_when_it_does_not_fit_the_current_enterprise_policy():
    store = MemoryPolicyStore(enterprise("1"))
    bad = parse_document(
        {**overlay("1", 60).model_dump(mode="json"), "values": {"nope": {"value": 1}}}, "t"
    )
    with pytest.raises(PolicyError, match="no value 'nope'"):
        publish(store, bad)
    assert store.current("surgical-readiness", "fac-south") is None


def test_resolution_at_a_time_takes_the_newest_version_already_in_effect():
    store = MemoryPolicyStore(
        enterprise("1", task=100),
        enterprise("2", task=200, effective_from="2027-01-01T00:00:00Z"),
    )
    before = resolve("surgical-readiness", None, at=datetime(2026, 12, 31, tzinfo=UTC), store=store)
    after = resolve("surgical-readiness", None, at=datetime(2027, 1, 1, tzinfo=UTC), store=store)
    assert (before.version, after.version) == ("surgical-readiness@1", "surgical-readiness@2")
    with pytest.raises(PolicyNotFound, match="in effect"):
        resolve("prior-authorization", None, at=datetime(2025, 6, 1, tzinfo=UTC), store=FILES)


def test_a_layered_store_publishes_the_packaged_version_it_hands_out_so_it_stays_loadable():
    table = MemoryPolicyStore()
    store = LayeredPolicyStore(table, FILES)
    started = resolve("surgical-readiness", "fac-south", store=store)
    assert table.current("surgical-readiness", "fac-south") is not None
    # the package moves on (a redeploy); the instance still loads what it pinned
    later = LayeredPolicyStore(table, MemoryPolicyStore())
    assert load("surgical-readiness", "fac-south", started.version, store=later) == started


def test_seeding_is_idempotent():
    table = MemoryPolicyStore()
    files = len(list(FILES.files()))  # every enterprise policy and facility overlay
    assert files >= 4
    assert seed(table, FILES) == {"published": files, "unchanged": 0, "older": 0}
    assert seed(table, FILES) == {"published": 0, "unchanged": files, "older": 0}


def test_only_the_dynamodb_adapter_and_the_command_know_boto():
    import ast
    from pathlib import Path

    import careflow.policies

    package = Path(careflow.policies.__file__).parent
    knowing = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] in ("boto3", "botocore") for n in names):
                knowing.add(path.name)
    assert knowing == {"store_dynamodb.py", "cli.py"}
