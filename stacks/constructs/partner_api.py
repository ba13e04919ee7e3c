"""The ``/v1`` REST API, built from the contract's route table (careflow.api.contract).

- every route is a resource and a method with a Lambda proxy integration to one function;
  a route with a scope takes a Cognito access token carrying exactly that scope, health
  takes none;
- the version is the first path segment (``/v1/...``, as the contract writes it); the one
  stage (``careflow:api`` ``stage``) is not the version;
- a route whose scope only partners hold also takes the partner's API key, which ties it
  to the partner's usage plan (throttle, daily quota);
- the gateway rejects a request without its path parameters or, on a ``workflows.write``
  route (a start), without its ``Idempotency-Key`` header; bodies are validated by the
  handler's models (one error map);
- access logs (no PHI: identifiers, the route template, status, latency) go to a log group
  encrypted with careflow's logs key; execution logging is off; X-Ray and metrics are on;
- the gateway's own refusals answer as problem details (gateway_problems.py), as the
  handler's do;
- a WAFv2 web ACL on the stage: a rate limit per client IP and the AWS common rule set.
"""

from __future__ import annotations

import json
import re

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from careflow.api.contract import ROUTES, Route, scope_name
from careflow.api.cors import ALLOW_HEADERS, MAX_AGE_SECONDS
from stacks.compliance import acknowledge
from stacks.config import WAF_WINDOW_SECONDS, ApiConfig, EnvironmentConfig, PartnerConfig
from stacks.constructs.gateway_problems import add_problem_responses

IDEMPOTENCY_HEADER = "Idempotency-Key"
API_METRICS_NAMESPACE = "Careflow/Api"
THROTTLED_METRIC = "ThrottledRequests"
STARTS = "workflows.write"  # the scope of the routes that start an instance
# One JSON object per request: who called (ids), which route (the template, never the path
# with its ids or the query string), what came of it. No body, no query string, no headers.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "clientId": "$context.authorizer.claims.client_id",
    "subject": "$context.authorizer.claims.sub",
    "apiKeyId": "$context.identity.apiKeyId",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "errorType": "$context.error.responseType",
    "wafResponseCode": "$context.wafResponseCode",
    "xrayTraceId": "$context.xrayTraceId",
}


def path_parameters(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


class PartnerApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        api: ApiConfig,
        function: lambda_.IFunction,
        user_pool: cognito.IUserPool,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=f"/aws/apigateway/{config.prefix}-api/access",
            retention=config.log_retention_period,
            encryption_key=logs_key,
            removal_policy=config.removal_policy,
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{config.prefix}-api",
            description="careflow partner API (/v1): workflows, tasks, events, policies",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            default_cors_preflight_options=self._preflight(api),
            cloud_watch_role=False,
            deploy=True,
            deploy_options=apigw.StageOptions(
                stage_name=api.stage,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.OFF,
                data_trace_enabled=False,
                throttling_rate_limit=api.rate_limit,
                throttling_burst_limit=api.burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT)),
            ),
        )
        self.stage = self.rest_api.deployment_stage
        self.problem_responses = add_problem_responses(self.rest_api)
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "Authorizer",
            authorizer_name=f"{config.prefix}-api-cognito",
            cognito_user_pools=[user_pool],
        )
        # Body validation is on, but bites only on a method with a request model: none has
        # one today (the handler's models validate bodies, with the one error map).
        self.validator = apigw.RequestValidator(
            self,
            "RequestValidator",
            rest_api=self.rest_api,
            request_validator_name="parameters-and-body",
            validate_request_parameters=True,
            validate_request_body=True,
        )
        integration = apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        self.methods: dict[tuple[str, str], apigw.Method] = {
            (route.method, route.path): self._method(route, integration, api) for route in ROUTES
        }
        self.usage_plans = {
            partner.name: self._usage_plan(partner, api) for partner in api.partners
        }
        self.web_acl = self._web_acl(config, api)
        self.waf_logs = self._waf_logging(config, logs_key)
        self.throttled = self._throttled_metric(config)
        self._acknowledge_preflight()
        self._acknowledge_stage_choices()

    @staticmethod
    def _preflight(api: ApiConfig) -> apigw.CorsOptions | None:
        """The gateway answers preflight itself (a mock integration on every resource) for
        the environment's origins, as the handler does (careflow.api.cors); none, none."""
        if not api.cors_origins:
            return None
        return apigw.CorsOptions(
            allow_origins=list(api.cors_origins),
            allow_methods=sorted({route.method for route in ROUTES}),
            allow_headers=list(ALLOW_HEADERS),
            max_age=Duration.seconds(MAX_AGE_SECONDS),
        )

    def _acknowledge_preflight(self) -> None:
        for method in self.rest_api.methods:
            if method.http_method == "OPTIONS":
                for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                    acknowledge(
                        method,
                        rule_id,
                        "A CORS preflight (OPTIONS) carries no credentials by the browser's "
                        "rules: a mock integration answers it with the allowed origin, "
                        "methods and headers, and reaches no function or data.",
                    )

    def _throttled_metric(self, config: EnvironmentConfig) -> cloudwatch.Metric:
        """Requests answered 429 (stage or usage-plan throttle, quota): API Gateway has no
        metric of its own for them, so the access log's ``status`` is counted."""
        metric_filter = logs.MetricFilter(
            self,
            "ThrottledRequests",
            log_group=self.access_logs,
            metric_namespace=API_METRICS_NAMESPACE,
            metric_name=THROTTLED_METRIC,
            filter_pattern=logs.FilterPattern.string_value("$.status", "=", "429"),
            metric_value="1",
            default_value=0,
        )
        return metric_filter.metric(statistic=cloudwatch.Stats.SUM)

    def _acknowledge_stage_choices(self) -> None:
        stage = self.stage
        for rule_id in ("AwsSolutions-APIG6", "HIPAA.Security-APIGWExecutionLoggingEnabled"):
            acknowledge(
                stage,
                rule_id,
                "Execution logging is off on purpose: it needs the account-wide API Gateway "
                "CloudWatch role (one AWS::ApiGateway::Account per account and region, shared "
                "by every API) and writes to a log group API Gateway creates itself, without "
                "careflow's KMS key or a retention. Every request is recorded instead in the "
                "stage's access log (KMS-encrypted, retained per environment: caller, route, "
                "status, latency, error type), the function's own logs and X-Ray traces.",
            )
        acknowledge(
            stage,
            "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
            "No stage cache: every response depends on the caller's token (facilities, "
            "scopes) and on live workflow state, so a cached answer could reach another "
            "caller or be stale; with no cache there is no cached PHI to encrypt.",
        )
        acknowledge(
            stage,
            "HIPAA.Security-APIGWSSLEnabled",
            "A stage client certificate authenticates API Gateway to an HTTP backend; the "
            "only backend is a Lambda proxy integration, reached through the Lambda API "
            "(IAM-signed, TLS). Clients reach the stage over HTTPS only (API Gateway serves "
            "no plain HTTP).",
        )

    def _waf_logging(self, config: EnvironmentConfig, logs_key: kms.IKey) -> logs.LogGroup:
        """Blocked and counted requests only (the access log has every request), with the
        credentials and query strings redacted."""
        log_group = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=f"aws-waf-logs-{config.prefix}-api",  # WAF requires the prefix
            retention=config.log_retention_period,
            encryption_key=logs_key,
            removal_policy=config.removal_policy,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            # The group's ARN without the ``:*`` of its GetAtt, which WAF refuses.
            log_destination_configs=[
                Stack.of(self).format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name=log_group.log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "authorization"}
                ),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "x-api-key"}
                ),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(query_string={}),
            ],
            logging_filter={
                "DefaultBehavior": "DROP",
                "Filters": [
                    {
                        "Behavior": "KEEP",
                        "Requirement": "MEETS_ANY",
                        "Conditions": [
                            {"ActionCondition": {"Action": "BLOCK"}},
                            {"ActionCondition": {"Action": "COUNT"}},
                        ],
                    }
                ],
            },
        )
        return log_group

    def _method(self, route: Route, integration: apigw.Integration, api: ApiConfig) -> apigw.Method:
        parameters = {f"method.request.path.{name}": True for name in path_parameters(route.path)}
        if route.scope == STARTS:
            parameters[f"method.request.header.{IDEMPOTENCY_HEADER}"] = True
        resource = self.rest_api.root.resource_for_path(route.path)
        if route.scope is None:
            method = resource.add_method(
                route.method,
                integration,
                authorization_type=apigw.AuthorizationType.NONE,
                request_parameters=parameters or None,
                request_validator=self.validator,
            )
            for rule_id in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                acknowledge(
                    method,
                    rule_id,
                    f"{route.method} {route.path} is the health check of load balancers and "
                    "partners' monitors: it takes no token, reads nothing but whether the API "
                    "and its table answer, and returns no data; WAF and the stage throttle "
                    "still apply.",
                )
            return method
        return resource.add_method(
            route.method,
            integration,
            authorization_type=apigw.AuthorizationType.COGNITO,
            authorizer=self.authorizer,
            authorization_scopes=[scope_name(route.scope)],
            api_key_required=api.api_key_required(route.scope),
            request_parameters=parameters or None,
            request_validator=self.validator,
        )

    def _usage_plan(self, partner: PartnerConfig, api: ApiConfig) -> apigw.UsagePlan:
        construct_name = partner.name.title().replace("-", "")
        plan = self.rest_api.add_usage_plan(
            f"{construct_name}UsagePlan",
            name=f"{self.rest_api.rest_api_name}-{partner.name}",
            description=f"{partner.name}: throttle and daily quota of its API key",
            throttle=apigw.ThrottleSettings(
                rate_limit=partner.rate_limit, burst_limit=partner.burst_limit
            ),
            quota=apigw.QuotaSettings(limit=partner.quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
        )
        key = apigw.ApiKey(
            self,
            f"{construct_name}ApiKey",
            api_key_name=f"{self.rest_api.rest_api_name}-{partner.name}",
            description=f"{partner.name}'s API key (with its OAuth client; not a credential alone)",
            enabled=True,
        )
        plan.add_api_key(key)
        return plan

    def _web_acl(self, config: EnvironmentConfig, api: ApiConfig) -> wafv2.CfnWebACL:
        def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True,
                metric_name=metric,
                sampled_requests_enabled=False,  # sampled requests would keep request data
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{config.prefix}-api",
            description="careflow partner API: rate limit per IP, AWS common rules",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{config.prefix}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=api.waf_requests_per_5_minutes_per_ip,
                            evaluation_window_sec=WAF_WINDOW_SECONDS,
                        )
                    ),
                    visibility_config=visibility("RateLimitPerIp"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="AWSManagedRulesCommonRuleSet",
                    priority=1,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name="AWSManagedRulesCommonRuleSet",
                            # Its 8 KB body limit would block a payer's PAS notification
                            # Bundle; counted instead (API Gateway caps bodies at 10 MB).
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name="SizeRestrictions_BODY",
                                    action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                                )
                            ],
                        )
                    ),
                    visibility_config=visibility("AWSManagedRulesCommonRuleSet"),
                ),
            ],
        )
        self.web_acl_association = wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )
        return acl
