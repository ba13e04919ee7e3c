"""The operations page's site on the local gateway (careflow.localcloud.ops_site): its
files with a strict content security policy, the local sign-in and its refusals, over real
HTTP; the page's token then passes the gateway like any client's."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from careflow.localcloud.api_server import ApiServer, LocalIssuer
from careflow.localcloud.cloud import free_port
from careflow.localcloud.ops_site import SCOPES, OpsSite, people_by_role

ISSUER = LocalIssuer("http://127.0.0.1:4567/issuer")


def _handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """What the API's handler would see: the claims the gateway passed on."""
    claims = event["requestContext"].get("authorizer", {}).get("claims", {})
    return {"statusCode": 200, "headers": {}, "body": json.dumps(claims)}


@pytest.fixture(scope="module")
def base():
    server = ApiServer(free_port(), ISSUER, handler=_handler).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def _get(url: str, *, method: str = "GET", body: bytes | None = None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read().decode()


def test_the_page_and_its_files_come_with_a_strict_policy(base):
    status, headers, html = _get(f"{base}/ops")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and headers["X-Frame-Options"] == "DENY"
    # nothing inline (the policy would block it) and nothing from another origin
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "style=" not in html
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    for name, kind in (("ops.js", "text/javascript"), ("ops.css", "text/css")):
        status, headers, text = _get(f"{base}/ops/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and text
    js = _get(f"{base}/ops/static/ops.js")[2]
    assert "innerHTML" not in js  # every API value is set as text


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/ops/static/../../etc/passwd", "GET", 404),
        ("/ops/static/secrets.py", "GET", 404),
        ("/ops/elsewhere", "GET", 404),
        ("/ops", "POST", 405),
        ("/ops/sign-in", "DELETE", 405),
    ],
)
def test_what_the_site_does_not_serve_is_a_problem(base, path, method, status):
    got, headers, body = _get(f"{base}{path}", method=method, body=b"" if method != "GET" else None)
    assert got == status and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["status"] == status


def test_the_sign_in_offers_the_directorys_roles_and_the_facilities(base):
    status, _, body = _get(f"{base}/ops/sign-in")
    choices = json.loads(body)
    roles = {r["role"]: r["people"] for r in choices["roles"]}
    assert status == 200 and "user:charge-rn-okeller" in roles["charge_nurse"]
    assert "user:ap-sup-tbrooks" in roles["ap_supervisor"]
    assert {f["id"] for f in choices["facilities"]} >= {"fac-north", "fac-south"}


def test_signing_in_mints_a_token_for_one_role_and_one_facility(base):
    asked = {"role": "ap_supervisor", "facility": "fac-south"}
    status, _, body = _get(f"{base}/ops/sign-in", method="POST", body=json.dumps(asked).encode())
    assert status == 200, body
    session = json.loads(body)
    assert session["person"] == "user:ap-mgr-lchen"  # the first holding the role, sorted
    claims = ISSUER.verify(session["token"])
    assert claims["username"] == "ap-mgr-lchen" and claims["custom:roles"] == "ap_supervisor"
    assert claims["custom:facilities"] == "fac-south"
    assert set(claims["scope"].split()) == {f"careflow/{s}" for s in SCOPES}
    # the token passes the gateway like any client's, its claims reaching the handler
    status, _, body = _get(
        f"{base}/v1/board", headers={"Authorization": f"Bearer {session['token']}"}
    )
    assert status == 200 and json.loads(body)["custom:roles"] == "ap_supervisor"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "Send JSON"),
        (b"[1]", "Send JSON"),
        (b"\xff\xfe{}", "Send JSON"),
        (json.dumps({"role": "<script>", "facility": "fac-north"}).encode(), "Pick a role"),
        (json.dumps({"role": "ap_clerk", "facility": "fac-mars"}).encode(), "facility"),
        (json.dumps({"role": "astronaut", "facility": "fac-north"}).encode(), "Nobody"),
        (
            json.dumps(
                {"role": "ap_clerk", "facility": "fac-north", "person": "user:controller-nhall"}
            ).encode(),
            "does not hold",
        ),
        (b"{" + b" " * 5000 + b"}", "small JSON"),
    ],
)
def test_a_sign_in_it_cannot_take_is_refused_in_one_line(base, body, says):
    status, headers, text = _get(f"{base}/ops/sign-in", method="POST", body=body)
    assert status in (400, 413) and headers["Content-Type"] == "application/problem+json"
    assert says in json.loads(text)["detail"]


def test_people_by_role_lists_each_person_under_each_role():
    class Directory:
        def ids(self):
            return ["user:b", "user:a"]

        def roles_of(self, actor):
            return {"user:a": frozenset({"x", "y"}), "user:b": frozenset({"x"})}[actor]

    assert people_by_role(Directory()) == {"x": ["user:a", "user:b"], "y": ["user:a"]}


def test_the_site_answers_without_a_server_too():
    status, headers, _ = OpsSite(ISSUER).answer("HEAD", "/ops", b"")
    assert status == 200 and "Content-Security-Policy" in headers
