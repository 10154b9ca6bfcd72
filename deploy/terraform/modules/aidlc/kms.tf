# The one customer managed key: aidlc wraps its data keys with it and every bucket, log group,
# topic, secret, trail and database encrypts under it. Its policy names who may do what.

locals {
  kms_admins = length(var.kms_admin_arns) > 0 ? var.kms_admin_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
  # Principals that use the key for data; their IAM policies narrow it further (iam.tf).
  kms_users = concat(
    [for role in aws_iam_role.component : role.arn],
    [aws_iam_role.ecs_execution.arn, aws_iam_role.ci.arn],
    var.enable_config_recorder ? [aws_iam_role.config[0].arn] : [],
  )
}

resource "aws_kms_key" "main" {
  description             = "aidlc ${var.name}: envelope keys, S3, logs, SNS, secrets, CloudTrail, RDS"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = local.kms_policy
  tags                    = local.tags
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

# The key policy. Written inline, not as an IAM policy document: in a key policy "Resource": "*"
# means "this key" only. No statement grants kms:* to anyone, administrators cannot decrypt.
locals {
  kms_admin_actions = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey",
    "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
    "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListResourceTags", "kms:PutKeyPolicy",
    "kms:RevokeGrant", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource",
    "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
  ]

  kms_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "Administration"
        Effect    = "Allow"
        Principal = { AWS = local.kms_admins }
        Action    = local.kms_admin_actions
        Resource  = "*"
      },
      {
        # Whoever applies the module creates encrypted secrets and the database through
        # these services; it never gets the key for direct use.
        Sid       = "DeployThroughServices"
        Effect    = "Allow"
        Principal = { AWS = local.kms_admins }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo"]
        Resource  = "*"
        Condition = { StringEquals = { "kms:ViaService" = ["secretsmanager.${local.region}.amazonaws.com", "rds.${local.region}.amazonaws.com"] } }
      },
      {
        # Component roles; their IAM policies narrow use to their zones and services (iam.tf).
        Sid       = "ComponentUse"
        Effect    = "Allow"
        Principal = { AWS = local.kms_users }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:DescribeKey"]
        Resource  = "*"
      },
      {
        Sid       = "CloudTrailEncryptLogs"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "kms:GenerateDataKey*"
        Resource  = "*"
        Condition = {
          StringLike   = { "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*" }
          StringEquals = { "aws:SourceArn" = local.trail_arn }
        }
      },
      {
        Sid       = "CloudTrailDescribeKey"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "kms:DescribeKey"
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aidlc/${var.name}/*",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name}-validate",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:aws-waf-logs-${var.name}",
            ]
          }
        }
      },
      {
        # CloudWatch alarms and S3 server access logging write to encrypted targets.
        Sid       = "ServicesWritingEncryptedTargets"
        Effect    = "Allow"
        Principal = { Service = ["cloudwatch.amazonaws.com", "logging.s3.amazonaws.com"] }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ]
  })
}
