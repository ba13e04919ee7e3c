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
    # Audit entries (INST#<id> / AUDIT#...) carry no TTL; with a backup plan, a monthly
    # backup of the table is also kept this long (HIPAA: six years, 2192 days, in prod).
    audit_retention_days: int | None = None
    alarm_email: str | None = None
    layer_build: LayerBuild = "pip"
    # The hospital's systems (``-c ehr_base_url=... -c payer_base_url=... -c erp_base_url=...``).
    # With all three, the functions use the protocol adapters; without, the seeded sandboxes.
    ehr_base_url: str | None = None
    payer_base_url: str | None = None
    erp_base_url: str | None = None

    @property
    def connector_environment(self) -> dict[str, str]:
        urls = {
            "EHR_FHIR_BASE_URL": self.ehr_base_url,
            "PAYER_PAS_BASE_URL": self.payer_base_url,
            "ERP_BASE_URL": self.erp_base_url,
        }
        given = {k: v for k, v in urls.items() if v}
        if not given:
            return {"CAREFLOW_CONNECTORS": "sandbox"}
        if len(given) != len(urls):
            missing = sorted(set(urls) - set(given))
            raise ValueError(f"connector URLs are all or nothing; missing {missing}")
        return {"CAREFLOW_CONNECTORS": "http", **given}

    @property
    def prefix(self) -> str:
        """Physical-name prefix: ``careflow-dev``."""
        return f"careflow-{self.name}"

    @property
    def role_path(self) -> str:
        """IAM path of careflow's own execution roles: ``/careflow-dev/``."""
        return f"/{self.prefix}/"

    @property
    def event_bus_name(self) -> str:
        return f"{EVENT_BUS_NAME}-{self.name}"

    @property
    def removal_policy(self) -> RemovalPolicy:
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @property
    def log_retention_period(self) -> logs.RetentionDays:
        try:
            return logs.RetentionDays[self.log_retention]
        except KeyError:
            raise ValueError(
                f"log_retention={self.log_retention!r} is not a logs.RetentionDays member"
            ) from None


def load(node: Node) -> EnvironmentConfig:
    """The environment selected with ``-c env=dev|prod`` (default dev)."""
    name = node.try_get_context("env") or "dev"
    environments: dict[str, dict[str, Any]] = node.try_get_context("careflow:environments") or {}
    if name not in environments:
        raise ValueError(f"unknown env {name!r}; cdk.json defines {sorted(environments)}")
    layer_build = node.try_get_context("layer_build") or "pip"
    if layer_build not in LAYER_BUILDS:
        raise ValueError(f"layer_build must be one of {LAYER_BUILDS}, not {layer_build!r}")
    alarm_email = node.try_get_context("alarm_email") or environments[name].get("alarm_email")
    settings = {k: v for k, v in environments[name].items() if k != "alarm_email"}

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
