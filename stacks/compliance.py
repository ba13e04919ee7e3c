"""cdk-nag packs (AwsSolutions, HIPAA Security) and the one way to acknowledge a finding.

cdk-nag 3 runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins``), not as
an Aspect, and findings are acknowledged with ``Validations.of(construct).acknowledge`` (the
v2 ``NagSuppressions`` API no longer exists). A finding that is not acknowledged fails
``app.synth()``. Acknowledgments are also written into the templates' ``Metadata.cdk_nag``
so the audit trail travels with what is deployed.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aspects, IPolicyValidationPlugin, Validations
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    WriteNagSuppressionsToCloudFormationAspect,
)
from constructs import IConstruct


def compliance_packs(app: IConstruct) -> list[IPolicyValidationPlugin]:
    return [AwsSolutionsChecks(app, verbose=True), HIPAASecurityChecks(app, verbose=True)]


def record_acknowledgments_in_templates(app: IConstruct) -> None:
    """Copy every acknowledgment (rule id and reason) into ``Metadata.cdk_nag``."""
    Aspects.of(app).add(WriteNagSuppressionsToCloudFormationAspect())


def add_compliance_checks(app: IConstruct) -> None:
    Validations.of(app).add_plugins(*compliance_packs(app))


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one finding on ``scope`` and everything below it, with the reason why."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
