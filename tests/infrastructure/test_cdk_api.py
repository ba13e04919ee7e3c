"""The ``/v1`` partner API as synthesized: routes from the contract with their scopes, the
Cognito pool and clients, usage plans, WAF, access logs without PHI, least privilege."""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow.api.contract import RESOURCE_SERVER, ROUTES, SCOPES, scope_name
from stacks.permissions import PARTNER_SOURCES
from tests.infrastructure.infra_support import Synth, as_list, policy_statements, render

ROLE = "api"


def _resources(dev: Synth, resource_type: str) -> dict[str, dict[str, Any]]:
    return dev.resources(ROLE, resource_type)


def _one(dev: Synth, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = _resources(dev, resource_type).items()
    return logical_id, resource["Properties"]


def _paths(dev: Synth) -> dict[str, str]:
    """``AWS::ApiGateway::Resource`` logical id -> its full path."""
    resources = _resources(dev, "AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def _api_function(dev: Synth) -> tuple[str, dict[str, Any]]:
    """The handler's function (the stack's other one is the token claims trigger)."""
    ((logical_id, function),) = [
        (i, r["Properties"])
        for i, r in _resources(dev, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == "api.handler"
    ]
    return logical_id, function


def _all_methods(dev: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(dev)

    def path(resource: Any) -> str:
        return paths[resource["Ref"]] if "Ref" in resource else "/"

    return {
        (props["HttpMethod"], path(props["ResourceId"])): props
        for props in (m["Properties"] for m in _resources(dev, "AWS::ApiGateway::Method").values())
    }


def _methods(dev: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """The contract's methods: without the CORS preflights (OPTIONS)."""
    return {k: v for k, v in _all_methods(dev).items() if k[0] != "OPTIONS"}


def test_every_contract_route_and_nothing_else_is_a_method(dev: Synth) -> None:
    assert set(_methods(dev)) == {(route.method, route.path) for route in ROUTES}


def test_each_route_takes_a_cognito_token_with_exactly_its_scope_and_health_none(
    dev: Synth,
) -> None:
    authorizer_id, authorizer = _one(dev, "AWS::ApiGateway::Authorizer")
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    (pool_arn,) = render(authorizer["ProviderARNs"])
    pool_id, _ = _one(dev, "AWS::Cognito::UserPool")
    assert pool_arn == f"<{pool_id}.Arn>"
    methods = _methods(dev)
    for route in ROUTES:
        method = methods[(route.method, route.path)]
        if route.scope is None:
            assert method["AuthorizationType"] == "NONE", route
            assert "AuthorizerId" not in method and "AuthorizationScopes" not in method
        else:
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", route
            assert method["AuthorizerId"] == {"Ref": authorizer_id}
            assert method["AuthorizationScopes"] == [scope_name(route.scope)], route


def test_every_method_is_a_lambda_proxy_to_the_api_function(dev: Synth) -> None:
    function_id, function = _api_function(dev)
    assert function["Handler"] == "api.handler"
    assert function["FunctionName"] == "careflow-dev-Api"
    assert len(function["Layers"]) == 2
    for method in _methods(dev).values():
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert f"<{function_id}.Arn>" in str(render(integration["Uri"]))


def test_gateway_requires_path_parameters_and_the_idempotency_key_of_a_start(dev: Synth) -> None:
    (validator,) = (
        r["Properties"] for r in _resources(dev, "AWS::ApiGateway::RequestValidator").values()
    )
    assert validator["ValidateRequestParameters"] is True
    methods = _methods(dev)
    for route in ROUTES:
        parameters = methods[(route.method, route.path)].get("RequestParameters", {})
        expected = {
            f"method.request.path.{name}": True
            for name in route.path.replace("}", "{").split("{")[1::2]
        }
        if route.scope == "workflows.write":
            expected["method.request.header.Idempotency-Key"] = True
        assert parameters == expected, route


def test_api_keys_are_required_exactly_on_partner_only_routes(dev: Synth) -> None:
    api = dev.stacks.config.api
    assert api is not None
    methods = _methods(dev)
    partner_only = api.partner_scopes - set(api.user_scopes)
    assert partner_only == {
        "workflows.write",
        "events.write",
        "payer.notify",
        "policies.read",
        "hl7v2.write",
    }
    for route in ROUTES:
        required = methods[(route.method, route.path)].get("ApiKeyRequired", False)
        assert required == (route.scope in partner_only), route


def test_each_partner_has_a_usage_plan_with_its_throttle_quota_and_key(dev: Synth) -> None:
    api = dev.stacks.config.api
    assert api is not None and {p.name for p in api.partners} == {
        "scheduling-vendor",
        "payer-portal",
        "interface-engine",
    }
    plans = {
        props["UsagePlanName"]: (logical_id, props)
        for logical_id, props in (
            (k, v["Properties"]) for k, v in _resources(dev, "AWS::ApiGateway::UsagePlan").items()
        )
    }
    keys = {
        props["Name"]: logical_id
        for logical_id, props in (
            (k, v["Properties"]) for k, v in _resources(dev, "AWS::ApiGateway::ApiKey").items()
        )
    }
    attached = {
        (render(p["Properties"]["UsagePlanId"]), render(p["Properties"]["KeyId"]))
        for p in _resources(dev, "AWS::ApiGateway::UsagePlanKey").values()
    }
    stage_id, stage = _one(dev, "AWS::ApiGateway::Stage")
    assert len(plans) == len(keys) == len(attached) == len(api.partners)
    for partner in api.partners:
        plan_id, plan = plans[f"careflow-dev-api-{partner.name}"]
        assert plan["Throttle"] == {
            "RateLimit": partner.rate_limit,
            "BurstLimit": partner.burst_limit,
        }
        assert plan["Quota"] == {"Limit": partner.quota_per_day, "Period": "DAY"}
        (api_stage,) = plan["ApiStages"]
        assert render(api_stage["Stage"]) == f"<{stage_id}>"
        key_id = keys[f"careflow-dev-api-{partner.name}"]
        assert (f"<{plan_id}>", f"<{key_id}>") in attached
    assert stage["StageName"] == api.stage


def test_waf_is_associated_with_the_stage_with_a_rate_limit_per_ip(dev: Synth) -> None:
    acl_id, acl = _one(dev, "AWS::WAFv2::WebACL")
    _, association = _one(dev, "AWS::WAFv2::WebACLAssociation")
    stage_id, _ = _one(dev, "AWS::ApiGateway::Stage")
    rest_api_id, _ = _one(dev, "AWS::ApiGateway::RestApi")
    assert render(association["WebACLArn"]) == f"<{acl_id}.Arn>"
    assert render(association["ResourceArn"]).endswith(
        f"::/restapis/<{rest_api_id}>/stages/<{stage_id}>"
    )
    assert acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    rate = rules["RateLimitPerIp"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": dev.stacks.config.api.waf_requests_per_5_minutes_per_ip,  # type: ignore[union-attr]
        "EvaluationWindowSec": 300,
    }
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert (common["VendorName"], common["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
    # Only the 8 KB body limit is counted rather than blocking (PAS notification Bundles).
    assert common["RuleActionOverrides"] == [
        {"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}
    ]


@pytest.mark.parametrize(("env", "days"), [("dev", 30), ("prod", 365)])
def test_stage_access_logs_are_encrypted_and_carry_no_phi(
    env: str, days: int, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(env)
    _, stage = _one(synth, "AWS::ApiGateway::Stage")
    log_group_id, log_group = _access_log_group(synth)
    assert render(stage["AccessLogSetting"]["DestinationArn"]).endswith(
        f":log-group:<{log_group_id}>"
    )
    assert log_group["RetentionInDays"] == days
    assert "KmsKeyId" in log_group and "Logs" in str(render(log_group["KmsKeyId"]))
    fmt = stage["AccessLogSetting"]["Format"]
    fields = json.loads(fmt)
    assert fields["resourcePath"] == "$context.resourcePath"
    assert {"requestId", "ip", "clientId", "httpMethod", "status", "latency"} <= set(fields)
    for forbidden in ("requestOverride", "body", "querystring", "$context.path", "$input"):
        assert forbidden not in fmt, forbidden
    (settings,) = stage["MethodSettings"]
    assert settings["LoggingLevel"] == "OFF"
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    assert stage["TracingEnabled"] is True


def _access_log_group(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical_id, resource["Properties"])
        for logical_id, resource in synth.resources(ROLE, "AWS::Logs::LogGroup").items()
        if resource["Properties"]["LogGroupName"].startswith("/aws/apigateway/")
    ]
    return found


def _api_statements(dev: Synth) -> list[dict[str, Any]]:
    _, function = _api_function(dev)
    role_id = str(render(function["Role"])).strip("<>").split(".")[0]
    return policy_statements(dev, role_id, ROLE)


def test_the_api_role_is_least_privilege_on_the_table_and_bus(dev: Synth) -> None:
    statements = _api_statements(dev)
    allowed = [s for s in statements if s.get("Effect", "Allow") == "Allow"]
    actions = {a for s in allowed for a in as_list(s["Action"])}
    assert not any(a in {"dynamodb:*", "dynamodb:Scan"} for a in actions)
    assert not any("*" in a for a in actions)
    grants: dict[str, set[str]] = {}
    for statement in allowed:
        dynamodb = [a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")]
        if not dynamodb:
            continue
        condition = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for action in dynamodb:
            grants.setdefault(action, set()).update(as_list(condition))
    for protected in ("dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"):
        assert "INST#*" not in grants.get(protected, set()), protected
    assert grants["dynamodb:DeleteItem"] == {"IDEMPOTENCY#*"}
    assert grants["dynamodb:PutItem"] == {"INST#*", "TASK#*", "SUBJECT#*", "IDEMPOTENCY#*"}
    assert grants["dynamodb:Query"] >= {"INST#*", "TASK#*", "SUBJ#*", "ITASK#*", "OPEN#*", "WFST#*"}
    assert not {"WAIT#*", "PARKED#*"} & set().union(*grants.values())
    (deny,) = [s for s in statements if s.get("Effect") == "Deny"]
    assert deny["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["INST#*"]}}
    (put,) = [s for s in allowed if "events:PutEvents" in as_list(s["Action"])]
    assert sorted(put["Condition"]["StringEquals"]["events:source"]) == sorted(PARTNER_SOURCES)
    assert "careflow.workflow" not in PARTNER_SOURCES
    (answers,) = [s for s in allowed if s["Sid"] == "AnswerTaskTokens"]
    assert as_list(answers["Action"]) == ["states:SendTaskSuccess"]


def test_the_bus_policy_names_exactly_the_api_functions_role(dev: Synth) -> None:
    _, function = _api_function(dev)
    role_id = str(render(function["Role"])).strip("<>").split(".")[0]
    role = dev.templates[ROLE]["Resources"][role_id]["Properties"]
    assert (role["Path"], role["RoleName"]) == ("/careflow-dev/", "careflow-dev-api")
    (bus,) = dev.resources("events", "AWS::Events::EventBus").values()
    relayed = {
        str(render(arn))
        for statement in bus["Properties"]["Policy"]["Statement"]
        if statement["Sid"].endswith("EventsOnlyFromItsPublisherRole")
        for arn in as_list(statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    }
    assert f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role{role['Path']}{role['RoleName']}" in (
        relayed
    )


def test_the_resource_server_has_exactly_the_contracts_scopes(dev: Synth) -> None:
    _, server = _one(dev, "AWS::Cognito::UserPoolResourceServer")
    assert server["Identifier"] == RESOURCE_SERVER
    assert {s["ScopeName"]: s["ScopeDescription"] for s in server["Scopes"]} == SCOPES


def _clients(dev: Synth) -> dict[str, dict[str, Any]]:
    """Client name -> properties, scopes rendered (``<ResourceServer>/x`` -> ``careflow/x``:
    the resource server's Ref is its identifier, and orders the client after it)."""
    server_id, _ = _one(dev, "AWS::Cognito::UserPoolResourceServer")
    clients = {}
    for client in _resources(dev, "AWS::Cognito::UserPoolClient").values():
        props = dict(client["Properties"])
        props["AllowedOAuthScopes"] = [
            str(render(scope)).replace(f"<{server_id}>", RESOURCE_SERVER)
            for scope in props["AllowedOAuthScopes"]
        ]
        clients[props["ClientName"]] = props
    return clients


def test_each_partner_client_has_exactly_its_scopes_by_client_credentials(dev: Synth) -> None:
    api = dev.stacks.config.api
    assert api is not None
    clients = _clients(dev)
    assert set(clients) == {p.name for p in api.partners} | {"people"}
    for partner in api.partners:
        client = clients[partner.name]
        assert client["AllowedOAuthFlows"] == ["client_credentials"]
        assert client["AllowedOAuthFlowsUserPoolClient"] is True
        assert client["GenerateSecret"] is True
        assert sorted(client["AllowedOAuthScopes"]) == sorted(scope_name(s) for s in partner.scopes)
    people = clients["people"]
    assert people["AllowedOAuthFlows"] == ["code"]
    assert "GenerateSecret" not in people or people["GenerateSecret"] is False
    assert {s for s in people["AllowedOAuthScopes"] if s.startswith(f"{RESOURCE_SERVER}/")} == {
        scope_name(s) for s in api.user_scopes
    }


def test_people_carry_facilities_and_roles_that_no_client_may_write(dev: Synth) -> None:
    _, pool = _one(dev, "AWS::Cognito::UserPool")
    custom = {a["Name"] for a in pool["Schema"]}
    assert {"facilities", "roles"} <= custom
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON"
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 14
    for name, client in _clients(dev).items():
        assert not any(a.startswith("custom:") for a in client.get("WriteAttributes", [])), name
        assert {"custom:facilities", "custom:roles"} <= set(client["ReadAttributes"]), name


def test_the_waf_limit_per_ip_may_not_cut_below_a_partners_usage_plan() -> None:
    from stacks.config import api_config

    settings = {
        "stage": "live",
        "throttle": {"rate_limit": 100, "burst_limit": 200},
        "waf_requests_per_5_minutes_per_ip": 1000,
        "user_scopes": ["tasks.work"],
        "partners": {
            "busy": {
                "scopes": ["events.write"],
                "rate_limit": 50,
                "burst_limit": 100,
                "quota_per_day": 1000,
            }
        },
    }
    with pytest.raises(ValueError, match="below a partner's usage plan"):
        api_config(settings, [])
    settings["waf_requests_per_5_minutes_per_ip"] = 15000
    assert api_config(settings, []).waf_requests_per_5_minutes_per_ip == 15000
    settings["user_scopes"] = ["tasks.write"]
    with pytest.raises(ValueError, match="scopes the contract does not"):
        api_config(settings, [])


def _api_alarms(dev: Synth) -> dict[str, dict[str, Any]]:
    from stacks.constructs.api_alarms import DESCRIPTION_PREFIX

    return {
        a["Properties"]["AlarmDescription"]: a["Properties"]
        for a in dev.resources("observability", "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmDescription"].startswith(DESCRIPTION_PREFIX)
    }


def test_api_alarms_watch_errors_latency_throttling_and_waf_and_page_the_ops_topic(
    dev: Synth,
) -> None:
    from stacks.constructs.api_alarms import THRESHOLDS

    (topic_id,) = dev.resources("observability", "AWS::SNS::Topic")
    alarms = _api_alarms(dev)
    assert len(alarms) == len(THRESHOLDS)
    watched = set()
    for alarm in alarms.values():
        assert [render(a) for a in alarm["AlarmActions"]] == [f"<{topic_id}>"]
        assert [render(a) for a in alarm["OKActions"]] == [f"<{topic_id}>"]
        stat = alarm.get("ExtendedStatistic") or alarm["Statistic"]
        watched.add((alarm["Namespace"], alarm["MetricName"], stat))
    assert watched == {
        ("AWS/ApiGateway", "5XXError", "Sum"),
        ("AWS/ApiGateway", "Latency", "p99"),
        ("AWS/ApiGateway", "IntegrationLatency", "p99"),
        ("AWS/ApiGateway", "4XXError", "Average"),
        ("Careflow/Api", "ThrottledRequests", "Sum"),
        ("AWS/WAFV2", "BlockedRequests", "Sum"),
        ("AWS/Lambda", "Errors", "Sum"),
        ("AWS/Lambda", "Throttles", "Sum"),
    }


def test_429s_are_counted_from_the_access_log(dev: Synth) -> None:
    _, metric_filter = _one(dev, "AWS::Logs::MetricFilter")
    assert metric_filter["FilterPattern"] == '{ $.status = "429" }'
    (transform,) = metric_filter["MetricTransformations"]
    assert (transform["MetricNamespace"], transform["MetricName"]) == (
        "Careflow/Api",
        "ThrottledRequests",
    )
    _, access_logs = _one(dev, "AWS::ApiGateway::Stage")
    assert '"status":"$context.status"' in access_logs["AccessLogSetting"]["Format"].replace(
        " ", ""
    )


def test_access_tokens_get_facilities_from_a_v3_pre_token_generation_trigger(dev: Synth) -> None:
    _, pool = _one(dev, "AWS::Cognito::UserPool")
    assert pool["UserPoolTier"] in ("ESSENTIALS", "PLUS")  # V3 needs one of them
    trigger = pool["LambdaConfig"]["PreTokenGenerationConfig"]
    assert trigger["LambdaVersion"] == "V3_0"
    (function_id,) = [
        i
        for i, r in _resources(dev, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == "token_claims.handler"
    ]
    assert render(trigger["LambdaArn"]) == f"<{function_id}.Arn>"
    function = _resources(dev, "AWS::Lambda::Function")[function_id]["Properties"]
    parameter_name = function["Environment"]["Variables"]["PARTNER_FACILITIES_PARAMETER"]
    assert parameter_name == "/careflow-dev/api/partner-facilities"


def test_the_trigger_maps_each_partners_client_id_to_its_configured_facilities(
    dev: Synth,
) -> None:
    config = dev.stacks.config.api
    assert config is not None and all(p.facilities for p in config.partners)
    _, parameter = _one(dev, "AWS::SSM::Parameter")
    clients = {
        r["Properties"]["ClientName"]: logical_id
        for logical_id, r in _resources(dev, "AWS::Cognito::UserPoolClient").items()
    }
    mapping = json.loads(render(parameter["Value"]))
    assert mapping == {f"<{clients[p.name]}>": sorted(p.facilities) for p in config.partners}
    statements = [
        s
        for s in policy_statements(dev, _trigger_role(dev), ROLE)
        if s.get("Sid") == "ReadPartnerFacilities"
    ]
    (statement,) = statements
    assert as_list(statement["Action"]) == ["ssm:GetParameter"]
    assert render(statement["Resource"]).endswith(":parameter/careflow-dev/api/partner-facilities")


def _trigger_role(dev: Synth) -> str:
    (function,) = [
        r
        for r in _resources(dev, "AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == "token_claims.handler"
    ]
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def test_preflight_is_answered_by_the_gateway_for_the_environments_origins_only(
    dev: Synth, prod: Synth
) -> None:
    dev_api = dev.stacks.config.api
    assert dev_api is not None and dev_api.cors_origins  # dev: the local console's origin
    preflights = {path: m for (verb, path), m in _all_methods(dev).items() if verb == "OPTIONS"}
    assert {route.path for route in ROUTES} <= set(preflights)
    for method in preflights.values():
        assert method["AuthorizationType"] == "NONE" and method["Integration"]["Type"] == "MOCK"
        template = json.dumps(method["Integration"])
        assert all(origin in template for origin in dev_api.cors_origins)
        assert "'*'" not in template.split("Access-Control-Allow-Origin")[-1][:40]
    prod_api = prod.stacks.config.api
    assert prod_api is not None and prod_api.cors_origins == ()
    assert not [k for k in _all_methods(prod) if k[0] == "OPTIONS"]


def test_the_handler_is_told_the_same_origins_as_the_gateway(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        api = synth.stacks.config.api
        assert api is not None
        _, function = _api_function(synth)
        variables = function["Environment"]["Variables"]
        assert variables["CORS_ALLOWED_ORIGINS"] == ",".join(api.cors_origins)


def test_every_gateway_refusal_answers_a_problem_detail(dev: Synth) -> None:
    from careflow.api.problems import CONTENT_TYPE, GATEWAY_PROBLEMS
    from stacks.constructs.gateway_problems import DEFAULTS

    responses = {
        props["ResponseType"]: props
        for props in (
            r["Properties"] for r in _resources(dev, "AWS::ApiGateway::GatewayResponse").values()
        )
    }
    assert set(responses) == set(GATEWAY_PROBLEMS)
    for kind, (status, title, detail) in GATEWAY_PROBLEMS.items():
        props = responses[kind]
        headers = props["ResponseParameters"]
        assert headers["gatewayresponse.header.Content-Type"] == f"'{CONTENT_TYPE}'"
        body = props["ResponseTemplates"]["application/json"]
        if kind in DEFAULTS:  # API Gateway's own status and message
            assert "StatusCode" not in props and "$context.error.messageString" in body
            continue
        assert props["StatusCode"] == str(status)
        assert json.loads(body) == {
            "type": f"https://careflow.dev/problems/{title.lower().replace(' ', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
        }
    for throttled in ("THROTTLED", "QUOTA_EXCEEDED"):
        retry = responses[throttled]["ResponseParameters"]["gatewayresponse.header.Retry-After"]
        assert int(retry.strip("'")) >= 1
