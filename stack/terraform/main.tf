provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "heartwood:cluster" = var.cluster_name
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

# Default images: Amazon Linux 2023 for managers and CPU workers, and the AWS
# Deep Learning Base AMI (NVIDIA driver, Docker and the NVIDIA container
# toolkit preinstalled) for GPU workers. Set ami_id / gpu_ami_id to pin them.
data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == "" ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

data "aws_ssm_parameter" "gpu_ami" {
  count = var.gpu_ami_id == "" ? 1 : 0
  name  = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
}

data "aws_ami" "node" {
  filter {
    name   = "image-id"
    values = [local.ami_id]
  }
}

data "aws_ami" "gpu" {
  filter {
    name   = "image-id"
    values = [local.gpu_ami_id]
  }
}

locals {
  name       = var.cluster_name
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  ami_id     = var.ami_id != "" ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value
  gpu_ami_id = var.gpu_ami_id != "" ? var.gpu_ami_id : data.aws_ssm_parameter.gpu_ami[0].insecure_value

  # Parameter Store layout. Every node reads the gossip key; managers read
  # and write both join tokens; workers read only the worker token.
  ssm_prefix             = "/heartwood/${var.cluster_name}"
  manager_token_param    = "${local.ssm_prefix}/swarm/manager-token"
  worker_token_param     = "${local.ssm_prefix}/swarm/worker-token"
  gossip_key_param       = "${local.ssm_prefix}/consul/gossip-key"
  ssm_param_arn_prefix   = "arn:${local.partition}:ssm:${var.region}:${local.account_id}:parameter"
  manager_token_arn      = "${local.ssm_param_arn_prefix}${local.manager_token_param}"
  worker_token_arn       = "${local.ssm_param_arn_prefix}${local.worker_token_param}"
  gossip_key_arn         = "${local.ssm_param_arn_prefix}${local.gossip_key_param}"
  token_placeholder      = "uninitialised"
  consul_join_tag_key    = "heartwood:consul-join"
  node_label_tag_prefix  = "heartwood:label:"
  bootstrap_scripts_list = ["lib.sh", "bootstrap.sh", "install-consul.sh", "swarm-join.sh", "label-nodes.sh"]
}
