# Three security groups:
#   alb      — the load balancer: HTTP(S) from anywhere, out only to the web port of the nodes.
#   nodes    — every node: Swarm gossip and overlay, Consul LAN gossip, HTTP and DNS,
#              Heartwood's API, all from other nodes only; the web port from the load balancer only.
#   managers — managers also: Swarm management and Consul server RPC from every node,
#              Consul WAN gossip between managers.
# Rules are separate resources so each one is reviewed (and tested) on its own.

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Heartwood load balancer"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${local.name}-alb"
  }
}

resource "aws_security_group" "nodes" {
  name        = "${local.name}-nodes"
  description = "Heartwood Swarm nodes"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${local.name}-nodes"
  }
}

resource "aws_security_group" "managers" {
  name        = "${local.name}-managers"
  description = "Heartwood Swarm managers and Consul servers"
  vpc_id      = aws_vpc.main.id

  tags = {
    Name = "${local.name}-managers"
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTP listener"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  count             = var.certificate_arn == "" ? 0 : 1
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS listener"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "alb_to_web" {
  security_group_id            = aws_security_group.alb.id
  description                  = "To the web tier's published port"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Web tier from the load balancer only"
  ip_protocol                  = "tcp"
  from_port                    = 8080
  to_port                      = 8080
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "nodes_all" {
  security_group_id = aws_security_group.nodes.id
  description       = "Outbound: packages, Consul download, AWS APIs (through NAT)"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_ingress_rule" "swarm_gossip_tcp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Swarm node gossip"
  ip_protocol                  = "tcp"
  from_port                    = 7946
  to_port                      = 7946
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "swarm_gossip_udp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Swarm node gossip"
  ip_protocol                  = "udp"
  from_port                    = 7946
  to_port                      = 7946
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "swarm_overlay" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Swarm overlay network (VXLAN)"
  ip_protocol                  = "udp"
  from_port                    = 4789
  to_port                      = 4789
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_serf_lan_tcp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Consul LAN gossip"
  ip_protocol                  = "tcp"
  from_port                    = 8301
  to_port                      = 8301
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_serf_lan_udp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Consul LAN gossip"
  ip_protocol                  = "udp"
  from_port                    = 8301
  to_port                      = 8301
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_http" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Consul HTTP API"
  ip_protocol                  = "tcp"
  from_port                    = 8500
  to_port                      = 8500
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_dns_tcp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Consul DNS"
  ip_protocol                  = "tcp"
  from_port                    = 8600
  to_port                      = 8600
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_dns_udp" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Consul DNS"
  ip_protocol                  = "udp"
  from_port                    = 8600
  to_port                      = 8600
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "heartwood_api" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Heartwood API and metrics"
  ip_protocol                  = "tcp"
  from_port                    = 9321
  to_port                      = 9321
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "swarm_management" {
  security_group_id            = aws_security_group.managers.id
  description                  = "Swarm cluster management"
  ip_protocol                  = "tcp"
  from_port                    = 2377
  to_port                      = 2377
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_server_rpc" {
  security_group_id            = aws_security_group.managers.id
  description                  = "Consul server RPC"
  ip_protocol                  = "tcp"
  from_port                    = 8300
  to_port                      = 8300
  referenced_security_group_id = aws_security_group.nodes.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_serf_wan_tcp" {
  security_group_id            = aws_security_group.managers.id
  description                  = "Consul WAN gossip between servers"
  ip_protocol                  = "tcp"
  from_port                    = 8302
  to_port                      = 8302
  referenced_security_group_id = aws_security_group.managers.id
}

resource "aws_vpc_security_group_ingress_rule" "consul_serf_wan_udp" {
  security_group_id            = aws_security_group.managers.id
  description                  = "Consul WAN gossip between servers"
  ip_protocol                  = "udp"
  from_port                    = 8302
  to_port                      = 8302
  referenced_security_group_id = aws_security_group.managers.id
}
