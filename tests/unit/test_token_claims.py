"""The pre token generation trigger (V3): a partner's client-credentials access token
carries its facilities; a person's carries their facilities and roles; the same claim
names and format as the local issuer's tokens and what the API reads."""

from __future__ import annotations

import copy
import json

import jwt
import pytest

from careflow.api.auth import caller_from
from careflow.api.token_claims import add_claims, parse_mapping

PARTNERS = parse_mapping(json.dumps({"4example5clientid6": ["fac-south", "fac-north"]}))

# The shape Cognito sends for a client-credentials (M2M) token, event version 3.
M2M_EVENT = {
    "version": "3",
    "triggerSource": "TokenGeneration_ClientCredentials",
    "region": "us-east-1",
    "userPoolId": "us-east-1_EXAMPLE",
    "userName": "ClientCredentials",
    "callerContext": {
        "awsSdkVersion": "aws-sdk-unknown-unknown",
        "clientId": "4example5clientid6",
    },
    "request": {
        "userAttributes": {},
        "groupConfiguration": None,
        "scopes": ["careflow/workflows.read", "careflow/workflows.write"],
        "clientMetadata": {},
    },
    "response": {"claimsAndScopeOverrideDetails": None},
}

# A person signing in on the hosted UI (authorization code), the same version.
USER_EVENT = {
    "version": "3",
    "triggerSource": "TokenGeneration_HostedAuth",
    "region": "us-east-1",
    "userPoolId": "us-east-1_EXAMPLE",
    "userName": "coordinator-mdiaz",
    "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "7peopleclient8"},
    "request": {
        "userAttributes": {
            "sub": "a1b2c3",
            "email": "mdiaz@example.org",
            "custom:facilities": "fac-north",
            "custom:roles": "care_coordinator",
        },
        "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": []},
        "scopes": ["openid", "careflow/tasks.work"],
    },
    "response": {"claimsAndScopeOverrideDetails": None},
}


def _access_claims(event):
    return event["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"][
        "claimsToAddOrOverride"
    ]


def test_a_partners_client_credentials_token_carries_its_facilities():
    answered = add_claims(copy.deepcopy(M2M_EVENT), PARTNERS)
    assert _access_claims(answered) == {"custom:facilities": "fac-north,fac-south"}
    assert answered["request"] == M2M_EVENT["request"]  # nothing else touched


def test_a_client_without_configured_facilities_gets_no_claim():
    event = copy.deepcopy(M2M_EVENT)
    event["callerContext"]["clientId"] = "unknownclient"
    assert add_claims(event, PARTNERS)["response"] == {"claimsAndScopeOverrideDetails": None}


def test_a_persons_access_token_carries_their_facilities_and_roles():
    answered = add_claims(copy.deepcopy(USER_EVENT), PARTNERS)
    assert _access_claims(answered) == {
        "custom:facilities": "fac-north",
        "custom:roles": "care_coordinator",
    }


def test_the_claims_read_back_as_the_api_reads_a_local_issuers_token():
    """Deployed (trigger) and local (LocalIssuer.mint) tokens name and format alike."""
    from careflow.localcloud.api_server import LocalIssuer

    deployed = {
        "client_id": "4example5clientid6",
        "scope": "careflow/workflows.read",
        **_access_claims(add_claims(copy.deepcopy(M2M_EVENT), PARTNERS)),
    }
    issuer = LocalIssuer("http://127.0.0.1:1/issuer")
    token = issuer.mint(
        client="4example5clientid6",
        scopes=["workflows.read"],
        facilities=["fac-north", "fac-south"],
    )
    local = jwt.decode(token, options={"verify_signature": False})
    assert local["custom:facilities"] == deployed["custom:facilities"]
    for claims in (deployed, {k: str(v) for k, v in local.items()}):
        caller = caller_from({"requestContext": {"authorizer": {"claims": claims}}})
        assert caller is not None and caller.username is None
        assert caller.facilities == {"fac-north", "fac-south"}


@pytest.mark.parametrize("text", ['["fac-north"]', '{"c": "fac-north"}', '{"c": ["fac north"]}'])
def test_a_malformed_mapping_is_refused(text):
    with pytest.raises(ValueError):
        parse_mapping(text)
