"""The store a running workflow reads: the state table over the packaged files.

With ``TABLE_NAME`` set (AWS, the local cloud's handlers) it is the table's published
versions with the packaged files behind them; without it (unit tests, tools) the files.
"""

from __future__ import annotations

import os

from careflow.policies.store import FilePolicyStore, LayeredPolicyStore, PolicyReader

_PACKAGED: FilePolicyStore | None = None


def packaged() -> FilePolicyStore:
    """One file store per process, so parsed files are cached between calls."""
    global _PACKAGED
    if _PACKAGED is None:
        _PACKAGED = FilePolicyStore()
    return _PACKAGED


def layered(dynamodb_client: object, table_name: str) -> PolicyReader:
    """The state table's published versions over the packaged files."""
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    return LayeredPolicyStore(DynamoPolicyStore(dynamodb_client, table_name), packaged())


def runtime_store() -> PolicyReader:
    """Without a store given: the table when ``TABLE_NAME`` is set, else the files. (The
    composition root, ``careflow.wiring.policies``, builds the table's with its clients.)"""
    if not os.environ.get("TABLE_NAME"):
        return packaged()
    from careflow.policies.store_dynamodb import DynamoPolicyStore

    return LayeredPolicyStore(DynamoPolicyStore.from_settings(), packaged())
