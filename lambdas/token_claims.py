"""Cognito's pre token generation trigger (event version 3): careflow's claims in access
tokens (:mod:`careflow.api.token_claims`). The partners' facilities, by client id, are
an SSM parameter the CDK app writes (client ids are known only at deploy), read once per
five minutes."""

from __future__ import annotations

import os
import time
from typing import Any

from careflow.api.token_claims import add_claims, parse_mapping
from careflow.observability import logger

PARAMETER_ENV = "PARTNER_FACILITIES_PARAMETER"
CACHE_SECONDS = 300
_cache: dict[str, Any] = {"at": -CACHE_SECONDS, "mapping": {}}


def _partners() -> dict[str, str]:
    if time.monotonic() - _cache["at"] >= CACHE_SECONDS:
        import boto3

        name = os.environ[PARAMETER_ENV]
        value = boto3.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
        _cache.update(at=time.monotonic(), mapping=parse_mapping(value))
    mapping: dict[str, str] = _cache["mapping"]
    return mapping


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    answered = add_claims(event, _partners())
    logger.info(
        "token claims",
        extra={
            "trigger": event.get("triggerSource"),
            "client_id": (event.get("callerContext") or {}).get("clientId"),
        },
    )
    return answered
