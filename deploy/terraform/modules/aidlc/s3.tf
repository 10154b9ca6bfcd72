# Buckets: one per zone (raw, validated, quarantine, models, predictions, reports, audit), the
# store bucket aidlc's aidlc.yaml points at, and the bucket that receives S3 access logs.
# docs/terraform.md explains how the zone buckets relate to aidlc's single object store.

resource "aws_s3_bucket" "zone" {
  #checkov:skip=CKV_AWS_144:Cross-region replication copies personal data to a second region, a data-residency decision left to the operator (see docs/terraform.md).
  for_each = local.zone_buckets

  bucket = each.value
  # Object Lock can only be switched on when a bucket is created; the audit bucket needs it.
  object_lock_enabled = each.key == "audit"
  tags                = merge(local.tags, { "aidlc:zone" = each.key })
}

resource "aws_s3_bucket" "store" {
  #checkov:skip=CKV_AWS_144:Cross-region replication copies personal data to a second region, a data-residency decision left to the operator (see docs/terraform.md).
  bucket = local.store_bucket
  tags   = merge(local.tags, { "aidlc:zone" = "store" })
}

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_18:This bucket receives the access logs of all others; logging it to itself would loop forever and S3 data events in CloudTrail record access to it.
  #checkov:skip=CKV_AWS_144:Cross-region replication copies personal data to a second region, a data-residency decision left to the operator (see docs/terraform.md).
  bucket = local.log_bucket
  tags   = merge(local.tags, { "aidlc:zone" = "access-logs" })
}

locals {
  buckets = merge(
    { for zone, bucket in aws_s3_bucket.zone : zone => bucket },
    { store = aws_s3_bucket.store, "access-logs" = aws_s3_bucket.access_logs },
  )
  bucket_names = merge(local.zone_buckets, { store = local.store_bucket, "access-logs" = local.log_bucket })
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each = local.bucket_names

  bucket                  = local.buckets[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.bucket_names

  bucket = local.buckets[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.bucket_names

  bucket = local.buckets[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "all" {
  for_each = local.bucket_names

  bucket = local.buckets[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_logging" "all" {
  for_each = { for key, name in local.bucket_names : key => name if key != "access-logs" }

  bucket        = local.buckets[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.value}/"
}

resource "aws_s3_bucket_object_lock_configuration" "audit" {
  bucket = aws_s3_bucket.zone["audit"].id
  rule {
    default_retention {
      mode = var.audit_object_lock_mode
      days = var.audit_object_lock_days
    }
  }
  depends_on = [aws_s3_bucket_versioning.all]
}

# Zone buckets expire objects after the zone's retention. The store bucket only purges old
# versions: aidlc's own `retention apply` decides when a current object goes (it never shreds an
# approved model or a legal hold), and S3 expiring current objects behind it would break that.
resource "aws_s3_bucket_lifecycle_configuration" "all" {
  for_each = local.bucket_names

  bucket = local.buckets[each.key].id

  rule {
    id     = "retention"
    status = "Enabled"
    filter {}

    dynamic "expiration" {
      for_each = contains(keys(local.zone_buckets), each.key) ? [var.retention_days[each.key]] : each.key == "access-logs" ? [var.log_retention_days] : []
      content {
        days = expiration.value
      }
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.all]
}

# Every bucket reports object events to EventBridge; the raw bucket also triggers validation.
resource "aws_s3_bucket_notification" "all" {
  for_each = local.bucket_names

  bucket      = local.buckets[each.key].id
  eventbridge = true

  dynamic "lambda_function" {
    for_each = each.key == "raw" ? [aws_lambda_function.validate.arn] : []
    content {
      lambda_function_arn = lambda_function.value
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = "inbox/"
    }
  }

  depends_on = [aws_lambda_permission.raw_bucket]
}

# -- bucket policies -------------------------------------------------------------------------------

data "aws_iam_policy_document" "bucket" {
  for_each = local.bucket_names

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      local.buckets[each.key].arn,
      "${local.buckets[each.key].arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  # AWS services writing here (CloudTrail, Config, S3 log delivery) rely on the default
  # encryption below; the validation Lambda sends the headers with its copies
  # (AIDLC_INBOX_KMS_KEY_ID), so nothing else is exempt.
  statement {
    sid       = "DenyUploadsWithoutKms"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.buckets[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEquals"
      variable = "s3:x-amz-server-side-encryption"
      values   = ["aws:kms"]
    }
    condition {
      test     = "Bool"
      variable = "aws:PrincipalIsAWSService"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOtherKmsKeys"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${local.buckets[each.key].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.main.arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "audit" ? ["cloudtrail"] : []
    content {
      sid       = "CloudTrailAclCheck"
      actions   = ["s3:GetBucketAcl"]
      resources = [local.buckets[each.key].arn]
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

  dynamic "statement" {
    for_each = each.key == "audit" ? ["cloudtrail"] : []
    content {
      sid       = "CloudTrailWrite"
      actions   = ["s3:PutObject"]
      resources = ["${local.buckets[each.key].arn}/cloudtrail/AWSLogs/${local.account_id}/*"]
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

  dynamic "statement" {
    for_each = each.key == "access-logs" ? ["logging"] : []
    content {
      sid       = "S3ServerAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${local.buckets[each.key].arn}/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "all" {
  for_each = local.bucket_names

  bucket     = local.buckets[each.key].id
  policy     = data.aws_iam_policy_document.bucket[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.all]
}
