"""The effective policy an instance runs with: enterprise policy + facility overlay, merged.

Overlay rules (docs/policies.md):

- a value override replaces the enterprise value of that name; it must exist in the
  enterprise policy and keep its type (an integer may stand where a number is expected);
- a table override's rows replace, in place, the enterprise rows with the same id; its
  other rows go before all enterprise rows, in the overlay's order (so with the ``first``
  hit policy they win); ``remove_rows`` drops enterprise rows; ``default`` replaces the
  default; inputs, outputs and hit policy stay the enterprise's;
- an overlay cannot add values or tables the enterprise policy does not have.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from careflow.policies.errors import InvalidPolicy, PolicyError, Problem
from careflow.policies.model import (
    DecisionTable,
    EnterprisePolicy,
    FacilityOverlay,
    conforms,
    content_hash,
    outputs_problems,
    row_problems,
    value_problems,
    value_type,
)
from careflow.policies.versions import SnapshotVersion


class Decision(BaseModel):
    """One evaluated decision, with what an auditor needs to replay it."""

    model_config = ConfigDict(frozen=True)

    outputs: dict[str, Any]
    row_id: str  # "default" when no row matched and the table's default applied
    table: str
    inputs: dict[str, Any]
    policy_version: str

    def output(self, name: str) -> Any:
        try:
            return self.outputs[name]
        except KeyError:
            raise PolicyError(f"table {self.table} has no output {name!r}") from None

    def audit(self) -> dict[str, Any]:
        """For an audit entry's details: which table, row and policy version decided."""
        return {
            "policy_version": self.policy_version,
            "table": self.table,
            "row_id": self.row_id,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }


class BoundTable:
    """A decision table of one snapshot: its decisions carry the snapshot's version."""

    def __init__(self, name: str, table: DecisionTable, policy_version: str) -> None:
        self.name = name
        self.definition = table
        self.policy_version = policy_version

    def decide(self, inputs: Mapping[str, Any]) -> Decision:
        try:
            row_id, outputs = self.definition.decide(inputs)
        except PolicyError as exc:
            raise type(exc)(f"{self.policy_version} table {self.name}: {exc}") from None
        return Decision(
            outputs=outputs,
            row_id=row_id,
            table=self.name,
            inputs=dict(inputs),
            policy_version=self.policy_version,
        )


class PolicySnapshot(BaseModel):
    """Small, deterministic JSON: carried in Step Functions state and recorded in audits."""

    model_config = ConfigDict(frozen=True)

    name: str
    facility_id: str | None
    version: str
    hash: str
    values: dict[str, Any]
    tables: dict[str, DecisionTable]

    def value(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise PolicyError(f"{self.version} has no value {name!r}") from None

    def table(self, name: str) -> BoundTable:
        try:
            return BoundTable(name, self.tables[name], self.version)
        except KeyError:
            raise PolicyError(f"{self.version} has no table {name!r}") from None

    def ref(self) -> dict[str, Any]:
        """What an instance records to pin the snapshot: enough for :func:`load`."""
        return {
            "name": self.name,
            "facility_id": self.facility_id,
            "version": self.version,
            "hash": self.hash,
        }

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=False)


def _overlay_problems(base: EnterprisePolicy, overlay: FacilityOverlay) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, override in overlay.values.items():
        where = f"values.{name}"
        if name not in base.values:
            found.append((where, f"the enterprise policy {base.name} has no value {name!r}"))
            continue
        original = base.values[name]
        expected = value_type(original.value) or "string"
        if not conforms(override.value, expected):
            found.append(
                (
                    f"{where}.value",
                    f"must keep the enterprise type {expected}: got {override.value!r}",
                )
            )
        found.extend(value_problems(name, override.value, original.unit, f"{where}.value"))
    for name, change in overlay.tables.items():
        where = f"tables.{name}"
        table = base.tables.get(name)
        if table is None:
            found.append((where, f"the enterprise policy {base.name} has no table {name!r}"))
            continue
        ids = {r.id for r in table.rows}
        for i, row in enumerate(change.rows):
            found.extend(row_problems(row, table.inputs, table.outputs, f"{where}.rows[{i}]"))
        for row_id in change.remove_rows:
            if row_id not in ids:
                found.append(
                    (f"{where}.remove_rows", f"the enterprise table has no row {row_id!r}")
                )
        if change.default is not None:
            found.extend(outputs_problems(change.default, table.outputs, f"{where}.default"))
    return found


def merge(
    base: EnterprisePolicy, overlay: FacilityOverlay | None, *, source: str | None = None
) -> tuple[dict[str, Any], dict[str, DecisionTable]]:
    """The effective values and tables; raises :class:`InvalidPolicy` naming overlay fields."""
    values = {name: v.value for name, v in base.values.items()}
    tables = dict(base.tables)
    if overlay is None:
        return values, tables
    if overlay.name != base.name:
        raise PolicyError(f"overlay of {overlay.name} cannot apply to {base.name}")
    problems = _overlay_problems(base, overlay)
    if problems:
        where = source or f"{overlay.name}+{overlay.facility_id}@{overlay.version}"
        raise InvalidPolicy([Problem(where, f, r) for f, r in problems])
    for name, override in overlay.values.items():
        values[name] = override.value
    for name, change in overlay.tables.items():
        table = tables[name]
        replacing = {r.id: r for r in change.rows if r.id in {b.id for b in table.rows}}
        kept = [replacing.get(r.id, r) for r in table.rows if r.id not in set(change.remove_rows)]
        added = [r for r in change.rows if r.id not in replacing]
        update: dict[str, Any] = {"rows": (*added, *kept)}
        if change.default is not None:
            update["default"] = change.default
        tables[name] = table.model_copy(update=update)
    return values, tables


def build_snapshot(
    base: EnterprisePolicy,
    overlay: FacilityOverlay | None,
    facility_id: str | None,
    *,
    source: str | None = None,
) -> PolicySnapshot:
    if overlay is not None and overlay.facility_id != facility_id:
        raise PolicyError(
            f"overlay for {overlay.facility_id} cannot apply to facility {facility_id}"
        )
    values, tables = merge(base, overlay, source=source)
    version = SnapshotVersion(
        base.name,
        base.version,
        overlay.facility_id if overlay else None,
        overlay.version if overlay else None,
    )
    content = {
        "name": base.name,
        "values": values,
        "tables": {k: t.model_dump(mode="json") for k, t in tables.items()},
    }
    return PolicySnapshot(
        name=base.name,
        facility_id=facility_id,
        version=str(version),
        hash=content_hash(content),
        values=values,
        tables=tables,
    )
