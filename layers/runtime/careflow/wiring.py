"""The composition root: which adapter serves each port, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from careflow.settings import settings

# Applied to every client built here; the local cloud adds one that answers in-process.
CLIENT_HOOKS: list[Callable[[Any], Any]] = []


@cache
def client(service: str) -> Any:
    import boto3

    s = settings()
    built = boto3.client(service, region_name=s.region, endpoint_url=s.endpoint_url)
    for hook in CLIENT_HOOKS:
        built = hook(built)
    return built


@lru_cache(maxsize=1)
def store() -> Any:
    from careflow.adapters.dynamodb_state import DynamoStateStore

    return DynamoStateStore(client("dynamodb"), settings().table_name)


@lru_cache(maxsize=1)
def engine() -> Any:
    from careflow.adapters.aws import StepFunctionsEngine

    return StepFunctionsEngine(client("stepfunctions"))


@lru_cache(maxsize=1)
def publisher() -> Any:
    from careflow.adapters.aws import EventBridgePublisher

    return EventBridgePublisher(client("events"), settings().event_bus_name)


@lru_cache(maxsize=1)
def parking() -> Any:
    from careflow.adapters.aws import SqsParkingLot

    return SqsParkingLot(client("sqs"), settings().parked_queue_url)


def _sandbox() -> Any:
    from careflow.adapters.sandbox import sandbox

    return sandbox()


def _http(system: str, base_url: str, auth: Any = None) -> Any:
    from careflow.adapters.http import HttpClient

    if not base_url:
        raise RuntimeError(f"CAREFLOW_CONNECTORS=http needs the {system} base URL")
    return HttpClient(system, base_url, auth=auth)


def _ehr_auth() -> Any:
    """SMART Backend Services, when the EHR's client is configured."""
    s = settings()
    if not s.ehr_smart_client_id:
        return None
    from careflow.adapters.smart import SmartBackendAuth

    return SmartBackendAuth(
        token_url=s.ehr_smart_token_url,
        client_id=s.ehr_smart_client_id,
        private_key_pem=s.ehr_smart_private_key,
        key_id=s.ehr_smart_key_id,
        scope=s.ehr_smart_scope,
    )


def _identifier_policy() -> Any:
    """The identifier allow-list: MRN and member id by type, plus the facility's systems."""
    from careflow.canonical.identifiers import IdentifierPolicy

    return IdentifierPolicy.with_systems(settings().facility_id_systems)


# Connectors, chosen by CAREFLOW_CONNECTORS: the protocol adapters, or the sandboxes.
@lru_cache(maxsize=1)
def ehr() -> Any:
    s = settings()
    if s.connectors != "http":
        return _sandbox()
    from careflow.adapters.ehr_fhir import FhirEhrAdapter
    from careflow.adapters.fhir_rest import FhirRestClient

    return FhirEhrAdapter(
        FhirRestClient(_http("ehr", s.ehr_base_url, auth=_ehr_auth())),
        identifiers=_identifier_policy(),
    )


@lru_cache(maxsize=1)
def payer() -> Any:
    s = settings()
    if s.connectors != "http":
        return _sandbox()
    from careflow.adapters.payer_pas import PasPayerAdapter

    return PasPayerAdapter(_http("payer", s.payer_base_url), identifiers=_identifier_policy())


@lru_cache(maxsize=1)
def erp() -> Any:
    s = settings()
    if s.connectors != "http" or not s.erp_base_url:
        return _sandbox()  # until the ERP REST adapter is wired, the sandbox serves
    from careflow.adapters.erp_rest import ErpRestAdapter

    return ErpRestAdapter(_http("erp", s.erp_base_url))


@lru_cache(maxsize=1)
def workforce() -> Any:
    s = settings()
    if s.connectors != "http" or not s.workforce_base_url:
        from careflow.localcloud.sandboxes.workforce_seed import workforce_sandbox

        return workforce_sandbox()
    from careflow.adapters.workforce_rest import WorkforceRestAdapter

    return WorkforceRestAdapter(_http("workforce", s.workforce_base_url))


@lru_cache(maxsize=1)
def policies() -> Any:
    """The policy versions in force: the state table's published versions over the
    packaged files (see careflow.policies.runtime)."""
    import os

    from careflow.policies.runtime import layered, packaged

    if not os.environ.get("TABLE_NAME"):
        return packaged()
    return layered(client("dynamodb"), settings().table_name)


def sterile() -> Any:
    # Sterile processing systems have no standard API; their adapter is still to come.
    return _sandbox()


def transport() -> Any:
    # Transport vendors have no standard API; their adapter is still to come.
    return _sandbox()


def pharmacy() -> Any:
    # The pharmacy system's adapter (FHIR MedicationDispense or its own REST) is still to come.
    return _sandbox()


@cache
def predictor() -> Any:
    """The models' port: the local artifacts, and Amazon Bedrock when a deployment names a
    Bedrock model (``CAREFLOW_BEDROCK_MODEL_ID``); the ai-models policy decides which runs."""
    import os

    from careflow.adapters.predictor_local import LocalPredictor, Predictors

    remote: dict[str, Any] = {}
    bedrock_model = os.environ.get("CAREFLOW_BEDROCK_MODEL_ID")
    if bedrock_model:
        from careflow.adapters.predictor_bedrock import BedrockPredictor

        remote["bedrock"] = BedrockPredictor(client("bedrock-runtime"), bedrock_model)
    return Predictors(LocalPredictor(), remote)


def reset() -> None:
    """Forgets every built adapter (the local cloud calls it when its endpoint changes)."""
    from careflow import settings as settings_module

    settings_module.settings.cache_clear()
    for fn in (
        client,
        store,
        engine,
        publisher,
        parking,
        ehr,
        payer,
        erp,
        workforce,
        policies,
        predictor,
    ):
        fn.cache_clear()
