# AWS Config: the recorder (optional: one per region and account) and managed rules for the
# infrastructure side of the controls `aidlc compliance report` checks (govern/compliance.py).

locals {
  # control id (govern/compliance.py CONTROLS) -> AWS managed rules that watch its AWS side.
  config_rules = {
    "encryption-at-rest-s3-kms"        = { control = "encryption-at-rest", identifier = "S3_DEFAULT_ENCRYPTION_KMS", params = null, scope = null }
    "encryption-at-rest-s3-tls"        = { control = "encryption-at-rest", identifier = "S3_BUCKET_SSL_REQUESTS_ONLY", params = null, scope = null }
    "encryption-at-rest-rds"           = { control = "encryption-at-rest", identifier = "RDS_STORAGE_ENCRYPTED", params = null, scope = null }
    "encryption-at-rest-logs"          = { control = "encryption-at-rest", identifier = "CLOUDWATCH_LOG_GROUP_ENCRYPTED", params = null, scope = null }
    "encryption-at-rest-sns"           = { control = "encryption-at-rest", identifier = "SNS_ENCRYPTED_KMS", params = null, scope = null }
    "audit-integrity-trail"            = { control = "audit-integrity", identifier = "MULTI_REGION_CLOUD_TRAIL_ENABLED", params = null, scope = null }
    "audit-integrity-validation"       = { control = "audit-integrity", identifier = "CLOUD_TRAIL_LOG_FILE_VALIDATION_ENABLED", params = null, scope = null }
    "audit-integrity-trail-kms"        = { control = "audit-integrity", identifier = "CLOUD_TRAIL_ENCRYPTION_ENABLED", params = null, scope = null }
    "audit-integrity-lock"             = { control = "audit-integrity", identifier = "S3_BUCKET_DEFAULT_LOCK_ENABLED", params = null, scope = aws_s3_bucket.zone["audit"].id }
    "key-management-rotation"          = { control = "key-management", identifier = "CMK_BACKING_KEY_ROTATION_ENABLED", params = null, scope = null }
    "change-management-versioning"     = { control = "change-management", identifier = "S3_BUCKET_VERSIONING_ENABLED", params = null, scope = null }
    "monitoring-alarm-actions"         = { control = "monitoring", identifier = "CLOUDWATCH_ALARM_ACTION_CHECK", params = jsonencode({ alarmActionRequired = "true", insufficientDataActionRequired = "false", okActionRequired = "false" }), scope = null }
    "retention-log-groups"             = { control = "retention", identifier = "CW_LOGGROUP_RETENTION_PERIOD_CHECK", params = jsonencode({ MinRetentionTime = tostring(var.log_retention_days) }), scope = null }
    "retention-s3-lifecycle"           = { control = "retention", identifier = "S3_LIFECYCLE_POLICY_CHECK", params = null, scope = null }
    "access-review-no-admin-policies"  = { control = "access-review", identifier = "IAM_POLICY_NO_STATEMENTS_WITH_ADMIN_ACCESS", params = null, scope = null }
    "access-review-unused-credentials" = { control = "access-review", identifier = "IAM_USER_UNUSED_CREDENTIALS_CHECK", params = jsonencode({ maxCredentialUsageAge = "90" }), scope = null }
    "access-review-s3-public"          = { control = "access-review", identifier = "S3_BUCKET_LEVEL_PUBLIC_ACCESS_PROHIBITED", params = null, scope = null }
    "access-review-rds-public"         = { control = "access-review", identifier = "RDS_INSTANCE_PUBLIC_ACCESS_CHECK", params = null, scope = null }
    "incident-response-waf-logging"    = { control = "incident-response", identifier = "WAFV2_LOGGING_ENABLED", params = null, scope = null }
  }
}

data "aws_iam_policy_document" "config_assume" {
  count = var.enable_config_recorder ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["config.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "config" {
  count = var.enable_config_recorder ? 1 : 0

  name               = "${var.name}-config"
  description        = "AWS Config recorder of the aidlc deployment"
  assume_role_policy = data.aws_iam_policy_document.config_assume[0].json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "config" {
  count = var.enable_config_recorder ? 1 : 0

  role       = aws_iam_role.config[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWS_ConfigRole"
}

data "aws_iam_policy_document" "config_delivery" {
  count = var.enable_config_recorder ? 1 : 0

  statement {
    sid       = "CheckAuditBucket"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.zone["audit"].arn]
  }

  statement {
    sid       = "WriteSnapshots"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.zone["audit"].arn}/config/AWSLogs/${local.account_id}/*"]
  }

  statement {
    sid       = "EncryptSnapshots"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "NotifyChanges"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
}

resource "aws_iam_role_policy" "config_delivery" {
  count = var.enable_config_recorder ? 1 : 0

  name   = "${var.name}-config-delivery"
  role   = aws_iam_role.config[0].id
  policy = data.aws_iam_policy_document.config_delivery[0].json
}

resource "aws_config_configuration_recorder" "main" {
  count = var.enable_config_recorder ? 1 : 0

  name     = "${var.name}-recorder"
  role_arn = aws_iam_role.config[0].arn

  recording_group {
    all_supported                 = true
    include_global_resource_types = true
  }
}

resource "aws_config_delivery_channel" "main" {
  count = var.enable_config_recorder ? 1 : 0

  name           = "${var.name}-delivery"
  s3_bucket_name = aws_s3_bucket.zone["audit"].id
  s3_key_prefix  = "config"
  s3_kms_key_arn = aws_kms_key.main.arn
  sns_topic_arn  = aws_sns_topic.alerts.arn

  snapshot_delivery_properties {
    delivery_frequency = "TwentyFour_Hours"
  }

  depends_on = [aws_config_configuration_recorder.main]
}

resource "aws_config_configuration_recorder_status" "main" {
  count = var.enable_config_recorder ? 1 : 0

  name       = aws_config_configuration_recorder.main[0].name
  is_enabled = true
  depends_on = [aws_config_delivery_channel.main]
}

resource "aws_config_config_rule" "control" {
  for_each = local.config_rules

  name             = "${var.name}-${each.key}"
  description      = "aidlc control ${each.value.control} (aidlc compliance report)"
  input_parameters = each.value.params
  tags             = merge(local.tags, { "aidlc:control" = each.value.control })

  source {
    owner             = "AWS"
    source_identifier = each.value.identifier
  }

  dynamic "scope" {
    for_each = each.value.scope == null ? [] : [each.value.scope]
    content {
      compliance_resource_id    = scope.value
      compliance_resource_types = ["AWS::S3::Bucket"]
    }
  }

  depends_on = [aws_config_configuration_recorder.main]
}
