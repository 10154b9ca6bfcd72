# Inputs of the example that depend on the account it is applied in.

variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "eu-west-1"
}

variable "kms_admin_arns" {
  description = "Roles that administer the KMS key."
  type        = list(string)
  default     = ["arn:aws:iam::111122223333:role/platform-admin"]
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
  default     = "vpc-0a1b2c3d4e5f60718"
}

variable "public_subnet_ids" {
  description = "Public subnets of the load balancer."
  type        = list(string)
  default     = ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"]
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks, the Lambda and the database."
  type        = list(string)
  default     = ["subnet-0a1b2c3d4e5f60011", "subnet-0a1b2c3d4e5f60012"]
}

variable "certificate_arn" {
  description = "ACM certificate of ml.example.com."
  type        = string
  default     = "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
}

variable "api_image" {
  description = "Inference API image, by digest."
  type        = string
  default     = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/aidlc-api@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
}

variable "lambda_image_uri" {
  description = "Validation Lambda image, by digest."
  type        = string
  default     = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/aidlc-lambda@sha256:9b2c1e0d8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"
}

variable "github_oidc_provider_arn" {
  description = "The account's GitHub Actions OIDC provider."
  type        = string
  default     = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
}

