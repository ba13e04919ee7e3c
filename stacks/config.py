"""Per-environment settings, read from the CDK context (``cdk.json`` and ``-c key=value``)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

from careflow.api.contract import SCOPES
from careflow.api.cors import allowed_origins
from careflow.api.token_claims import FACILITY_ID_PATTERN
from careflow.catalog import EVENT_BUS_NAME

LayerBuild = Literal["pip", "skip"]
API_CONTEXT = "careflow:api"
HL7_CONTEXT = "careflow:hl7"
MLLP_PORT = 2575  # the port HL7 v2 senders conventionally use for MLLP
ACM_CERTIFICATE_ARN = re.compile(
    r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$"
)
WAF_WINDOW_SECONDS = 300  # the WAF rate-based rule's evaluation window
LAYER_BUILDS: tuple[LayerBuild, ...] = ("pip", "skip")


@dataclass(frozen=True)
class PartnerConfig:
    """A partner app of the ``/v1`` API: its OAuth scopes (client credentials) and the
    throttle and daily quota of its API key's usage plan."""

    name: str
    scopes: tuple[str, ...]
    rate_limit: float  # requests per second, steady
    burst_limit: int
    quota_per_day: int
    # The facilities its client-credentials tokens name (``custom:facilities``, added by
    # the pre token generation trigger): none, and it can read or start nothing.
    facilities: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApiConfig:
    """The partner API's settings (``careflow:api`` in cdk.json), the same in every
    environment but for the user client's callback URLs."""

    stage: str
    rate_limit: float  # the stage's default method throttle
    burst_limit: int
    waf_requests_per_5_minutes_per_ip: int
    user_scopes: tuple[str, ...]  # what people's tokens (the user app client) may carry
    partners: tuple[PartnerConfig, ...]
    callback_urls: tuple[str, ...] = ()
    # Browser origins that may call the API (CORS), per environment (``api_cors_origins``):
    # none by default, and none in prod.
    cors_origins: tuple[str, ...] = ()

    @property
    def partner_scopes(self) -> set[str]:
        return {scope for partner in self.partners for scope in partner.scopes}

    def api_key_required(self, scope: str | None) -> bool:
        """A route needs a partner's API key (and so its usage plan) when its scope is one
        only partners hold: people's tokens never reach it."""
        return scope is not None and scope in self.partner_scopes - set(self.user_scopes)


def api_config(
    settings: dict[str, Any], callback_urls: list[str], cors_origins: list[str] | None = None
) -> ApiConfig:
    partners = tuple(
        PartnerConfig(
            name=name,
            scopes=tuple(partner["scopes"]),
            rate_limit=partner["rate_limit"],
            burst_limit=partner["burst_limit"],
            quota_per_day=partner["quota_per_day"],
            facilities=tuple(partner.get("facilities", ())),
        )
        for name, partner in settings.get("partners", {}).items()
    )
    config = ApiConfig(
        stage=settings["stage"],
        rate_limit=settings["throttle"]["rate_limit"],
        burst_limit=settings["throttle"]["burst_limit"],
        waf_requests_per_5_minutes_per_ip=settings["waf_requests_per_5_minutes_per_ip"],
        user_scopes=tuple(settings["user_scopes"]),
        partners=partners,
        callback_urls=tuple(callback_urls),
        cors_origins=tuple(allowed_origins(",".join(cors_origins or []))),
    )
    # The WAF limit guards against floods from one IP; it must not cut below what a partner's
    # usage plan allows it (a partner's calls often come from one egress IP).
    busiest = max((p.rate_limit for p in partners), default=0) * WAF_WINDOW_SECONDS
    if config.waf_requests_per_5_minutes_per_ip < busiest:
        raise ValueError(
            f"waf_requests_per_5_minutes_per_ip={config.waf_requests_per_5_minutes_per_ip} "
            f"is below a partner's usage plan ({busiest:g} requests in 5 minutes)"
        )
    facility = re.compile(FACILITY_ID_PATTERN)
    for partner in partners:
        if not all(facility.match(f) for f in partner.facilities):
            raise ValueError(f"{API_CONTEXT} partner {partner.name}: a facility id is malformed")
    unknown = (config.partner_scopes | set(config.user_scopes)) - set(SCOPES)
    if unknown:
        raise ValueError(f"{API_CONTEXT} names scopes the contract does not: {sorted(unknown)}")
    return config


@dataclass(frozen=True)
class Hl7Config:
    """HL7 v2 over MLLP (``careflow:hl7`` in cdk.json, overridden per environment by its
    ``hl7`` settings): off by default, since ``POST /v1/hl7v2`` (ER7 over HTTPS) is the
    serverless path. On, it adds the ``careflow-<env>-hl7`` stack: a Fargate service behind
    an internal Network Load Balancer with a TLS listener on ``port``."""

    mllp_enabled: bool = False
    # The ACM certificate the NLB's TLS listener presents (required when enabled).
    certificate_arn: str | None = None
    # The interface engine's addresses: the only sources the listener accepts.
    allowed_cidrs: tuple[str, ...] = ()
    port: int = MLLP_PORT
    desired_count: int = 2
    vpc_cidr: str = "10.40.0.0/22"


def hl7_config(settings: dict[str, Any]) -> Hl7Config:
    known = set(Hl7Config.__dataclass_fields__)
    unknown = set(settings) - known
    if unknown:
        raise ValueError(f"{HL7_CONTEXT} has unknown keys: {sorted(unknown)}")
    config = Hl7Config(
        mllp_enabled=_flag(settings.get("mllp_enabled", False)),
        certificate_arn=settings.get("certificate_arn") or None,
        allowed_cidrs=tuple(_list(settings.get("allowed_cidrs", ()))),
        port=int(settings.get("port", MLLP_PORT)),
        desired_count=int(settings.get("desired_count", 2)),
        vpc_cidr=settings.get("vpc_cidr", Hl7Config.vpc_cidr),
    )
    if not config.mllp_enabled:
        return config
    if not config.certificate_arn or not ACM_CERTIFICATE_ARN.match(config.certificate_arn):
        raise ValueError(
            f"{HL7_CONTEXT}.mllp_enabled needs certificate_arn, an ACM certificate ARN"
        )
    if not config.allowed_cidrs:
        raise ValueError(
            f"{HL7_CONTEXT}.mllp_enabled needs allowed_cidrs: the interface engine's addresses"
        )
    for cidr in config.allowed_cidrs:
        network = ipaddress.ip_network(cidr)  # ValueError when malformed
        if network.prefixlen == 0:
            raise ValueError(f"{HL7_CONTEXT}.allowed_cidrs must not open the listener to {cidr}")
    if config.desired_count < 2:
        raise ValueError(f"{HL7_CONTEXT}.desired_count must be at least 2 (one task per AZ)")
    return config


def _flag(value: object) -> bool:
    if isinstance(value, str):  # from -c key=value
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _list(value: object) -> list[str]:
    if isinstance(value, str):  # from -c key=a,b
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value]  # type: ignore[attr-defined]


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
    # Optional (``-c workforce_base_url=...``), with the three above: without it the
    # workforce sandbox serves staffing gap detection.
    workforce_base_url: str | None = None
    api: ApiConfig | None = None
    hl7: Hl7Config = field(default_factory=Hl7Config)
    # ``-c bedrock_model_id=...``: the Amazon Bedrock model a model whose ai-models row
    # names the bedrock backend may use (with phi_egress); without it, no Bedrock IAM.
    bedrock_model_id: str | None = None

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
        if self.workforce_base_url:
            given["WORKFORCE_BASE_URL"] = self.workforce_base_url
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

    keys = (
        "ehr_base_url",
        "payer_base_url",
        "erp_base_url",
        "workforce_base_url",
        "api_callback_urls",
        "api_cors_origins",
        "bedrock_model_id",
    )
    callback_url = node.try_get_context("api_callback_url")
    api_settings = node.try_get_context(API_CONTEXT)
    api = (
        api_config(
            api_settings,
            [callback_url] if callback_url else settings.get("api_callback_urls", []),
            settings.get("api_cors_origins", []),
        )
        if api_settings
        else None
    )
    # careflow:hl7 for every environment, the environment's ``hl7`` over it, and the CLI's
    # ``-c hl7_mllp_enabled=true -c hl7_certificate_arn=... -c hl7_allowed_cidrs=a,b`` last.
    hl7_settings = {
        **(node.try_get_context(HL7_CONTEXT) or {}),
        **settings.get("hl7", {}),
        **{
            name: node.try_get_context(f"hl7_{name}")
            for name in ("mllp_enabled", "certificate_arn", "allowed_cidrs")
            if node.try_get_context(f"hl7_{name}") is not None
        },
    }
    settings = {k: v for k, v in settings.items() if k not in (*keys, "hl7")}
    return EnvironmentConfig(
        name=name,
        layer_build=layer_build,
        alarm_email=alarm_email,
        ehr_base_url=url("ehr_base_url"),
        payer_base_url=url("payer_base_url"),
        erp_base_url=url("erp_base_url"),
        workforce_base_url=url("workforce_base_url"),
        api=api,
        hl7=hl7_config(hl7_settings),
        bedrock_model_id=url("bedrock_model_id"),
        **settings,
    )
