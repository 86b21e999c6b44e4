# Swarm join tokens and the Consul gossip key live in Parameter Store as
# SecureString parameters encrypted with a key of their own, so the instance
# roles can be granted decryption of exactly these parameters and nothing
# else. Terraform creates the token parameters with a placeholder; the first
# manager replaces it with the real tokens after `docker swarm init`.

resource "aws_kms_key" "params" {
  description             = "${local.name}: Swarm join tokens and Consul gossip key"
  enable_key_rotation     = true
  deletion_window_in_days = 7
}

resource "aws_kms_alias" "params" {
  name          = "alias/${local.name}-cluster-secrets"
  target_key_id = aws_kms_key.params.key_id
}

resource "aws_ssm_parameter" "join_token" {
  for_each = {
    manager = local.manager_token_param
    worker  = local.worker_token_param
  }

  name        = each.value
  description = "Swarm ${each.key} join token (written by the first manager)"
  type        = "SecureString"
  key_id      = aws_kms_key.params.arn
  value       = local.token_placeholder

  lifecycle {
    ignore_changes = [value]
  }
}

resource "random_id" "consul_gossip" {
  byte_length = 32
}

resource "aws_ssm_parameter" "gossip_key" {
  name        = local.gossip_key_param
  description = "Consul gossip encryption key"
  type        = "SecureString"
  key_id      = aws_kms_key.params.arn
  value       = random_id.consul_gossip.b64_std
}
