"""The data of the events supply replenishment consumes besides the scheduling feed (whose
models are surgical case readiness's, shared with every workflow that hears them) and the
ones it publishes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "careflow.erp"
REVIEW_DUE = "ReplenishmentReview.Due"

WORKFLOW_SOURCE = "careflow.workflow"
SUPPLY_AT_RISK = "Supply.AtRisk"
VENDOR_REPLENISHMENT = "Supply.VendorReplenishmentRequested"


class ReplenishmentReviewDue(BaseModel):
    """``careflow.erp`` / ``ReplenishmentReview.Due``: the facility's inventory is to be
    reviewed (put on the bus by the facility's daily EventBridge Scheduler schedule, or by
    ``POST /v1/events``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_days: int | None = Field(
        default=None, ge=1, le=30, description="days of booked cases to count; the policy's"
    )


class SupplyAtRisk(BaseModel):
    """``careflow.workflow`` / ``Supply.AtRisk``: a booked case's item is likely short by
    the case's day. Surgical case readiness may consume it (by ``case_id``); identifiers,
    the probability and what replenishment did, never a patient."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    item_id: str
    location_id: str
    case_start: datetime
    stockout_probability: float = Field(ge=0, le=1)
    action: Literal["expedite", "standard", "vendor"]
    requisition_id: str | None = None
    expected_delivery: datetime | None = None
    replenishment_instance_id: str


class VendorReplenishment(BaseModel):
    """``careflow.workflow`` / ``Supply.VendorReplenishmentRequested``: consignment stock
    below its reorder point; the vendor owns and replenishes it (its portal or EDI relay
    takes the event)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supplier_id: str
    location_id: str
    lines: list[dict[str, int | str]]
    urgent_for_cases: list[str] = []
    replenishment_instance_id: str
