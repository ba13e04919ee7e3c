"""Per-environment settings, read from the CDK context (``cdk.json`` and ``-c key=value``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

from careflow.catalog import EVENT_BUS_NAME

LayerBuild = Literal["pip", "skip"]
LAYER_BUILDS: tuple[LayerBuild, ...] = ("pip", "skip")


@dataclass(frozen=True)
class EnvironmentConfig:
    """What differs between dev and prod. Everything else is the same on purpose."""

    name: str
    log_retention: str  # a CloudWatch Logs RetentionDays member, e.g. ONE_MONTH
    archive_retention_days: int
    deletion_protection: bool
    retain_data: bool
    backup_plan: bool
    backup_retention_days: int = 35
    alarm_email: str | None = None
    layer_build: LayerBuild = "pip"
    # The hospital's systems (``-c ehr_base_url=... -c payer_base_url=... -c erp_base_url=...``).
    # With all three, the functions use the protocol adapters; without, the seeded sandboxes.
    ehr_base_url: str | None = None
    payer_base_url: str | None = None
    erp_base_url: str | None = None

    @property
    def connector_environment(self) -> dict[str, str]:
        def url(key: str) -> str | None:
        value = node.try_get_context(key) or environments[name].get(key)
        return str(value) if value else None

    keys = ("ehr_base_url", "payer_base_url", "erp_base_url")
    settings = {k: v for k, v in settings.items() if k not in keys}
    return EnvironmentConfig(
        name=name,
        layer_build=layer_build,
        alarm_email=alarm_email,
        ehr_base_url=url("ehr_base_url"),
        payer_base_url=url("payer_base_url"),
        erp_base_url=url("erp_base_url"),
        **settings,
    )
