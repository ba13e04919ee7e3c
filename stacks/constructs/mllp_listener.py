"""HL7 v2 over MLLP on AWS: a long-lived TCP listener, which neither API Gateway nor Lambda
offers (docs/decisions.md). Off by default (``careflow:hl7.mllp_enabled``): ER7 over HTTPS,
``POST /v1/hl7v2``, is the serverless path.

- a VPC of its own: two AZs, isolated private subnets (no internet gateway, no NAT), and
  VPC endpoints for what the tasks call (ECR, S3 for image layers, CloudWatch Logs, KMS,
  STS, EventBridge, DynamoDB); its flow logs go to the access-log bucket;
- an internal Network Load Balancer with a TLS listener on the MLLP port (the ACM
  certificate from config, TLS 1.2+ policy), whose security group admits only the
  interface engine's CIDRs; it forwards plain TCP to the tasks inside the VPC;
- an ECS Fargate service (arm64, 0.25 vCPU / 0.5 GB, at least two tasks spread over the
  AZs, 100% minimum healthy, circuit breaker with rollback) running
  ``python -m careflow.adapters.hl7v2.mllp_service`` from ``containers/mllp/Dockerfile``;
- roles written out like every careflow role (stacks/constructs/execution_role.py): the
  task role holds ``MLLP_ACCESS`` (stacks/permissions.py) and nothing else.

The image is a ``DockerImageAsset``: synth only stages the build context into cdk.out
(no Docker needed); ``cdk deploy`` (cdk-assets) builds it for linux/arm64 and pushes it to
the bootstrap's container-assets repository, so the machine that deploys needs Docker.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.compliance import acknowledge
from stacks.config import EnvironmentConfig, Hl7Config
from stacks.constructs.execution_role import ExecutionRole
from stacks.constructs.operations import METRICS_NAMESPACE, SERVICE_NAME
from stacks.permissions import MLLP_ACCESS

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "containers/mllp/Dockerfile"
# The listener's entry point (careflow/adapters/hl7v2/mllp_service.py); the Dockerfile's CMD.
ENTRY_POINT = ("python", "-m", "careflow.adapters.hl7v2.mllp_service")
CONTAINER_NAME = "mllp"
TLS_POLICY = elbv2.SslPolicy.RECOMMENDED_TLS  # ELBSecurityPolicy-TLS13-1-2-2021-06: TLS 1.2+
# The build context is the repository; only what the image copies is staged into cdk.out.
BUILD_CONTEXT_EXCLUDE = [
    "*",
    "!containers/mllp",
    "!layers/requirements.txt",
    "!layers/runtime",
    "**/__pycache__",
    "**/*.pyc",
]
NLB_LOG_PREFIX = "nlb"
ECR_PULL = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


def mllp_role_name(config: EnvironmentConfig) -> str:
    """Named, so the bus policy (events stack) can let the listener put HL7 events."""
    return f"{config.prefix}-mllp"


def mllp_role_arn(stack: Stack, config: EnvironmentConfig) -> str:
    return stack.format_arn(
        service="iam",
        region="",
        resource="role",
        resource_name=f"{config.role_path.strip('/')}/{mllp_role_name(config)}",
    )


class MllpListener(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        table_arn: str,
        table_name: str,
        state_key: kms.IKey,
        logs_key: kms.IKey,
        bus_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        hl7 = config.hl7
        if not hl7.mllp_enabled or hl7.certificate_arn is None:
            raise ValueError("MllpListener needs careflow:hl7.mllp_enabled and certificate_arn")
        self.port = hl7.port
        self.desired_count = hl7.desired_count
        self.access_logs = self._access_log_bucket(config)
        self.vpc = self._network(hl7)

        # --- who may reach it: the interface engine's CIDRs, then only the NLB -----------
        self.load_balancer_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self.vpc,
            description="MLLP over TLS from the interface engine addresses only",
            allow_all_outbound=False,
        )
        for cidr in hl7.allowed_cidrs:
            peer = ec2.Peer.ipv6(cidr) if ":" in cidr else ec2.Peer.ipv4(cidr)
            self.load_balancer_security_group.add_ingress_rule(
                peer, ec2.Port.tcp(hl7.port), f"interface engine {cidr}"
            )
        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="MLLP listener tasks: from the NLB only; out to the VPC endpoints",
            allow_all_outbound=False,
        )
        # HTTPS out: the interface endpoints and the S3/DynamoDB gateway endpoints (whose
        # addresses are AWS's); the isolated subnets route nowhere else.
        self.task_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the VPC endpoints"
        )
        self.task_security_group.add_ingress_rule(
            self.load_balancer_security_group, ec2.Port.tcp(hl7.port), "from the NLB"
        )
        self.load_balancer_security_group.add_egress_rule(
            self.task_security_group, ec2.Port.tcp(hl7.port), "to the listener tasks"
        )
        self._interface_endpoints()

        # --- the service ---------------------------------------------------------------
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            cluster_name=f"{config.prefix}-hl7",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/careflow/{config.prefix}/mllp",
            retention=config.log_retention_period,
            encryption_key=logs_key,
            removal_policy=config.removal_policy,
        )
        self.image = ecr_assets.DockerImageAsset(
            self,
            "Image",
            directory=str(REPO_ROOT),
            file=DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_ARM64,
            exclude=BUILD_CONTEXT_EXCLUDE,
            ignore_mode=IgnoreMode.DOCKER,
        )
        self.execution_role = ExecutionRole(
            self,
            "ExecutionRole",
            service="ecs-tasks.amazonaws.com",
            description=f"{config.prefix} MLLP listener: pulls its image, writes its logs",
            path=config.role_path,
        )
        self.execution_role.allow("PullImage", ECR_PULL, [self.image.repository.repository_arn])
        self.execution_role.allow_any_resource(
            "EcrAuthorization",
            ["ecr:GetAuthorizationToken"],
            reason=(
                "ecr:GetAuthorizationToken returns the registry login token and has no "
                "resource-level permissions: AWS requires Resource '*'. The image pull "
                "itself is limited to the container-assets repository (PullImage)."
            ),
        )
        self.execution_role.write_logs(self.log_group)
        self.task_role = ExecutionRole(
            self,
            "TaskRole",
            service="ecs-tasks.amazonaws.com",
            description=f"{config.prefix} MLLP listener: stores HL7 v2 messages, puts events",
            path=config.role_path,
            role_name=mllp_role_name(config),
        )
        self.task_role.table_items(table_arn, MLLP_ACCESS.items, state_key)
        self.task_role.put_events(bus_arn, MLLP_ACCESS.event_sources)

        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            family=f"{config.prefix}-mllp",
            cpu=256,
            memory_limit_mib=512,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_role=self.task_role.immutable,
            execution_role=self.execution_role.immutable,
        )
        self.execution_role.is_required_by(self.task_definition)
        self.task_role.is_required_by(self.task_definition)
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=ecs.ContainerImage.from_docker_image_asset(self.image),
            command=list(ENTRY_POINT),
            essential=True,
            readonly_root_filesystem=True,
            port_mappings=[
                ecs.PortMapping(container_port=hl7.port, protocol=ecs.Protocol.TCP, name="mllp")
            ],
            logging=ecs.LogDrivers.aws_logs(stream_prefix="mllp", log_group=self.log_group),
            environment={
                "TABLE_NAME": table_name,
                "EVENT_BUS_NAME": config.event_bus_name,
                "MLLP_HOST": "0.0.0.0",  # noqa: S104 - the task's own ENI, behind the NLB
                "MLLP_PORT": str(hl7.port),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The environment holds only non-secret settings (the table's and the bus's "
            "names, the port, the Powertools service and namespace), the same values the "
            "functions get as Lambda environment variables; there are no secrets to move "
            "to Secrets Manager: the task authenticates to AWS with its task role.",
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            service_name=f"{config.prefix}-mllp",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=hl7.desired_count,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.task_security_group],
            assign_public_ip=False,
            enable_execute_command=False,
            platform_version=ecs.FargatePlatformVersion.LATEST,
        )

        # --- the load balancer ------------------------------------------------------------
        self.load_balancer = elbv2.NetworkLoadBalancer(
            self,
            "LoadBalancer",
            load_balancer_name=f"{config.prefix}-mllp",
            vpc=self.vpc,
            internet_facing=False,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.load_balancer_security_group],
            cross_zone_enabled=True,
            deletion_protection=config.deletion_protection,
        )
        self._log_access(config)
        if not config.deletion_protection:
            acknowledge(
                self.load_balancer,
                "HIPAA.Security-ELBDeletionProtectionEnabled",
                "Deletion protection follows the environment's deletion_protection setting: "
                "on in prod; off in dev, which holds synthetic data and is torn down freely.",
            )
        self.listener = self.load_balancer.add_listener(
            "Tls",
            port=hl7.port,
            protocol=elbv2.Protocol.TLS,
            certificates=[elbv2.ListenerCertificate.from_arn(hl7.certificate_arn)],
            ssl_policy=TLS_POLICY,
        )
        self.target_group = self.listener.add_targets(
            "Tasks",
            port=hl7.port,
            protocol=elbv2.Protocol.TCP,
            targets=[
                self.service.load_balancer_target(
                    container_name=CONTAINER_NAME, container_port=hl7.port
                )
            ],
            health_check=elbv2.HealthCheck(
                protocol=elbv2.Protocol.TCP,
                interval=Duration.seconds(10),
                healthy_threshold_count=2,
                unhealthy_threshold_count=2,
            ),
            # A stopping task's MLLP connections are closed once it is deregistered, so
            # the interface engine reconnects to a healthy task (and resends unACKed).
            deregistration_delay=Duration.seconds(60),
        )
        self.target_group.set_attribute(
            "deregistration_delay.connection_termination.enabled", "true"
        )
        # CDK makes the service wait for the listener and its target group; the target
        # group's Ref already orders it (cfn-lint W3005), so the listener alone remains.
        service = self.service.node.default_child
        listener = self.listener.node.default_child
        assert isinstance(service, ecs.CfnService) and isinstance(listener, elbv2.CfnListener)
        service.add_override("DependsOn", [Stack.of(self).get_logical_id(listener)])

    def _interface_endpoints(self) -> None:
        """What the tasks call, over HTTPS inside the VPC: from the tasks' group only."""
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from the MLLP listener tasks only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.task_security_group, ec2.Port.tcp(443), "from the listener tasks"
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for name, interface in {
            "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
            "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
            "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
            "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
            "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
            "Events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
        }.items():
            self.vpc.add_interface_endpoint(
                name,
                service=interface,
                subnets=isolated,
                private_dns_enabled=True,
                security_groups=[self.endpoint_security_group],
                open=False,
            )

    def _log_access(self, config: EnvironmentConfig) -> None:
        """NLB access logs (TLS listeners) to the bucket. Written out rather than
        ``log_access_logs``, which needs the stack's region at synth (the templates are
        environment-agnostic): an NLB delivers as ``delivery.logs.amazonaws.com``."""
        stack = Stack.of(self)
        bucket = self.access_logs
        this_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NlbAccessLogDelivery",
                principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{NLB_LOG_PREFIX}/AWSLogs/{stack.account}/*")],
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    }
                },
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NlbAccessLogAclCheck",
                principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
                actions=["s3:GetBucketAcl"],
                resources=[bucket.bucket_arn],
                conditions=this_account,
            )
        )
        self.load_balancer.set_attribute("access_logs.s3.enabled", "true")
        self.load_balancer.set_attribute("access_logs.s3.bucket", bucket.bucket_name)
        self.load_balancer.set_attribute("access_logs.s3.prefix", NLB_LOG_PREFIX)
        # ELB checks that it may write when the attribute is set.
        assert bucket.policy is not None
        self.load_balancer.node.add_dependency(bucket.policy)

    def _access_log_bucket(self, config: EnvironmentConfig) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(config.archive_retention_days),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            # Never DESTROY: CloudFormation cannot delete a bucket that holds logs.
            removal_policy=RemovalPolicy.RETAIN,
        )
        for rule_id, reason in {
            "AwsSolutions-S1": (
                "This bucket receives the NLB's access logs and the VPC's flow logs; "
                "logging its own access would need another bucket, logging to itself loops."
            ),
            "HIPAA.Security-S3BucketLoggingEnabled": (
                "This bucket is itself the access-log destination (NLB access logs, VPC flow "
                "logs); server access logging of a log bucket would need a second bucket."
            ),
            "HIPAA.Security-S3BucketReplicationEnabled": (
                "Connection metadata (client IP, TLS, bytes) of one region's load balancer "
                "and VPC; no PHI, no recovery need that cross-region replication would serve."
            ),
            "HIPAA.Security-S3DefaultEncryptionKMS": (
                "Encrypted with SSE-S3 (AES-256). Log delivery writes as the "
                "delivery.logs.amazonaws.com principal, and careflow's logs key admits only "
                "CloudWatch Logs; the objects hold connection metadata, never message content."
            ),
        }.items():
            acknowledge(bucket, rule_id, reason)
        return bucket

    def _network(self, hl7: Hl7Config) -> ec2.Vpc:
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(hl7.vpc_cidr),
            max_azs=2,
            nat_gateways=0,
            create_internet_gateway=False,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            # CDK closes the default security group with a custom-resource Lambda (its own
            # role, inline policy, runtime); nothing here uses the default group instead.
            restrict_default_security_group=False,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(self.access_logs, "vpc-flow-logs/"),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        acknowledge(
            vpc,
            "HIPAA.Security-VPCDefaultSecurityGroupClosed",
            "Nothing in this VPC uses its default security group: the tasks, the NLB and "
            "the interface endpoints each have their own. Closing it takes CDK's "
            "custom-resource Lambda (with an inline-policy role) for no change in exposure.",
        )
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for name, service in {
            "S3": ec2.GatewayVpcEndpointAwsService.S3,  # ECR image layers
            "DynamoDb": ec2.GatewayVpcEndpointAwsService.DYNAMODB,
        }.items():
            vpc.add_gateway_endpoint(name, service=service, subnets=[isolated])
        return vpc
