"""Supply chain facts the ERP and sterile processing ports exchange: stock positions,
requisitions, instrument tray status."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from careflow.canonical.datatypes import Model


class StockPosition(Model):
    facility_id: str
    item_id: str
    on_hand: int
    reserved: int
    par_level: int
    supplier_id: str
    lead_time_days: float
    consignment: bool = False

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class RequisitionLine(Model):
    item_id: str
    quantity: int = Field(gt=0)


class RequisitionRequest(Model):
    facility_id: str
    supplier_id: str
    lines: tuple[RequisitionLine, ...]
    needed_by: datetime
    reason: str
    reference: str  # the case that needs it: makes the request idempotent at the ERP


class Requisition(Model):
    requisition_id: str
    status: str
    expected_delivery: datetime


class TrayStatus(Model):
    tray_id: str
    status: str  # ready | in_process | missing
    ready_at: datetime | None = None
