# Two instance roles. Both may read the Consul gossip key and find cluster
# instances (Consul's cloud auto-join). Only managers may read the manager
# join token and write the join tokens; workers read the worker token only.
# KMS decryption is limited by encryption context to the named parameters.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

locals {
  # The parameters each role reads, and those it writes: the join tokens,
  # which the first manager replaces after `docker swarm init`.
  role_parameters = {
    manager = {
      read  = [local.manager_token_arn, local.worker_token_arn, local.gossip_key_arn]
      write = [local.manager_token_arn, local.worker_token_arn]
    }
    worker = {
      read  = [local.worker_token_arn, local.gossip_key_arn]
      write = []
    }
  }
}

# The policy of each role, "cluster-bootstrap".
data "aws_iam_policy_document" "cluster_bootstrap" {
  for_each = local.role_parameters

  statement {
    sid       = "ReadClusterParameters"
    actions   = ["ssm:GetParameter"]
    resources = each.value.read
  }

  dynamic "statement" {
    for_each = length(each.value.write) > 0 ? [each.value.write] : []
    content {
      sid       = "WriteJoinTokens"
      actions   = ["ssm:PutParameter"]
      resources = statement.value
    }
  }

  statement {
    sid       = "DecryptClusterParameters"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.params.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = each.value.read
    }
  }

  dynamic "statement" {
    for_each = length(each.value.write) > 0 ? [each.value.write] : []
    content {
      sid       = "EncryptJoinTokens"
      actions   = ["kms:Encrypt"]
      resources = [aws_kms_key.params.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:PARAMETER_ARN"
        values   = statement.value
      }
    }
  }

  # Consul cloud auto-join and the managers' node labeller look instances up
  # by tag. EC2 Describe* actions cannot be limited to resources.
  statement {
    sid       = "FindClusterInstances"
    actions   = ["ec2:DescribeInstances"]
    resources = ["*"]
  }
}

# The channel actions Session Manager needs, instead of the broader managed
# policy (which also grants Run Command and inventory).
data "aws_iam_policy_document" "session_manager" {
  statement {
    sid = "SessionManagerChannels"
    actions = [
      "ssm:UpdateInstanceInformation",
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "node" {
  for_each           = local.role_parameters
  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "cluster_bootstrap" {
  for_each = aws_iam_role.node
  name     = "cluster-bootstrap"
  role     = each.value.id
  policy   = data.aws_iam_policy_document.cluster_bootstrap[each.key].json
}

resource "aws_iam_role_policy" "session_manager" {
  for_each = { for role, r in aws_iam_role.node : role => r if var.enable_session_manager }
  name     = "session-manager"
  role     = each.value.id
  policy   = data.aws_iam_policy_document.session_manager.json
}

resource "aws_iam_instance_profile" "node" {
  for_each = aws_iam_role.node
  name     = "${local.name}-${each.key}"
  role     = each.value.name
}
