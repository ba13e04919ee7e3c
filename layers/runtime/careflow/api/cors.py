"""Which browser origins may call ``/v1`` (CORS): the CDK app sets them per environment in
``CORS_ALLOWED_ORIGINS`` (comma-separated), none by default (prod). With none, the API
answers no preflight and adds no ``Access-Control-*`` header; with some, it answers
``OPTIONS`` and adds ``Access-Control-Allow-Origin`` only for a listed origin (never ``*``:
responses depend on the caller's token)."""

from __future__ import annotations

import os
import re

from aws_lambda_powertools.event_handler import CORSConfig

ORIGINS_ENV = "CORS_ALLOWED_ORIGINS"
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "X-Api-Key"]
MAX_AGE_SECONDS = 600
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


def allowed_origins(value: str | None) -> list[str]:
    """The origins in ``value``; a malformed one (a path, ``*``) fails loudly at start."""
    origins = [o.strip() for o in (value or "").split(",") if o.strip()]
    bad = [o for o in origins if not ORIGIN.match(o)]
    if bad:
        raise ValueError(f"{ORIGINS_ENV} holds values that are not origins: {bad}")
    return origins


def cors_config(value: str | None = None) -> CORSConfig | None:
    origins = allowed_origins(os.environ.get(ORIGINS_ENV) if value is None else value)
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=origins[1:],
        allow_headers=ALLOW_HEADERS,
        max_age=MAX_AGE_SECONDS,
    )
