"""Can the use of an action be seen at all? "Unused" is only ever claimed for actions where it can."""

from __future__ import annotations

from collections.abc import Iterable

from iamgraph.usage.mapping import EventMapper
from iamgraph.usage.types import Observability, ObservabilityKind

# Permissions AWS checks while authorizing another call; they never produce an event of their own.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html (PassRole is a permission, not an API)
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html (sts:TagSession is checked in AssumeRole*)
# https://docs.aws.amazon.com/apigateway/latest/developerguide/cloudtrail.html (only management calls are logged,
# not invocations through execute-api)
NOT_LOGGED: dict[str, str] = {
    "iam:PassRole": "a permission checked when a role is passed to a service; it has no API call or event",
    "sts:TagSession": "checked inside AssumeRole* when session tags are passed; no event of its own",
    "sts:SetSourceIdentity": "checked inside AssumeRole* when a source identity is set; no event of its own",
    "sts:SetContext": "checked inside AssumeRole* when context is passed; no event of its own",
    "execute-api:Invoke": "API Gateway invocations are not logged by CloudTrail",
    "execute-api:ManageConnections": "API Gateway @connections calls are not logged by CloudTrail",
    "execute-api:InvalidateCache": "API Gateway invocations are not logged by CloudTrail",
}

# Version-specific S3 object actions are authorized for the same API call as the base action when the request
# has a versionId; the event name is the base one. This tool does not separate them, so it claims nothing.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
_S3_VERSION_ACTIONS = (
    "s3:GetObjectVersion",
    "s3:DeleteObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:PutObjectVersionAcl",
    "s3:GetObjectVersionTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectVersionTagging",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionTorrent",
)
for _a in _S3_VERSION_ACTIONS:
    NOT_LOGGED[_a] = "logged as the unversioned event with a versionId parameter, which this tool does not separate"

# Actions whose calls are CloudTrail *data events*: logged only when the trail selects them (off by default).
# https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/cloudtrail-logging-s3-info.html
DATA_EVENT_ACTIONS: dict[str, frozenset[str]] = {
    "s3": frozenset(
        {
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:ListBucketMultipartUploads",
            "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload",
            "s3:GetObjectAcl",
            "s3:PutObjectAcl",
            "s3:GetObjectTagging",
            "s3:PutObjectTagging",
            "s3:DeleteObjectTagging",
            "s3:RestoreObject",
            "s3:GetObjectAttributes",
            "s3:GetObjectRetention",
            "s3:PutObjectRetention",
            "s3:GetObjectLegalHold",
            "s3:PutObjectLegalHold",
            "s3:GetObjectTorrent",
        }
    ),
    "lambda": frozenset({"lambda:InvokeFunction"}),
    "dynamodb": frozenset(
        {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "dynamodb:Scan",
            "dynamodb:BatchGetItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:PartiQLSelect",
            "dynamodb:PartiQLInsert",
            "dynamodb:PartiQLUpdate",
            "dynamodb:PartiQLDelete",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
        }
    ),
    "sns": frozenset({"sns:Publish"}),
    "sqs": frozenset(
        {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}
    ),
}

ALL_DATA_EVENT_SERVICES = frozenset(DATA_EVENT_ACTIONS)


def is_data_event_action(action: str) -> bool:
    return action in DATA_EVENT_ACTIONS.get(action.split(":", 1)[0], frozenset())


class ObservabilityModel:
    """Answers ``observability(action)`` for one configuration of the trail.

    ``data_events``: services whose data events the trail logs (given by the user, or detected from the presence
    of such events). ``management_events``: whether the trail logs management events (False where some account
    and region the principal acts in recorded none: ``iamgraph.usage.logged``). ``access_advisor_action_level``:
    services for which the snapshot has action-level Access Advisor data.
    """

    def __init__(
        self,
        mapper: EventMapper,
        *,
        data_events: Iterable[str] = (),
        management_events: bool = True,
        access_advisor_action_level: Iterable[str] = (),
    ) -> None:
        self._mapper = mapper
        self.data_events = frozenset(data_events)
        self.management_events = management_events
        self.access_advisor_action_level = frozenset(access_advisor_action_level)
        self._cat = mapper.catalog
        self._memo: dict[str, Observability] = {}

    def observability(self, action: str) -> Observability:
        # The answer depends only on the action and this model's fixed configuration: asked once per action.
        hit = self._memo.get(action)
        if hit is None:
            hit = self._memo[action] = self._observability(action)
        return hit

    def _observability(self, action: str) -> Observability:
        canonical = self._cat.canonical(action)
        if canonical is None:
            return Observability(
                action=action, kind=ObservabilityKind.UNKNOWN_ACTION, reason="not an action of the catalog"
            )
        service = canonical.split(":", 1)[0]
        aa = service in self.access_advisor_action_level
        if canonical in NOT_LOGGED:
            return Observability(
                action=canonical, kind=ObservabilityKind.NOT_LOGGED, reason=NOT_LOGGED[canonical],
                access_advisor_action_level=aa,
            )
        if is_data_event_action(canonical):
            if service in self.data_events:
                return Observability(
                    action=canonical, kind=ObservabilityKind.OBSERVABLE,
                    reason=f"data event; the trail logs {service} data events", access_advisor_action_level=aa,
                )
            return Observability(
                action=canonical, kind=ObservabilityKind.DATA_EVENT,
                reason=f"data event; no sign that the trail logs {service} data events",
                access_advisor_action_level=aa,
            )
        if canonical not in self._mapper.actions_with_events(service):
            return Observability(
                action=canonical, kind=ObservabilityKind.NO_EVENT,
                reason="no API operation maps to this action, so no CloudTrail event shows its use",
                access_advisor_action_level=aa,
            )
        if not self.management_events:
            return Observability(
                action=canonical, kind=ObservabilityKind.MANAGEMENT_EVENT,
                reason="management event; no management event was recorded in an account and region where the "
                "principal acts", access_advisor_action_level=aa,
            )
        return Observability(
            action=canonical, kind=ObservabilityKind.OBSERVABLE, reason="management event",
            access_advisor_action_level=aa,
        )
