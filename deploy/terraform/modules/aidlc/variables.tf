# Inputs of the aidlc module. Every variable is documented in docs/terraform.md.

variable "name" {
  description = "Short name of this deployment; prefixes every resource name (lower case, digits, hyphens)."
  type        = string
  default     = "aidlc"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

variable "retention_days" {
  description = "Days an object is kept in each zone bucket before S3 expires it (zone -> days); mirror `aidlc retention` policies."
  type        = map(number)
  default = {
    raw         = 365
    validated   = 730
    quarantine  = 90
    models      = 2555
    predictions = 30
    reports     = 2555
    audit       = 2555
  }

  validation {
    condition = alltrue([
      for zone in ["raw", "validated", "quarantine", "models", "predictions", "reports", "audit"] :
      contains(keys(var.retention_days), zone)
    ])
    error_message = "retention_days needs a value for each zone: raw, validated, quarantine, models, predictions, reports, audit."
  }

  validation {
    condition     = alltrue([for days in values(var.retention_days) : days >= 1 && days <= 36500])
    error_message = "retention_days values must be between 1 and 36500."
  }
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted object version is kept before S3 removes it for good."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "audit_object_lock_mode" {
  description = "Object Lock mode of the audit bucket: COMPLIANCE (nobody, not even root, can shorten it) or GOVERNANCE."
  type        = string
  default     = "COMPLIANCE"

  validation {
    condition     = contains(["COMPLIANCE", "GOVERNANCE"], var.audit_object_lock_mode)
    error_message = "audit_object_lock_mode must be COMPLIANCE or GOVERNANCE."
  }
}

variable "audit_object_lock_days" {
  description = "Default Object Lock retention of every new object in the audit bucket, in days."
  type        = number
  default     = 365

  validation {
    condition     = var.audit_object_lock_days >= 1
    error_message = "audit_object_lock_days must be at least 1."
  }
}

variable "store_prefix" {
  description = "Key prefix of aidlc's object store inside the store bucket (aidlc.yaml store.prefix)."
  type        = string
  default     = "aidlc"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]{0,100}$", var.store_prefix))
    error_message = "store_prefix may hold only A-Z a-z 0-9 . _ / - (at most 100 characters)."
  }
}

variable "kms_admin_arns" {
  description = "IAM principals that administer the KMS key (never use it to decrypt); empty means the account root."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups, in days (a value CloudWatch accepts; at least 365)."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention value of at least 365 days."
  }
}

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "enable_config_recorder" {
  description = "Create the AWS Config recorder and delivery channel; set false when the account already has one in this region (one per region)."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC that holds the load balancer, the ECS tasks, the Lambda function and the database."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the internet-facing load balancer (at least two availability zones)."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "public_subnet_ids needs at least two subnets."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT or VPC endpoints) for the ECS tasks, the Lambda function and the database."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids needs at least two subnets."
  }
}

variable "allowed_ingress_cidrs" {
  description = "CIDR blocks that may reach the HTTPS listener of the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "api_image" {
  description = "Container image of the inference API (deploy/docker/Dockerfile.api), by digest; the trainer and monitor tasks run it too."
  type        = string
}

variable "lambda_image_uri" {
  description = "ECR image of the validation Lambda (deploy/docker/Dockerfile.lambda), by digest."
  type        = string
}

variable "api_port" {
  description = "Port the API container listens on (aidlc serve --port; 8080 in deploy/docker/Dockerfile.api)."
  type        = number
  default     = 8080
}

variable "api_cpu" {
  description = "CPU units of one API task."
  type        = number
  default     = 1024
}

variable "api_memory" {
  description = "Memory of one API task, in MiB."
  type        = number
  default     = 2048
}

variable "api_desired_count" {
  description = "Number of API tasks."
  type        = number
  default     = 2
}

variable "waf_rate_limit" {
  description = "Requests one client IP may send in any five minutes before the WAF blocks it."
  type        = number
  default     = 1000

  validation {
    condition     = var.waf_rate_limit >= 10
    error_message = "waf_rate_limit must be at least 10 (the WAF minimum)."
  }
}

variable "lambda_dataset" {
  description = "Dataset the Lambda ingests into when an upload is not keyed inbox/<dataset>/<file>; empty requires that layout."
  type        = string
  default     = ""
}

variable "db_instance_class" {
  description = "Instance class of the metadata database."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "PostgreSQL major version of the metadata database."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Storage of the metadata database, in GiB."
  type        = number
  default     = 20
}

variable "db_multi_az" {
  description = "Run the metadata database in two availability zones."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days RDS keeps automated backups of the metadata database."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the metadata database (turn off only to tear a test deployment down)."
  type        = bool
  default     = true
}

variable "github_oidc_provider_arn" {
  description = "ARN of the account's IAM OIDC provider for token.actions.githubusercontent.com."
  type        = string
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflows may assume the CI role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

