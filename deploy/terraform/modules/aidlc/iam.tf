# IAM roles, one per component of the DESIGN.md role table, each limited to the zones aidlc's
# GRANTS (src/aidlc/core/auth.py) give that role. aidlc still checks every action itself; these
# policies make sure a stolen task credential cannot do more than the role could in aidlc.

locals {
  # Which aidlc zones each role reads, writes and deletes (object.read/write/delete:<zone>).
  zone_access = {
    "data-steward" = {
      service = "lambda.amazonaws.com"
      read    = ["raw", "validated", "quarantine"]
      write   = ["raw", "validated", "quarantine", "reports"]
      delete  = ["raw", "validated", "quarantine", "predictions"]
      buckets = ["raw"]
    }
    trainer = {
      service = "ecs-tasks.amazonaws.com"
      read    = ["validated", "models"]
      write   = ["models"]
      delete  = []
      buckets = ["models"]
    }
    inference = {
      service = "ecs-tasks.amazonaws.com"
      read    = ["models"]
      write   = ["predictions"]
      delete  = []
      buckets = ["predictions"]
    }
    monitor = {
      service = "ecs-tasks.amazonaws.com"
      read    = ["predictions", "reports"]
      write   = ["reports"]
      delete  = []
      buckets = ["reports"]
    }
  }

  store_arn = aws_s3_bucket.store.arn
  # A zone is "touched" when the role reads, writes or deletes there; HeadObject (aidlc checks a
  # key is free before writing) needs s3:GetObject, and a 404 instead of 403 needs s3:ListBucket.
  touched = { for role, a in local.zone_access : role => distinct(concat(a.read, a.write, a.delete)) }
}

data "aws_iam_policy_document" "assume" {
  for_each = local.zone_access

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value.service]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "component" {
  for_each = local.zone_access

  name                 = "${var.name}-${each.key}"
  description          = "aidlc ${each.key} (DESIGN.md role table)"
  assume_role_policy   = data.aws_iam_policy_document.assume[each.key].json
  max_session_duration = 3600
  tags                 = merge(local.tags, { "aidlc:role" = each.key })
}

data "aws_iam_policy_document" "component" {
  for_each = local.zone_access

  statement {
    sid       = "ListOwnZones"
    actions   = ["s3:ListBucket"]
    resources = [local.store_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for zone in local.touched[each.key] : "${local.store_zone_prefix[zone]}*"]
    }
  }

  statement {
    sid       = "ReadOwnZones"
    actions   = ["s3:GetObject"]
    resources = [for zone in local.touched[each.key] : "${local.store_arn}/${local.store_zone_prefix[zone]}*"]
  }

  statement {
    sid       = "WriteOwnZones"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [for zone in each.value.write : "${local.store_arn}/${local.store_zone_prefix[zone]}*"]
  }

  dynamic "statement" {
    for_each = length(each.value.delete) > 0 ? ["delete"] : []
    content {
      sid       = "DeleteOwnZones"
      actions   = ["s3:DeleteObject"]
      resources = [for zone in each.value.delete : "${local.store_arn}/${local.store_zone_prefix[zone]}*"]
    }
  }

  # The zone bucket(s) this component exchanges files through.
  statement {
    sid       = "ZoneBucketList"
    actions   = ["s3:ListBucket"]
    resources = [for zone in each.value.buckets : aws_s3_bucket.zone[zone].arn]
  }

  statement {
    sid       = "ZoneBucketObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [for zone in each.value.buckets : "${aws_s3_bucket.zone[zone].arn}/*"]
  }

  # aidlc's envelope keys carry the zone in their encryption context (core/objects.py).
  statement {
    sid       = "WrapDataKeysForOwnZones"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:zone"
      values   = each.value.write
    }
  }

  statement {
    sid       = "UnwrapDataKeysOfOwnZones"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:zone"
      values   = local.touched[each.key]
    }
  }

  statement {
    sid       = "KeyForS3AndSecrets"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com", "secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadDatabaseUrl"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.db_url.arn]
  }

  dynamic "statement" {
    for_each = each.key == "monitor" ? ["alerts"] : []
    content {
      sid       = "SendAlerts"
      actions   = ["sns:Publish"]
      resources = [aws_sns_topic.alerts.arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "data-steward" ? ["token"] : []
    content {
      sid       = "ReadOwnToken"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [aws_secretsmanager_secret.token["data-steward"].arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "data-steward" ? ["lambda"] : []
    content {
      sid       = "LambdaLogs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["${aws_cloudwatch_log_group.component["lambda"].arn}:*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "data-steward" ? ["lambda"] : []
    content {
      sid       = "LambdaDeadLetters"
      actions   = ["sqs:SendMessage"]
      resources = [aws_sqs_queue.lambda_dlq.arn]
    }
  }

  # X-Ray trace upload has no resource-level permissions: AWS only accepts "*" here.
  dynamic "statement" {
    for_each = each.key == "data-steward" ? ["lambda"] : []
    content {
      sid       = "LambdaTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "data-steward" ? ["lambda"] : []
    content {
      sid       = "LambdaInVpc"
      actions   = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "ec2:Vpc"
        values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${var.vpc_id}"]
      }
    }
  }
}

resource "aws_iam_role_policy" "component" {
  for_each = local.zone_access

  name   = "${var.name}-${each.key}"
  role   = aws_iam_role.component[each.key].id
  policy = data.aws_iam_policy_document.component[each.key].json
}

# -- ECS task execution: pulls the image, writes logs, injects the token and the database URL --

data "aws_iam_policy_document" "ecs_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "ecs_execution" {
  name               = "${var.name}-ecs-execution"
  description        = "Starts aidlc ECS tasks: image pull, logs, secrets (no data access)"
  assume_role_policy = data.aws_iam_policy_document.ecs_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "ecs_execution" {
  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/*"]
  }

  # GetAuthorizationToken has no resource-level permissions: AWS only accepts "*" here.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for name in ["api", "trainer", "monitor"] : "${aws_cloudwatch_log_group.component[name].arn}:*"]
  }

  statement {
    sid       = "InjectSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat([aws_secretsmanager_secret.db_url.arn], [for s in aws_secretsmanager_secret.token : s.arn])
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "ecs_execution" {
  name   = "${var.name}-ecs-execution"
  role   = aws_iam_role.ecs_execution.id
  policy = data.aws_iam_policy_document.ecs_execution.json
}

# -- CI: GitHub Actions through OIDC, only from the staging and production environments of one
# repository (the environments `aidlc init --ci github` workflows deploy from, with reviewers) --

data "aws_iam_policy_document" "ci_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.github_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:staging", "repo:${var.github_repository}:environment:production"]
    }
  }
}

resource "aws_iam_role" "ci" {
  name                 = "${var.name}-ci"
  description          = "aidlc CI/CD (GitHub Actions OIDC): deploys the API and the Lambda, runs training as trainer"
  assume_role_policy   = data.aws_iam_policy_document.ci_assume.json
  max_session_duration = 3600
  tags                 = merge(local.tags, { "aidlc:role" = "ci" })
}

data "aws_iam_policy_document" "ci" {
  statement {
    sid       = "DeployApi"
    actions   = ["ecs:UpdateService", "ecs:DescribeServices"]
    resources = [aws_ecs_service.api.id]
  }

  statement {
    sid       = "RunTasks"
    actions   = ["ecs:RunTask"]
    resources = [for name in ["trainer", "monitor"] : "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${var.name}-${name}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }

  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.ecs_execution.arn, aws_iam_role.component["trainer"].arn, aws_iam_role.component["monitor"].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "DeployLambda"
    actions   = ["lambda:UpdateFunctionCode", "lambda:GetFunction"]
    resources = [aws_lambda_function.validate.arn]
  }

  statement {
    sid       = "ReadReports"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.zone["reports"].arn}/*"]
  }

  statement {
    sid       = "DecryptReports"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "ci" {
  name   = "${var.name}-ci"
  role   = aws_iam_role.ci.id
  policy = data.aws_iam_policy_document.ci.json
}
