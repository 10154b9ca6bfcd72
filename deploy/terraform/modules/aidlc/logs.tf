# CloudWatch log groups: encrypted with the key, kept `log_retention_days`.

resource "aws_cloudwatch_log_group" "component" {
  for_each = toset(["api", "trainer", "monitor", "lambda", "cloudtrail"])

  # The Lambda runtime writes to /aws/lambda/<function>; the rest live under /aidlc/<name>/.
  name              = each.key == "lambda" ? "/aws/lambda/${var.name}-validate" : "/aidlc/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
  tags              = local.tags
}
