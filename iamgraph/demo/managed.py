"""AWS managed policies the demo organization attaches.

The documents are AWS's published ones: moto ships a copy of every AWS managed policy in its package
data (``moto.iam.aws_managed_policies``) and the demo loads the few it uses from there at generation
time. When moto is not installed (it is a test extra; ``make demo`` installs it) an abbreviated
document of the same shape, written here, stands in, and the policy's description says so.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from iamgraph.snapshot.model import ManagedPolicy, PolicyVersion

# name -> path, for the policies the demo attaches. AWS puts some under /service-role/ or /job-function/.
USED: dict[str, str] = {
    "AdministratorAccess": "/",
    "PowerUserAccess": "/",
    "ReadOnlyAccess": "/",
    "ViewOnlyAccess": "/job-function/",
    "SecurityAudit": "/",
    "IAMFullAccess": "/",
    "AmazonS3ReadOnlyAccess": "/",
    "AmazonEC2ReadOnlyAccess": "/",
    "AWSLambdaBasicExecutionRole": "/service-role/",
    "AmazonSSMManagedInstanceCore": "/",
    "AWSGlueServiceRole": "/service-role/",
    "AmazonECSTaskExecutionRolePolicy": "/service-role/",
    "AmazonSageMakerFullAccess": "/",
}


def _allow(actions: list[str] | str, resource: list[str] | str = "*") -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# Abbreviated stand-ins (same intent and shape as the published documents, fewer actions).
_FALLBACK: dict[str, dict[str, Any]] = {
    "AdministratorAccess": _doc(_allow("*")),
    "PowerUserAccess": _doc(
        {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"},
        _allow(
            [
                "account:GetAccountInformation",
                "account:ListRegions",
                "iam:CreateServiceLinkedRole",
                "iam:DeleteServiceLinkedRole",
                "iam:ListRoles",
                "organizations:DescribeOrganization",
            ]
        ),
    ),
    "ReadOnlyAccess": _doc(_allow(["*:Describe*", "*:Get*", "*:List*", "s3:Get*", "s3:List*"])),
    "ViewOnlyAccess": _doc(_allow(["*:Describe*", "*:List*", "s3:ListAllMyBuckets"])),
    "SecurityAudit": _doc(
        _allow(
            [
                "*:Describe*",
                "*:List*",
                "iam:Get*",
                "iam:GenerateCredentialReport",
                "s3:GetBucketPolicy",
                "s3:GetBucketAcl",
                "kms:GetKeyPolicy",
            ]
        )
    ),
    "IAMFullAccess": _doc(
        _allow(
            [
                "iam:*",
                "organizations:DescribeAccount",
                "organizations:DescribeOrganization",
                "organizations:DescribeOrganizationalUnit",
                "organizations:DescribePolicy",
                "organizations:ListChildren",
                "organizations:ListParents",
                "organizations:ListPoliciesForTarget",
                "organizations:ListRoots",
                "organizations:ListPolicies",
                "organizations:ListTargetsForPolicy",
            ]
        )
    ),
    "AmazonS3ReadOnlyAccess": _doc(
        _allow(["s3:Get*", "s3:List*", "s3:Describe*", "s3-object-lambda:Get*", "s3-object-lambda:List*"])
    ),
    "AmazonEC2ReadOnlyAccess": _doc(
        _allow(
            [
                "ec2:Describe*",
                "elasticloadbalancing:Describe*",
                "cloudwatch:ListMetrics",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:Describe*",
                "autoscaling:Describe*",
            ]
        )
    ),
    "AWSLambdaBasicExecutionRole": _doc(
        _allow(["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"])
    ),
    "AmazonSSMManagedInstanceCore": _doc(
        _allow(
            [
                "ssm:DescribeAssociation",
                "ssm:GetDocument",
                "ssm:UpdateInstanceInformation",
                "ssmmessages:*",
                "ec2messages:*",
                "ssm:ListInstanceAssociations",
            ]
        )
    ),
    "AWSGlueServiceRole": _doc(
        _allow(
            [
                "glue:*",
                "s3:GetBucketLocation",
                "s3:ListBucket",
                "s3:ListAllMyBuckets",
                "ec2:Describe*",
                "cloudwatch:PutMetricData",
                "iam:ListRolePolicies",
                "iam:GetRole",
                "iam:GetRolePolicy",
            ]
        ),
        _allow(
            ["s3:GetObject", "s3:PutObject"], ["arn:aws:s3:::aws-glue-*/*", "arn:aws:s3:::*/*aws-glue-*/*"]
        ),
    ),
    "AmazonECSTaskExecutionRolePolicy": _doc(
        _allow(
            [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ]
        )
    ),
    "AmazonSageMakerFullAccess": _doc(
        _allow(["sagemaker:*", "ecr:BatchGetImage", "logs:CreateLogStream", "cloudwatch:PutMetricData"]),
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::*:role/*",
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
    ),
}


@functools.cache
def _moto_data() -> dict[str, Any] | None:
    try:
        from moto.iam.aws_managed_policies import aws_managed_policies_data
    except ImportError:
        return None
    data: dict[str, Any] = json.loads(aws_managed_policies_data)
    return data


def aws_managed_policy(name: str) -> ManagedPolicy:
    """The AWS managed policy ``name`` (one of ``USED``) as a snapshot entry with its default version."""
    path = USED[name]
    arn = f"arn:aws:iam::aws:policy{path}{name}"
    data = _moto_data()
    entry = data.get(name) if data else None
    if entry is not None:
        version = str(entry.get("DefaultVersionId", "v1"))
        return ManagedPolicy(
            arn=arn,
            name=name,
            path=str(entry.get("Path", path)),
            default_version_id=version,
            versions=[
                PolicyVersion(
                    version_id=version,
                    is_default=True,
                    document=entry["Document"],
                    create_date=entry.get("UpdateDate"),
                )
            ],
            create_date=entry.get("CreateDate"),
            update_date=entry.get("UpdateDate"),
        )
    return ManagedPolicy(
        arn=arn,
        name=name,
        path=path,
        default_version_id="v1",
        versions=[PolicyVersion(version_id="v1", is_default=True, document=_FALLBACK[name])],
        description="abbreviated stand-in written by the iamgraph demo (moto's copy was not available)",
    )


def arn_of(name: str) -> str:
    return f"arn:aws:iam::aws:policy{USED[name]}{name}"
