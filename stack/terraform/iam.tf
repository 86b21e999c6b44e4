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

data "aws_iam_policy_document" "manager" {
  statement {
    sid       = "ReadClusterParameters"
    actions   = ["ssm:GetParameter"]
    resources = [local.manager_token_arn, local.worker_token_arn, local.gossip_key_arn]
  }

  statement {
    sid       = "WriteJoinTokens"
    actions   = ["ssm:PutParameter"]
    resources = [local.manager_token_arn, local.worker_token_arn]
  }

  statement {
    sid       = "DecryptClusterParameters"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.params.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [local.manager_token_arn, local.worker_token_arn, local.gossip_key_arn]
    }
  }

  statement {
    sid       = "EncryptJoinTokens"
    actions   = ["kms:Encrypt"]
    resources = [aws_kms_key.params.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [local.manager_token_arn, local.worker_token_arn]
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

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ReadClusterParameters"
    actions   = ["ssm:GetParameter"]
    resources = [local.worker_token_arn, local.gossip_key_arn]
  }

  statement {
    sid       = "DecryptClusterParameters"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.params.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:PARAMETER_ARN"
      values   = [local.worker_token_arn, local.gossip_key_arn]
    }
  }

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

resource "aws_iam_role" "manager" {
  name               = "${local.name}-manager"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role" "worker" {
  name               = "${local.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy" "manager" {
  name   = "cluster-bootstrap"
  role   = aws_iam_role.manager.id
  policy = data.aws_iam_policy_document.manager.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "cluster-bootstrap"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_role_policy" "manager_session_manager" {
  count  = var.enable_session_manager ? 1 : 0
  name   = "session-manager"
  role   = aws_iam_role.manager.id
  policy = data.aws_iam_policy_document.session_manager.json
}

resource "aws_iam_role_policy" "worker_session_manager" {
  count  = var.enable_session_manager ? 1 : 0
  name   = "session-manager"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.session_manager.json
}

resource "aws_iam_instance_profile" "manager" {
  name = "${local.name}-manager"
  role = aws_iam_role.manager.name
}

resource "aws_iam_instance_profile" "worker" {
  name = "${local.name}-worker"
  role = aws_iam_role.worker.name
}
