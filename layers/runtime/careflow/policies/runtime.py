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


def runtime_store() -> PolicyReader:
    if not os.environ.get("TABLE_NAME"):
        return packaged()
    from careflow import wiring
    from careflow.policies.store_dynamodb import DynamoPolicyStore
    from careflow.settings import settings

    table = DynamoPolicyStore(wiring.client("dynamodb"), settings().table_name)
    return LayeredPolicyStore(table, packaged())
