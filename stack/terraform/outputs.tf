output "alb_dns_name" {
  description = "DNS name of the load balancer; point the platform's host name at it (CNAME or alias record)."
  value       = aws_lb.web.dns_name
}

output "web_url" {
  description = "URL of the web tier through the load balancer."
  value       = var.certificate_arn == "" ? "http://${aws_lb.web.dns_name}/" : "https://${aws_lb.web.dns_name}/"
}

output "alb_zone_id" {
  description = "Route 53 hosted zone id of the load balancer, for an alias record."
  value       = aws_lb.web.zone_id
}

output "web_target_group_arn" {
  description = "Target group of the web tier (port 8080, health check /healthz)."
  value       = aws_lb_target_group.web.arn
}

output "manager_asg_name" {
  description = "Auto-scaling group of the Swarm managers."
  value       = aws_autoscaling_group.node["manager"].name
}

output "cpu_worker_asg_name" {
  description = "Auto-scaling group of the CPU workers."
  value       = aws_autoscaling_group.node["cpu"].name
}

output "gpu_worker_asg_name" {
  description = "Auto-scaling group of the GPU workers."
  value       = aws_autoscaling_group.node["gpu"].name
}

output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "Private subnets the nodes run in, one per availability zone."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets of the load balancer and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "nodes_security_group_id" {
  description = "Security group of every node."
  value       = aws_security_group.nodes.id
}

output "join_token_parameters" {
  description = "Parameter Store names of the Swarm join tokens (SecureString)."
  value       = { for role, p in aws_ssm_parameter.join_token : role => p.name }
}

output "parameters_kms_key_arn" {
  description = "KMS key that encrypts the cluster's parameters."
  value       = aws_kms_key.params.arn
}

output "instance_role_names" {
  description = "IAM roles of the managers and the workers."
  value       = { for role, r in aws_iam_role.node : role => r.name }
}
