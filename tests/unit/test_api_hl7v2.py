"""POST /v1/hl7v2: ER7 in, the ACK out (200 for AA/AE, 400 for AR), scope hl7v2.write,
and the token's facilities bound what is published."""

from __future__ import annotations

import base64
from types import SimpleNamespace

from careflow.api import app as api
from tests.unit.test_api import claims, wired  # noqa: F401  (the fixture)

ER7 = "x-application/hl7-v2+er7"
A01 = (
    "MSH|^~\\&|ADT|NVMC|CF|CF|20261130080000||ADT^A01^ADT_A01|HTTP1|P|2.5.1\r"
    "PID|1||MRN1^^^NVMC^MR||MÜLLER^JOSÉ\r"
    "PV1|1|I|4W^401^A||||||||||||||||V100|||||||||||||||||||||||||20261130075500\r"
)
WRITER = claims(scope="careflow/hl7v2.write", client_id="interface-engine")


def post(body: str | bytes, *, who=WRITER, content_type: str = ER7):
    raw = body if isinstance(body, bytes) else None
    event = {
        "resource": "/v1/hl7v2",
        "path": "/v1/hl7v2",
        "httpMethod": "POST",
        "headers": {"Content-Type": content_type},
        "multiValueHeaders": {"Content-Type": [content_type]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "requestContext": {
            "httpMethod": "POST",
            "path": "/v1/hl7v2",
            "stage": "prod",
            "requestId": "req-1",
            "authorizer": {"claims": who},
        },
        "body": base64.b64encode(raw).decode() if raw is not None else body,
        "isBase64Encoded": raw is not None,
    }
    answer = api.app.resolve(event, SimpleNamespace(aws_request_id="req-1"))
    headers = {k: v[0] for k, v in (answer.get("multiValueHeaders") or {}).items()}
    return answer["statusCode"], answer["body"], {**headers, **(answer.get("headers") or {})}


def test_a_message_is_acked_aa_and_published(wired):  # noqa: F811
    status, body, headers = post(A01)
    assert status == 200 and headers["Content-Type"] == ER7
    assert "\rMSA|AA|HTTP1" in body
    assert wired.publisher.types() == ["Encounter.Admitted"]
    assert "MÜLLER" not in str(wired.publisher.events)


def test_latin1_bytes_and_text_plain_are_taken(wired):  # noqa: F811
    status, body, _ = post(A01.encode("latin-1"), content_type="text/plain; charset=latin-1")
    assert status == 200 and "\rMSA|AA|HTTP1" in body


def test_an_unparseable_message_is_400_with_an_ar(wired):  # noqa: F811
    status, body, headers = post("PID|1||X\r")
    assert status == 400 and headers["Content-Type"] == ER7
    assert "\rMSA|AR|" in body and "\rERR|" in body
    assert wired.publisher.events == []


def test_the_scope_and_the_content_type_are_checked(wired):  # noqa: F811
    assert post(A01, who=claims(scope="careflow/events.write"))[0] == 403
    assert post(A01, content_type="application/json")[0] == 415


def test_a_facility_the_token_does_not_name_is_acked_and_parked(wired):  # noqa: F811
    status, body, _ = post(A01, who=claims(scope="careflow/hl7v2.write", facilities="fac-south"))
    assert status == 200 and "\rMSA|AA|HTTP1" in body
    assert wired.publisher.events == []
    assert "may not send for" in wired.store.parked[0].reason
