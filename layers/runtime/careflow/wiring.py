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


# Connectors. Only the seeded sandboxes exist so far; the protocol adapters
# (FHIR R4, Da Vinci PAS, ERP REST) will be chosen here by CAREFLOW_CONNECTORS.
def ehr() -> Any:
    return _sandbox()


def payer() -> Any:
    return _sandbox()


def erp() -> Any:
    return _sandbox()


def sterile() -> Any:
    return _sandbox()


def reset() -> None:
    """Forgets every built adapter (the local cloud calls it when its endpoint changes)."""
    from careflow import settings as settings_module

    settings_module.settings.cache_clear()
    for fn in (client, store, engine, publisher, parking):
        fn.cache_clear()
