"""FHIR R4 REST: read, search with paging (``Bundle.link[next]``), create (conditional),
update. Returns the server's JSON; mapping into the canonical model is the mappers' job."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from careflow.adapters.http import HttpClient, parse_json
from careflow.ports import ConnectorUnavailable


class FhirRestClient:
    def __init__(self, http: HttpClient, *, max_pages: int = 50) -> None:
        self.http = http
        self.max_pages = max_pages

    def _expect(self, body: Any, resource_type: str) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("resourceType") != resource_type:
            found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
            raise ConnectorUnavailable(
                f"{self.http.system}: expected a {resource_type}, got {found}"
            )
        return body

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return self._expect(self.http.get_json(f"{resource_type}/{resource_id}"), resource_type)

    def search(
        self, resource_type: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every matching resource, page after page (``include``d resources are skipped)."""
        url: str | None = resource_type
        query: Mapping[str, Any] | None = params
        for _ in range(self.max_pages):
            if url is None:
                return
            bundle = self._expect(self.http.get_json(url, params=query), "Bundle")
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                mode = (entry.get("search") or {}).get("mode", "match")
                if mode == "match" and resource.get("resourceType") == resource_type:
                    yield resource
            url = next(
                (
                    link.get("url")
                    for link in bundle.get("link") or []
                    if link.get("relation") == "next"
                ),
                None,
            )
            query = None  # the next link carries its own query
        raise ConnectorUnavailable(
            f"{self.http.system}: more than {self.max_pages} pages of {resource_type}"
        )

    def create(
        self, resource: Mapping[str, Any], *, if_none_exist: str | None = None
    ) -> dict[str, Any]:
        rtype = str(resource["resourceType"])
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else None
        body = self.http.post_json(rtype, dict(resource), headers=headers)
        return self._expect(body, rtype)

    def update(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        rtype = str(resource["resourceType"])
        response = self.http.request("PUT", f"{rtype}/{resource['id']}", json_body=dict(resource))
        return self._expect(parse_json(self.http.system, response), rtype)
