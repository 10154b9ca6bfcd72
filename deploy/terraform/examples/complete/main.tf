# A complete aidlc deployment in eu-west-1 on an existing VPC, with every input set.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60.0, < 7.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project     = "churn-model"
      environment = "production"
      managed-by  = "terraform"
    }
  }
}

module "aidlc" {
  source = "../../modules/aidlc"

  name = "churn"

  retention_days = {
    raw         = 365
    validated   = 730
    quarantine  = 90
    models      = 2555
    predictions = 30
    reports     = 2555
    audit       = 2555
  }
  noncurrent_version_days = 30
  audit_object_lock_mode  = "COMPLIANCE"
  audit_object_lock_days  = 365
  store_prefix            = "aidlc"
  kms_admin_arns          = var.kms_admin_arns
  log_retention_days      = 400
  alert_emails            = ["ml-oncall@example.com"]

  vpc_id                = var.vpc_id
  public_subnet_ids     = var.public_subnet_ids
  private_subnet_ids    = var.private_subnet_ids
  allowed_ingress_cidrs = ["0.0.0.0/0"]
  certificate_arn       = var.certificate_arn

  api_image         = var.api_image
  lambda_image_uri  = var.lambda_image_uri
  api_desired_count = 2
  waf_rate_limit    = 2000

  db_instance_class        = "db.t4g.medium"
  db_engine_version        = "16"
  db_multi_az              = true
  db_backup_retention_days = 14

  github_oidc_provider_arn = var.github_oidc_provider_arn
  github_repository        = "example-org/churn-model"

  tags = { cost-center = "ml-platform" }
}
