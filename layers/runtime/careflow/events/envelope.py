"""The event envelope: ``detail = {"metadata": {...}, "data": {...}}``.

``source`` is ``careflow.<system>``; ``detail-type`` is ``<Entity>.<PastTenseVerb>``.
Each detail-type's data model is declared by the workflow package that consumes it (see
``event_schemas`` in its spec); an event whose data does not fit is parked with the
validation error as its reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from careflow.events.reasons import describe

SOURCES = ("ehr", "erp", "payer", "scheduling", "workforce", "workflow")
SOURCE_PATTERN = re.compile(r"^careflow\.(" + "|".join(SOURCES) + r")$")
DETAIL_TYPE_PATTERN = re.compile(r"^[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+$")


class Metadata(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, description="the event's own id")
    idempotency_key: str = Field(
        min_length=1, max_length=256, description="the key a redelivery shares"
    )
    facility_id: str = Field(min_length=1, max_length=64, description="the facility's id")
    occurred_at: datetime = Field(description="when it happened, ISO 8601 with offset")
    schema_version: str = Field(pattern=r"^\d+\.\d+$", description="a version like 1.0")
    correlation_id: str = Field(
        min_length=1, max_length=128, description="the id that ties a conversation together"
    )


class EnvelopeError(ValueError):
    """The event is not a careflow event; ``reason`` says why (no PHI: field names only)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    detail_type: str
    metadata: Metadata
    data: BaseModel


def parse_event(
    event: dict[str, Any], *, schemas: Mapping[str, type[BaseModel]] | None = None
) -> DomainEvent:
    """Parses an EventBridge event (``source``, ``detail-type``, ``detail``) into a DomainEvent.

    ``data`` is validated by the schema of its detail-type: by default, the one a registered
    workflow declares for the events it consumes (:func:`careflow.kit.registry.event_schemas`).
    """
    if not isinstance(event, dict):
        raise EnvelopeError("event is not a JSON object")
    source = event.get("source")
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if not isinstance(source, str) or not SOURCE_PATTERN.match(source):
        raise EnvelopeError("source is not a careflow system: sources are careflow.<system>")
    if not isinstance(detail_type, str) or not DETAIL_TYPE_PATTERN.match(detail_type):
        raise EnvelopeError(
            "detail-type does not have the expected form: detail-types are <Entity>.<PastTenseVerb>"
        )
    if not isinstance(detail, dict):
        raise EnvelopeError(
            "detail is not a JSON object: every careflow event's detail is "
            '{"metadata": {...}, "data": {...}}'
        )
    if not detail:
        raise EnvelopeError(
            'detail is empty: every careflow event\'s detail is {"metadata": {...}, "data": {...}}'
        )
    try:
        metadata = Metadata.model_validate(detail.get("metadata"))
    except ValidationError as exc:
        reason = describe(exc, prefix="detail.metadata", subject="the envelope", model=Metadata)
        raise EnvelopeError(reason) from None
    if schemas is None:
        from careflow.kit.registry import event_schemas

        schemas = event_schemas()
    model = schemas.get(detail_type)
    if model is None:
        raise EnvelopeError(
            f"detail-type {detail_type} has no schema: no registered workflow consumes it"
        )
    try:
        data = model.model_validate(detail.get("data"))
    except ValidationError as exc:
        reason = describe(exc, prefix="detail.data", subject=detail_type, model=model)
        raise EnvelopeError(reason) from None
    return DomainEvent(source=source, detail_type=detail_type, metadata=metadata, data=data)


def envelope(
    *,
    event_id: str,
    idempotency_key: str,
    facility_id: str,
    occurred_at: datetime,
    correlation_id: str,
    data: dict[str, Any],
    schema_version: str = "1.0",
) -> dict[str, Any]:
    """Builds a ``detail`` for publishing."""
    return {
        "metadata": {
            "event_id": event_id,
            "idempotency_key": idempotency_key,
            "facility_id": facility_id,
            "occurred_at": occurred_at.isoformat(),
            "schema_version": schema_version,
            "correlation_id": correlation_id,
        },
        "data": data,
    }
