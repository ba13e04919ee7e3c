"""The data of the events procurement approval consumes and publishes.

It consumes ``careflow.erp`` / ``Requisition.Submitted``: a requisition as a facility's
materials system raised it, identifiers and codes only (the facility's own item code and
whichever of the manufacturer's catalog number, GTIN and UNSPSC it holds). It publishes
``careflow.workflow`` / ``Requisition.StatusChanged``, which the requesting facility's
system consumes: where its requisition stands, and the purchase order once created.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

SOURCE = "careflow.erp"
SUBMITTED = "Requisition.Submitted"
STATUS_CHANGED = "Requisition.StatusChanged"

_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
_Code = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 ._/-]+$")
]
_Manufacturer = Annotated[
    str, StringConstraints(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9 .&,'-]*$")
]


class RequisitionLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    line_number: int = Field(ge=1, le=999, description="the line's number on the requisition")
    quantity: int = Field(ge=1, le=100_000, description="how many units of measure")
    local_code: _Code | None = Field(
        default=None, description="the item's code in the facility's own item master"
    )
    manufacturer: _Manufacturer | None = Field(
        default=None, description="the manufacturer, as the facility's system names it"
    )
    catalog_number: _Code | None = Field(
        default=None, description="the manufacturer's catalog (reference) number"
    )
    gtin: Annotated[str, StringConstraints(pattern=r"^\d{8}$|^\d{12,14}$")] | None = Field(
        default=None, description="the GS1 GTIN (8, 12, 13 or 14 digits)"
    )
    unspsc: Annotated[str, StringConstraints(pattern=r"^\d{8}$")] | None = Field(
        default=None, description="the UNSPSC commodity code (8 digits)"
    )


class RequisitionSubmitted(BaseModel):
    """``careflow.erp`` / ``Requisition.Submitted``: a facility's requisition to approve."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requisition_id: _Id = Field(description="the requisition's number in the facility's system")
    cost_center_id: _Id = Field(description="the cost center charged")
    requested_by: _Id | None = Field(default=None, description="the requester's employee id")
    needed_by: datetime | None = Field(
        default=None, description="when the items are needed, with its UTC offset"
    )
    lines: tuple[RequisitionLineIn, ...] = Field(
        min_length=1, max_length=50, description="the requisition's lines (1 to 50)"
    )

    @field_validator("needed_by")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError("naive_datetime", "a time without its UTC offset")
        return value

    @field_validator("lines")
    @classmethod
    def _numbered_once(cls, lines: tuple[RequisitionLineIn, ...]) -> tuple[RequisitionLineIn, ...]:
        numbers = [line.line_number for line in lines]
        if len(set(numbers)) != len(numbers):
            raise PydanticCustomError("duplicate_line", "a line number used twice")
        return lines


class RequisitionStatusChanged(BaseModel):
    """``careflow.workflow`` / ``Requisition.StatusChanged``: how the requisition ended
    (PO_CREATED, REJECTED, RETURNED_FOR_CHANGES, BUDGET_EXCEPTION, NOT_NORMALIZED,
    APPROVAL_EXPIRED, PO_FAILED), with the purchase order once created."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requisition_id: str
    instance_id: str
    status: str
    amount: str  # decimal string, USD
    approved_levels: list[str]
    po_id: str | None = None
    po_status: str | None = None
    reasons: list[str]
