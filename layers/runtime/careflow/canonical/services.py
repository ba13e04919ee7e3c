"""What the transport vendor and pharmacy ports exchange: a request for a service by a time,
and the booking that says when it will be ready. Identifiers only."""

from __future__ import annotations

from datetime import datetime

from careflow.canonical.datatypes import Model


class ServiceRequest(Model):
    facility_id: str
    reference: str  # the caller's reference (the encounter): makes the request idempotent
    needed_by: datetime
    kind: str = "standard"  # transport: wheelchair, stretcher, ambulance...; pharmacy: standard


class ServiceBooking(Model):
    booking_id: str
    status: str  # BOOKED | SCHEDULED
    ready_at: datetime  # the pickup time, or when the medications are at the bedside
