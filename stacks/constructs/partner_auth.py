"""Who may call the ``/v1`` API: a Cognito user pool, its ``careflow`` resource server with
the contract's scopes, one client-credentials app client per partner (exactly its configured
scopes) and one app client for the people who work tasks.

People's tokens carry ``custom:facilities`` and ``custom:roles``; administrators set them,
no app client may write them. A partner's client-credentials token carries the facilities
``careflow:api`` gives the partner: the pre token generation trigger (event version 3, the
one that covers client credentials; it needs the Essentials or Plus feature plan) adds
them, read from an SSM parameter of client id -> facilities written here at deploy. The
trigger also copies a person's facilities and roles into their access token.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from careflow.api.contract import RESOURCE_SERVER, SCOPES
from stacks.config import ApiConfig, EnvironmentConfig

FACILITIES = "facilities"
ROLES = "roles"
ACCESS_TOKEN_HOURS = 1


class PartnerAuth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        api: ApiConfig,
        token_claims: lambda_.IFunction,
        partner_facilities_parameter: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.pool = cognito.UserPool(
            self,
            "UserPool",
            user_pool_name=f"{config.prefix}-api",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(1),
            ),
            # TOTP only: SMS would need an SNS role and is the weaker factor.
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(sms=False, otp=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            custom_attributes={
                FACILITIES: cognito.StringAttribute(min_len=1, max_len=2048, mutable=True),
                ROLES: cognito.StringAttribute(min_len=1, max_len=2048, mutable=True),
            },
            deletion_protection=config.deletion_protection,
            removal_policy=config.removal_policy,
        )
        self.pool.add_trigger(
            cognito.UserPoolOperation.PRE_TOKEN_GENERATION_CONFIG,
            token_claims,
            lambda_version=cognito.LambdaVersion.V3_0,
        )
        self.resource_server = self.pool.add_resource_server(
            "ResourceServer",
            identifier=RESOURCE_SERVER,
            user_pool_resource_server_name=f"{config.prefix}-api",
            scopes=[
                cognito.ResourceServerScope(scope_name=name, scope_description=description)
                for name, description in SCOPES.items()
            ],
        )
        # The hosted token endpoint (client credentials, authorization code). A prefix domain
        # must be unique in the region: the account id makes it so.
        self.domain = self.pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=f"{config.prefix}-{Stack.of(self).account}"
            ),
        )
        self.partner_clients: dict[str, cognito.UserPoolClient] = {
            partner.name: self._client(
                partner.name,
                partner.scopes,
                cognito.OAuthFlows(client_credentials=True),
                generate_secret=True,
            )
            for partner in api.partners
        }
        self.partner_facilities = ssm.StringParameter(
            self,
            "PartnerFacilities",
            parameter_name=partner_facilities_parameter,
            description="careflow partners' facilities by app client id (custom:facilities)",
            string_value=Stack.of(self).to_json_string(
                {
                    self.partner_clients[p.name].user_pool_client_id: sorted(p.facilities)
                    for p in api.partners
                }
            ),
        )
        self.user_client = self._client(
            "people",
            api.user_scopes,
            cognito.OAuthFlows(authorization_code_grant=True),
            generate_secret=False,
            callback_urls=list(api.callback_urls),
            standard_scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
        )

    def _client(
        self,
        name: str,
        scopes: tuple[str, ...],
        flows: cognito.OAuthFlows,
        *,
        generate_secret: bool,
        callback_urls: list[str] | None = None,
        standard_scopes: list[cognito.OAuthScope] | None = None,
    ) -> cognito.UserPoolClient:
        # Clients may read who a person is and their facilities and roles; none may write them.
        read = (
            cognito.ClientAttributes()
            .with_standard_attributes(email=True, email_verified=True)
            .with_custom_attributes(FACILITIES, ROLES)
        )
        return self.pool.add_client(
            f"{name.title().replace('-', '')}Client",
            user_pool_client_name=name,
            generate_secret=generate_secret,
            # No password flows: people sign in on the hosted UI, partners by client credentials.
            auth_flows=cognito.AuthFlow(),
            o_auth=cognito.OAuthSettings(
                flows=flows,
                callback_urls=callback_urls,
                scopes=[
                    *(standard_scopes or []),
                    *(
                        cognito.OAuthScope.resource_server(
                            self.resource_server,
                            cognito.ResourceServerScope(
                                scope_name=scope, scope_description=SCOPES[scope]
                            ),
                        )
                        for scope in sorted(scopes)
                    ),
                ],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            read_attributes=read,
            write_attributes=cognito.ClientAttributes(),
            access_token_validity=Duration.hours(ACCESS_TOKEN_HOURS),
            id_token_validity=Duration.hours(ACCESS_TOKEN_HOURS),
            refresh_token_validity=Duration.hours(12),
            enable_token_revocation=True,
            prevent_user_existence_errors=True,
        )
