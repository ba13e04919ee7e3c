"""SMART Backend Services authorization (HL7 FHIR "client credentials" with a signed JWT).

The client proves who it is with a short-lived JWT signed by its private key
(``private_key_jwt``, RS384 or ES384), exchanges it for an access token, and keeps the
token until shortly before it expires.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

import httpx

from careflow import clock
from careflow.ports import ConnectorError, ConnectorUnavailable

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class SmartBackendAuth:
    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        private_key_pem: str,
        key_id: str,
        scope: str,
        algorithm: str = "RS384",
        transport: httpx.BaseTransport | None = None,
        refresh_margin: timedelta = timedelta(seconds=60),
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._key = private_key_pem
        self._kid = key_id
        self._alg = algorithm
        self._margin = refresh_margin
        self._http = httpx.Client(timeout=5.0, transport=transport)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires: datetime | None = None
        self.requests = 0  # token requests made, for tests and metrics

    def client_assertion(self, now: datetime) -> str:
        import jwt

        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": int((now + timedelta(minutes=5)).timestamp()),
            "iat": int(now.timestamp()),
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self._key, algorithm=self._alg, headers={"kid": self._kid})

    def token(self) -> str:
        with self._lock:
            now = clock.now()
            if self._token and self._expires and now < self._expires - self._margin:
                return self._token
            self.requests += 1
            try:
                response = self._http.post(
                    self.token_url,
                    data={
                        "grant_type": "client_credentials",
                        "scope": self.scope,
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": self.client_assertion(now),
                    },
                )
            except httpx.HTTPError as exc:
                raise ConnectorUnavailable(f"token endpoint: {type(exc).__name__}") from None
            if response.status_code >= 500:
                raise ConnectorUnavailable(f"token endpoint returned {response.status_code}")
            if response.status_code != 200:
                error = _field(response, "error") or f"HTTP {response.status_code}"
                raise ConnectorError(f"token endpoint refused the client: {error}")
            body = response.json()
            self._token = str(body["access_token"])
            self._expires = now + timedelta(seconds=int(body.get("expires_in", 300)))
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None
            self._expires = None


def _field(response: httpx.Response, name: str) -> str | None:
    try:
        value = response.json().get(name)
    except ValueError:
        return None
    return str(value) if value else None
