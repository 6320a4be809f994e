"""The CloudTrail calls the demo principals make: eventSource/eventName, the IAM action each one needs, flags.

Names follow what CloudTrail records, which is not always the IAM action: Lambda's management events carry
an API-version suffix (``GetFunction20150331v2``) and its data event is ``Invoke`` for
``lambda:InvokeFunction`` (https://docs.aws.amazon.com/lambda/latest/dg/logging-using-cloudtrail.html);
S3 ``ListBuckets`` needs ``s3:ListAllMyBuckets`` and ``ListObjects`` needs ``s3:ListBucket``
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html); API Gateway's
actions are HTTP verbs (``apigateway:GET``); console sign-in needs no IAM action at all.
Data events (S3 objects, Lambda Invoke, DynamoDB items, SQS/SNS messages, Kinesis records) are only logged
when a trail selects them; the demo's organization trail does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class EventTemplate:
    key: str
    """``<eventSource prefix>.<eventName>``, unique."""
    source: str
    name: str
    action: str | None
    """The IAM action the call is authorized as; None for calls IAM does not authorize (ConsoleLogin)."""
    read_only: bool
    data: bool
    target: str
    """What the call is about: '' (account-level) or a resource kind (bucket, object, key, secret, ...)."""

    @property
    def service(self) -> str | None:
        return self.action.split(":", 1)[0] if self.action else None


# source | eventName | action ('-' when none, '=' for <prefix>:<eventName>) | flags (R read-only, D data) | target
_TABLE = """
s3 ListBuckets s3:ListAllMyBuckets R -
s3 GetBucketLocation = R bucket
s3 GetBucketPolicy = R bucket
s3 GetBucketAcl = R bucket
s3 GetBucketTagging = R bucket
s3 GetBucketVersioning = R bucket
s3 GetBucketPublicAccessBlock = R bucket
s3 GetBucketEncryption s3:GetEncryptionConfiguration R bucket
s3 PutBucketPolicy = - bucket
s3 CreateBucket = - bucket
s3 GetObject = RD object
s3 HeadObject s3:GetObject RD object
s3 PutObject = D object
s3 DeleteObject = D object
s3 ListObjects s3:ListBucket RD bucket
ec2 DescribeInstances = R -
ec2 DescribeSecurityGroups = R -
ec2 DescribeVpcs = R -
ec2 DescribeSubnets = R -
ec2 DescribeVolumes = R -
ec2 DescribeImages = R -
ec2 DescribeRegions = R -
ec2 DescribeNetworkInterfaces = R -
ec2 DescribeSnapshots = R -
ec2 DescribeLaunchTemplates = R -
ec2 DescribeLaunchTemplateVersions = R -
ec2 RunInstances = - -
ec2 StartInstances = - instance
ec2 StopInstances = - instance
ec2 CreateTags = - instance
ec2 CreateSnapshot = - -
ec2 AuthorizeSecurityGroupIngress = - -
iam ListUsers = R -
iam ListRoles = R -
iam ListPolicies = R -
iam GetRole = R role
iam GetUser = R user
iam GetPolicy = R policy
iam GetPolicyVersion = R policy
iam ListAttachedRolePolicies = R role
iam ListAttachedUserPolicies = R user
iam ListAccessKeys = R user
iam GetAccountSummary = R -
iam GetAccountAuthorizationDetails = R -
iam GenerateCredentialReport = - -
iam GetCredentialReport = R -
iam ListMFADevices = R user
iam CreateUser = - user
iam AttachRolePolicy = - role
iam AttachUserPolicy = - user
iam CreatePolicyVersion = - policy
iam CreateAccessKey = - user
iam UpdateAssumeRolePolicy = - role
sts AssumeRole = R role
sts AssumeRoleWithSAML = R role
sts AssumeRoleWithWebIdentity = R role
sts GetCallerIdentity = R -
sts GetFederationToken = R -
sts GetSessionToken = R -
lambda Invoke lambda:InvokeFunction D function
lambda ListFunctions20150331 lambda:ListFunctions R -
lambda GetFunction20150331v2 lambda:GetFunction R function
lambda GetPolicy20150331v2 lambda:GetPolicy R function
lambda ListEventSourceMappings20150331 lambda:ListEventSourceMappings R -
lambda CreateFunction20150331 lambda:CreateFunction - function
lambda UpdateFunctionCode20150331v2 lambda:UpdateFunctionCode - function
lambda UpdateFunctionConfiguration20150331v2 lambda:UpdateFunctionConfiguration - function
lambda AddPermission20150331v2 lambda:AddPermission - function
kms Decrypt = R key
kms Encrypt = R key
kms GenerateDataKey = R key
kms DescribeKey = R key
kms GetKeyPolicy = R key
kms ListKeys = R -
kms ListAliases = R -
kms PutKeyPolicy = - key
kms ScheduleKeyDeletion = - key
kms DisableKey = - key
kms CreateGrant = - key
secretsmanager GetSecretValue = R secret
secretsmanager DescribeSecret = R secret
secretsmanager ListSecrets = R -
secretsmanager PutSecretValue = - secret
secretsmanager RotateSecret = - secret
sqs SendMessage = D queue
sqs ReceiveMessage = RD queue
sqs DeleteMessage = D queue
sqs ListQueues = R -
sqs GetQueueAttributes = R queue
sns Publish = D topic
sns ListTopics = R -
sns GetTopicAttributes = R topic
sns Subscribe = - topic
dynamodb GetItem = RD table
dynamodb PutItem = D table
dynamodb Query = RD table
dynamodb Scan = RD table
dynamodb UpdateItem = D table
dynamodb DescribeTable = R table
dynamodb ListTables = R -
cloudtrail DescribeTrails = R -
cloudtrail GetTrailStatus = R trail
cloudtrail GetEventSelectors = R trail
cloudtrail LookupEvents = R -
cloudtrail StopLogging = - trail
cloudtrail StartLogging = - trail
cloudtrail UpdateTrail = - trail
logs CreateLogStream = - loggroup
logs CreateLogGroup = - loggroup
logs DescribeLogGroups = R -
logs FilterLogEvents = R loggroup
logs GetLogEvents = R loggroup
logs PutRetentionPolicy = - loggroup
monitoring GetMetricData cloudwatch:GetMetricData R -
monitoring GetMetricStatistics cloudwatch:GetMetricStatistics R -
monitoring ListMetrics cloudwatch:ListMetrics R -
monitoring DescribeAlarms cloudwatch:DescribeAlarms R -
monitoring PutMetricAlarm cloudwatch:PutMetricAlarm - -
ssm SendCommand = - instance
ssm GetParameter = R param
ssm GetParameters = R param
ssm GetParametersByPath = R param
ssm DescribeInstanceInformation = R -
ssm UpdateInstanceInformation = - instance
ssm StartSession = - instance
ssm ListCommandInvocations = R -
ecs ListClusters = R -
ecs DescribeServices = R cluster
ecs ListTasks = R cluster
ecs DescribeTasks = R cluster
ecs UpdateService = - cluster
ecs RunTask = - cluster
ecs RegisterTaskDefinition = - -
ecr GetAuthorizationToken = R -
ecr BatchGetImage = R repository
ecr GetDownloadUrlForLayer = R repository
ecr DescribeRepositories = R -
ecr DescribeImages = R repository
ecr PutImage = - repository
cloudformation DescribeStacks = R stack
cloudformation ListStacks = R -
cloudformation DescribeStackEvents = R stack
cloudformation GetTemplate = R stack
cloudformation DescribeStackSet = R -
cloudformation ListStackInstances = R -
cloudformation CreateStack = - stack
cloudformation UpdateStack = - stack
codebuild StartBuild = - project
codebuild BatchGetBuilds = R project
codebuild BatchGetProjects = R project
codebuild ListProjects = R -
glue StartJobRun = - job
glue GetJob = R job
glue GetJobRuns = R job
glue GetDatabase = R -
glue GetTable = R -
glue GetTables = R -
glue GetPartitions = R -
glue BatchCreatePartition = - -
athena StartQueryExecution = - -
athena GetQueryExecution = R -
athena GetQueryResults = R -
athena ListWorkGroups = R -
sagemaker ListNotebookInstances = R -
sagemaker DescribeNotebookInstance = R notebook
sagemaker CreatePresignedNotebookInstanceUrl = - notebook
sagemaker CreateTrainingJob = - -
sagemaker DescribeTrainingJob = R -
rds DescribeDBInstances = R -
rds DescribeDBClusters = R -
rds CreateDBSnapshot = - -
elasticloadbalancing DescribeLoadBalancers = R -
elasticloadbalancing DescribeTargetGroups = R -
elasticloadbalancing DescribeTargetHealth = R -
autoscaling DescribeAutoScalingGroups = R -
autoscaling UpdateAutoScalingGroup = - -
route53 ListHostedZones = R -
route53 GetHostedZone = R -
route53 ChangeResourceRecordSets = - -
cloudfront ListDistributions = R -
cloudfront CreateInvalidation = - -
config DescribeConfigRules = R -
config DescribeComplianceByConfigRule = R -
config PutEvaluations = - -
guardduty ListDetectors = R -
guardduty ListFindings = R -
guardduty GetFindings = R -
securityhub GetFindings = R -
securityhub DescribeHub = R -
securityhub BatchImportFindings = - -
organizations DescribeOrganization = R -
organizations ListAccounts = R -
organizations DescribeAccount = R -
organizations ListPoliciesForTarget = R -
sso ListPermissionSets = R -
sso DescribePermissionSet = R -
sso CreateAccountAssignment = - -
signin ConsoleLogin - - -
kinesis ListStreams = R -
kinesis DescribeStream = R stream
kinesis PutRecord = D stream
kinesis GetRecords = RD stream
firehose DescribeDeliveryStream = R -
firehose PutRecordBatch = - -
events ListRules = R -
events DescribeRule = R -
events PutRule = - -
events PutEvents = - -
states ListStateMachines = R -
states StartExecution = - -
states DescribeExecution = R -
apigateway GetRestApis apigateway:GET R -
apigateway GetStages apigateway:GET R -
apigateway CreateDeployment apigateway:POST - -
elasticache DescribeCacheClusters = R -
es ListDomainNames = R -
es DescribeDomain = R -
redshift DescribeClusters = R -
codepipeline ListPipelines = R -
codepipeline GetPipelineState = R -
codepipeline StartPipelineExecution = - -
codecommit GetRepository = R -
codecommit GitPull = R -
acm ListCertificates = R -
acm DescribeCertificate = R -
wafv2 ListWebACLs = R -
wafv2 GetWebACL = R -
backup ListBackupJobs = R -
backup StartBackupJob = - -
access-analyzer ListAnalyzers = R -
access-analyzer ListFindings = R -
inspector2 ListFindings = R -
tagging GetResources tag:GetResources R -
ce GetCostAndUsage = R -
health DescribeEvents = R -
elasticfilesystem DescribeFileSystems = R -
"""

# eventSource prefixes whose IAM prefix differs from the eventSource's first label.
_PREFIX = {"monitoring": "cloudwatch", "tagging": "tag"}


def _load() -> dict[str, EventTemplate]:
    out: dict[str, EventTemplate] = {}
    for line in _TABLE.strip().splitlines():
        src, name, action, flags, target = line.split()
        prefix = _PREFIX.get(src, src)
        if action == "=":
            action = f"{prefix}:{name}"
        key = f"{src}.{name}"
        out[key] = EventTemplate(
            key=key,
            source=f"{src}.amazonaws.com",
            name=name,
            action=None if action == "-" else action,
            read_only="R" in flags,
            data="D" in flags,
            target="" if target == "-" else target,
        )
    return out


TEMPLATES: dict[str, EventTemplate] = _load()


def template(key: str) -> EventTemplate:
    return TEMPLATES[key]


# IAM access advisor reports action-level ("tracked action") data for these services' management
# actions (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_last-accessed-action-last-accessed.html);
# the demo reports it for the four the issue asks for and service-level data for the rest.
ACTION_LEVEL_SERVICES = ("ec2", "iam", "lambda", "s3")
