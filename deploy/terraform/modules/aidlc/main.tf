# Names, tags and the zone list every other file of the module builds on.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # aidlc's object zones (src/aidlc/core/auth.py ZONES) plus the audit bucket.
  aidlc_zones = ["raw", "validated", "quarantine", "models", "predictions", "reports"]
  zones       = concat(local.aidlc_zones, ["audit"])

  # Buckets are global names: the account id keeps two deployments of one name apart.
  bucket_prefix = "${var.name}-${local.account_id}-${local.region}"
  zone_buckets  = { for zone in local.zones : zone => "${local.bucket_prefix}-${zone}" }
  store_bucket  = "${local.bucket_prefix}-store"
  log_bucket    = "${local.bucket_prefix}-access-logs"

  store_prefix = trim(var.store_prefix, "/")
  # The key prefix of one aidlc zone inside the store bucket (core/objects.py _storage_key).
  store_zone_prefix = { for zone in local.aidlc_zones : zone => local.store_prefix == "" ? "${zone}/" : "${local.store_prefix}/${zone}/" }

  tags = merge(var.tags, { "aidlc:deployment" = var.name })
}
