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
    region: str = Field(default="us-east-1", alias="AWS_REGION")
    endpoint_url: str | None = Field(default=None, alias="AWS_ENDPOINT_URL")

    @field_validator("state_machine_arns", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def settings() -> Settings:
    env = {k: v for k, v in os.environ.items() if v != ""}
    env.setdefault("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1"))
    return Settings.model_validate(env)
