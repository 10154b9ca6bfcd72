# CloudTrail: every region, management events plus S3 data events on aidlc's buckets, with log
# file validation, KMS encryption, the audit bucket and CloudWatch Logs.

locals {
  trail_name = "${var.name}-trail"
  # Built by hand because the key policy and the bucket policy name the trail before it exists.
  trail_arn = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"
}

data "aws_iam_policy_document" "trail_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["cloudtrail.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceArn"
      values   = [local.trail_arn]
    }
  }
}

resource "aws_iam_role" "trail" {
  name               = "${var.name}-cloudtrail"
  description        = "Delivers the aidlc trail to CloudWatch Logs"
  assume_role_policy = data.aws_iam_policy_document.trail_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "trail" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.component["cloudtrail"].arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "trail" {
  name   = "${var.name}-cloudtrail"
  role   = aws_iam_role.trail.id
  policy = data.aws_iam_policy_document.trail.json
}

resource "aws_cloudtrail" "main" {
  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.zone["audit"].id
  s3_key_prefix                 = "cloudtrail"
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = aws_kms_key.main.arn
  sns_topic_name                = aws_sns_topic.alerts.arn
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.component["cloudtrail"].arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.trail.arn
  tags                          = local.tags

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    data_resource {
      type   = "AWS::S3::Object"
      values = [for bucket in local.buckets : "${bucket.arn}/"]
    }
  }

  depends_on = [aws_s3_bucket_policy.all]
}
