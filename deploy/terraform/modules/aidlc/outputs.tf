# Outputs: names and ARNs for other stacks, and the aidlc.yaml for the AWS backends.

output "zone_bucket_names" {
  description = "Bucket of each zone (raw, validated, quarantine, models, predictions, reports, audit)."
  value       = { for zone, bucket in aws_s3_bucket.zone : zone => bucket.id }
}

output "store_bucket_name" {
  description = "Bucket of aidlc's object store (aidlc.yaml store.bucket); its key prefixes are the zones."
  value       = aws_s3_bucket.store.id
}

output "access_log_bucket_name" {
  description = "Bucket receiving the S3 server access logs of every other bucket."
  value       = aws_s3_bucket.access_logs.id
}

output "kms_key_arn" {
  description = "ARN of the customer managed key (aidlc.yaml keys.kms_key_id and store.sse_kms_key_id)."
  value       = aws_kms_key.main.arn
}

output "role_arns" {
  description = "IAM role of each component: data-steward, trainer, inference, monitor and ci."
  value       = merge({ for name, role in aws_iam_role.component : name => role.arn }, { ci = aws_iam_role.ci.arn })
}

output "metadata_url_secret_arn" {
  description = "Secrets Manager secret whose SecretString is the SQLAlchemy URL of the metadata database."
  value       = aws_secretsmanager_secret.db_url.arn
}

output "token_secret_arns" {
  description = "Secrets the operator fills with aidlc tokens (trainer, inference, monitor) before tasks start."
  value       = { for name, secret in aws_secretsmanager_secret.token : name => secret.arn }
}

output "alerts_topic_arn" {
  description = "SNS topic for alerts (aidlc alerts sink `sns`)."
  value       = aws_sns_topic.alerts.arn
}

output "api_url" {
  description = "HTTPS address of the load balancer in front of the inference API (point a DNS name of the certificate at it)."
  value       = "https://${aws_lb.api.dns_name}"
}

output "validation_function_name" {
  description = "Name of the S3-triggered validation Lambda."
  value       = aws_lambda_function.validate.function_name
}

output "ecs_cluster_arn" {
  description = "ECS cluster running the API, training and monitoring tasks."
  value       = aws_ecs_cluster.main.arn
}

output "aidlc_yaml" {
  description = "aidlc.yaml sections for the AWS backends: KMS keys, the S3 store, the metadata URL from Secrets Manager."
  value = yamlencode({
    keys = {
      provider   = "kms"
      kms_key_id = aws_kms_key.main.arn
      region     = local.region
    }
    store = {
      backend        = "s3"
      bucket         = aws_s3_bucket.store.id
      prefix         = local.store_prefix
      region         = local.region
      sse_kms_key_id = aws_kms_key.main.arn
    }
    metadata = {
      url_secret = aws_secretsmanager_secret.db_url.arn
      region     = local.region
    }
  })
}
