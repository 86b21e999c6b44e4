# Three node groups, each a launch template and an auto-scaling group in the
# private subnets: managers (Swarm managers and Consul servers), CPU workers
# (the web tier and the data services) and GPU workers (training engines).

locals {
  # What the worker groups share.
  worker = {
    swarm_role         = "worker"
    instance_profile   = aws_iam_instance_profile.node["worker"].name
    security_group_ids = [aws_security_group.nodes.id]
  }

  # Each group: its instance type and sizes (the workers' straight from their
  # variables), image, role and the Swarm node labels of its instances.
  node_groups = {
    manager = {
      instance_type      = var.manager_instance_type
      min                = var.manager_count
      desired            = var.manager_count
      max                = var.manager_count
      swarm_role         = "manager"
      instance_profile   = aws_iam_instance_profile.node["manager"].name
      security_group_ids = [aws_security_group.nodes.id, aws_security_group.managers.id]
      ami                = data.aws_ami.node
      labels             = var.node_labels.manager
      target_group_arns  = []
      gpu                = false
    }
    cpu = merge(var.cpu_workers, local.worker, {
      ami               = data.aws_ami.node
      labels            = var.node_labels.cpu
      target_group_arns = [aws_lb_target_group.web.arn]
      gpu               = false
    })
    gpu = merge(var.gpu_workers, local.worker, {
      ami               = data.aws_ami.gpu
      labels            = var.node_labels.gpu
      target_group_arns = []
      gpu               = true
    })
  }

  # The bootstrap scripts, gzip+base64 for cloud-init's write_files.
  bootstrap_scripts = {
    for f in local.bootstrap_scripts_list : f => base64gzip(file("${path.module}/scripts/${f}"))
  }

  # Per-group user data: a cloud-config that writes the settings file and the
  # scripts, then runs bootstrap.sh. It names the parameters, never their values.
  user_data = {
    for group, g in local.node_groups : group => templatefile("${path.module}/templates/cloud-init.yaml.tftpl", {
      scripts = local.bootstrap_scripts
      node_env = base64gzip(templatefile("${path.module}/templates/node.env.tftpl", {
        cluster             = var.cluster_name
        group               = group
        swarm_role          = g.swarm_role
        gpu                 = g.gpu
        region              = var.region
        kms_key_arn         = aws_kms_key.params.arn
        manager_token_param = local.manager_token_param
        worker_token_param  = local.worker_token_param
        gossip_key_param    = local.gossip_key_param
        token_placeholder   = local.token_placeholder
        consul_version      = var.consul_version
        consul_zip_sha256   = var.consul_zip_sha256
        consul_servers      = var.manager_count
        consul_join_tag_key = local.consul_join_tag_key
        label_tag_prefix    = local.node_label_tag_prefix
        swarm_address_pool  = var.swarm_address_pool
      }))
    })
  }
}

resource "aws_launch_template" "node" {
  for_each = local.node_groups

  name_prefix            = "${local.name}-${each.key}-"
  description            = "Heartwood ${each.key} nodes"
  image_id               = each.value.ami.id
  instance_type          = each.value.instance_type
  vpc_security_group_ids = each.value.security_group_ids
  user_data              = base64encode(local.user_data[each.key])
  update_default_version = true

  iam_instance_profile {
    name = each.value.instance_profile
  }

  # IMDSv2 only, one hop: processes on the node get the instance role,
  # containers behind Docker's NAT do not.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = each.value.ami.root_device_name

    ebs {
      volume_size           = var.root_volume_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = merge(
      var.tags,
      {
        Name                        = "${local.name}-${each.key}"
        "heartwood:cluster"         = var.cluster_name
        "heartwood:group"           = each.key
        (local.consul_join_tag_key) = var.cluster_name
      },
      { for k, v in each.value.labels : "${local.node_label_tag_prefix}${k}" => v },
    )
  }

  tag_specifications {
    resource_type = "volume"
    tags = merge(var.tags, {
      Name                = "${local.name}-${each.key}"
      "heartwood:cluster" = var.cluster_name
    })
  }
}

resource "aws_autoscaling_group" "node" {
  for_each = local.node_groups

  name                      = "${local.name}-${each.key}"
  min_size                  = each.value.min
  desired_capacity          = each.value.desired
  max_size                  = each.value.max
  vpc_zone_identifier       = aws_subnet.private[*].id
  target_group_arns         = each.value.target_group_arns
  health_check_type         = "EC2"
  health_check_grace_period = 300

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  # Workers are replaced a few at a time when their launch template changes.
  # Managers are not: replacing them must keep the Raft majority, so it is a
  # manual, one-at-a-time procedure (see README.md).
  dynamic "instance_refresh" {
    for_each = each.value.swarm_role == "worker" ? [1] : []
    content {
      strategy = "Rolling"
      preferences {
        min_healthy_percentage = 66
        instance_warmup        = 300
      }
    }
  }

  tag {
    key                 = "heartwood:group"
    value               = each.key
    propagate_at_launch = false
  }

  depends_on = [
    aws_ssm_parameter.join_token,
    aws_ssm_parameter.gossip_key,
    aws_iam_role_policy.cluster_bootstrap,
    aws_route.private_nat,
  ]
}
