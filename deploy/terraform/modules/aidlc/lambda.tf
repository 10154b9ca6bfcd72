# The S3-triggered validation Lambda (aidlc.aws.handlers.validate_on_upload) on the raw bucket.

resource "aws_sqs_queue" "lambda_dlq" {
  name                              = "${var.name}-validate-dlq"
  kms_master_key_id                 = aws_kms_key.main.arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = 1209600
  tags                              = local.tags
}

resource "aws_security_group" "lambda" {
  name        = "${var.name}-validate"
  description = "aidlc validation Lambda: HTTPS to AWS APIs and PostgreSQL to the database only"
  vpc_id      = var.vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "lambda_https" {
  security_group_id = aws_security_group.lambda.id
  description       = "AWS APIs (S3, KMS, Secrets Manager) over HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "lambda_db" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "Metadata database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.db.id
}

resource "aws_lambda_function" "validate" {
  #checkov:skip=CKV_AWS_272:Lambda code signing applies to .zip packages only; this is a container image, pinned by digest and signed in the registry.
  function_name                  = "${var.name}-validate"
  description                    = "aidlc data gate for uploads to the raw bucket (inbox/<dataset>/<file>)"
  role                           = aws_iam_role.component["data-steward"].arn
  package_type                   = "Image"
  image_uri                      = var.lambda_image_uri
  timeout                        = 900
  memory_size                    = 3008
  reserved_concurrent_executions = 10
  kms_key_arn                    = aws_kms_key.main.arn
  tags                           = local.tags

  ephemeral_storage {
    size = 10240
  }

  environment {
    variables = merge(
      {
        AIDLC_WORKSPACE        = "/var/task/workspace"
        AIDLC_TOKEN_SECRET     = aws_secretsmanager_secret.token["data-steward"].arn
        AIDLC_INBOX_KMS_KEY_ID = aws_kms_key.main.arn
      },
      var.lambda_dataset == "" ? {} : { AIDLC_DATASET = var.lambda_dataset },
    )
  }

  vpc_config {
    subnet_ids         = var.private_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.lambda_dlq.arn
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.component, aws_iam_role_policy.component]
}

resource "aws_lambda_permission" "raw_bucket" {
  statement_id   = "InvokeFromRawBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.validate.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.zone["raw"].arn
  source_account = local.account_id
}
