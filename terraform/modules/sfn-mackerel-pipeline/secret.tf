# The Mackerel API key. Terraform creates only the container: the value is put with
# `aws secretsmanager put-secret-value` (see README.md), so the key never appears
# in a plan, in the Terraform state, or in the function's configuration.

resource "aws_secretsmanager_secret" "mackerel_api_key" {
  #checkov:skip=CKV_AWS_149:The secret is encrypted with the AWS-managed key aws/secretsmanager; a customer-managed key adds a key policy to run and pay for, and only this function reads the secret. Pass kms_key_id through a fork if your organisation requires one.
  #checkov:skip=CKV2_AWS_57:Mackerel API keys are issued in Mackerel's web UI; there is no API a rotation Lambda could call. Rotate by issuing a new key and putting it with put-secret-value.
  name                    = local.secret_name
  description             = "Mackerel API key (write permission) for the ${local.function_name} Lambda. Value set outside Terraform: either the bare key or {\"MACKEREL_API_KEY\": \"...\"}."
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = local.tags
}
