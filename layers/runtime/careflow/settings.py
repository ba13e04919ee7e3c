"""Environment variables, parsed once into a model."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class Settings(BaseModel):
    table_name: str = Field(alias="TABLE_NAME")
    event_bus_name: str = Field(alias="EVENT_BUS_NAME")
    parked_queue_url: str = Field(default="", alias="PARKED_QUEUE_URL")
    state_machine_arns: dict[str, str] = Field(default_factory=dict, alias="STATE_MACHINE_ARNS")
    # "http": the protocol adapters (FHIR R4, Da Vinci PAS, ERP REST) at the URLs below;
    # "sandbox": seeded in-process sandboxes (tests and the CDK app's default for now).
    connectors: Literal["sandbox", "http"] = Field(default="sandbox", alias="CAREFLOW_CONNECTORS")
    ehr_base_url: str = Field(default="", alias="EHR_FHIR_BASE_URL")
    payer_base_url: str = Field(default="", alias="PAYER_PAS_BASE_URL")
    erp_base_url: str = Field(default="", alias="ERP_BASE_URL")
    workforce_base_url: str = Field(default="", alias="WORKFORCE_BASE_URL")
    # SMART Backend Services for the EHR; the key is a PEM (on AWS: from a secret).
    ehr_smart_client_id: str = Field(default="", alias="EHR_SMART_CLIENT_ID")
    ehr_smart_token_url: str = Field(default="", alias="EHR_SMART_TOKEN_URL")
    ehr_smart_key_id: str = Field(default="", alias="EHR_SMART_KEY_ID")
    ehr_smart_private_key: str = Field(default="", alias="EHR_SMART_PRIVATE_KEY", repr=False)
    ehr_smart_scope: str = Field(
        default="system/Appointment.read system/ServiceRequest.read system/Coverage.read "
        "system/Location.read system/SupplyRequest.read system/Task.write",
        alias="EHR_SMART_SCOPE",
    )
    # The facility's own identifier systems (JSON list or comma-separated URIs): with the
    # v2-0203 types MR and MB, the only identifiers of people careflow keeps
    # (careflow.canonical.identifiers).
    facility_id_systems: tuple[str, ...] = Field(default=(), alias="CAREFLOW_FACILITY_ID_SYSTEMS")
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")

    @field_validator("state_machine_arns", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("facility_id_systems", mode="before")
    @classmethod
    def _uris(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(s.strip() for s in text.split(",") if s.strip())
        return value


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = {k: v for k, v in os.environ.items() if v != ""}
    env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1"))
    return Settings.model_validate(env)
