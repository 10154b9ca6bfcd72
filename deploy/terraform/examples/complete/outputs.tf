# The aidlc.yaml to ship in the images, and what operators need next.

output "aidlc_yaml" {
  description = "aidlc.yaml sections for the AWS backends."
  value       = module.aidlc.aidlc_yaml
}

output "api_url" {
  description = "Load balancer address of the inference API."
  value       = module.aidlc.api_url
}

output "role_arns" {
  description = "Component roles."
  value       = module.aidlc.role_arns
}

output "token_secret_arns" {
  description = "Secrets to fill with aidlc tokens."
  value       = module.aidlc.token_secret_arns
}
