"""Versioned facility policies: decision tables and typed values in files, an enterprise
default per policy with facility overlays, resolved once per instance and pinned.

The API a workflow step calls::

    snapshot = resolve("prior-authorization", "fac-south")          # at instance start
    state["policy"] = snapshot.ref()                                  # or the whole snapshot
    ...
    snapshot = load("prior-authorization", "fac-south", state["policy"]["version"])
    clock = snapshot.table("pend_clock").decide({"priority": "expedited"})
    clock.outputs["decision_clock_seconds"], clock.row_id, clock.policy_version
    snapshot.value("additional_documentation_task_seconds")

See docs/policies.md.
"""

from careflow.policies.errors import (
    BadDecisionInput,
    InvalidPolicy,
    NoMatchingRow,
    PolicyError,
    PolicyNotFound,
    Problem,
    StaleVersion,
    VersionConflict,
)
from careflow.policies.model import (
    DecisionTable,
    Document,
    EnterprisePolicy,
    FacilityOverlay,
    parse_document,
)
from careflow.policies.resolve import check_compatible, load, publish, resolve, seed
from careflow.policies.snapshot import BoundTable, Decision, PolicySnapshot
from careflow.policies.store import (
    FilePolicyStore,
    LayeredPolicyStore,
    MemoryPolicyStore,
    PolicyReader,
    PolicyStore,
    default_policy_dir,
    read_policy_file,
)
from careflow.policies.versions import SnapshotVersion

__all__ = [
    "BadDecisionInput",
    "BoundTable",
    "Decision",
    "DecisionTable",
    "Document",
    "EnterprisePolicy",
    "FacilityOverlay",
    "FilePolicyStore",
    "InvalidPolicy",
    "LayeredPolicyStore",
    "MemoryPolicyStore",
    "NoMatchingRow",
    "PolicyError",
    "PolicyNotFound",
    "PolicyReader",
    "PolicySnapshot",
    "PolicyStore",
    "Problem",
    "SnapshotVersion",
    "StaleVersion",
    "VersionConflict",
    "check_compatible",
    "default_policy_dir",
    "load",
    "parse_document",
    "publish",
    "read_policy_file",
    "resolve",
    "seed",
]
