variable "region" {
  description = "AWS region to deploy the cluster in."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "cluster_name" {
  description = "Name of the cluster. Prefixes every resource name, the Parameter Store path /heartwood/<cluster_name>/ and the Consul datacenter."
  type        = string
  default     = "heartwood"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.cluster_name))
    error_message = "cluster_name must be 3-24 characters of lower-case letters, digits and hyphens, starting with a letter (it is used in load balancer and IAM names)."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "IPv4 CIDR block of the VPC. Private subnets are /20 slices of a /16 (smaller VPCs get proportionally smaller subnets)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block with a prefix length between /16 and /20."
  }
}

variable "az_count" {
  description = "Number of availability zones to spread subnets and nodes across."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 2 to 6."
  }
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all private subnets (cheaper) instead of one per availability zone (survives the loss of a zone)."
  type        = bool
  default     = false
}

variable "manager_count" {
  description = "Number of Swarm managers, which also run the Consul servers. Odd, so Raft keeps a majority."
  type        = number
  default     = 3

  validation {
    condition     = contains([1, 3, 5, 7], var.manager_count)
    error_message = "manager_count must be 1, 3, 5 or 7."
  }
}

variable "manager_instance_type" {
  description = "EC2 instance type of the managers (x86_64)."
  type        = string
  default     = "m6i.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.manager_instance_type)) && !can(regex("^[a-z]+[0-9]+g", var.manager_instance_type))
    error_message = "manager_instance_type must be an x86_64 EC2 instance type such as m6i.large (Graviton types are not supported by the images used)."
  }
}

variable "cpu_workers" {
  description = "CPU worker group: x86_64 instance type and auto-scaling sizes (min <= desired <= max)."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
  default = {
    instance_type = "c6i.xlarge"
    min           = 2
    desired       = 2
    max           = 6
  }

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.cpu_workers.instance_type)) && !can(regex("^[a-z]+[0-9]+g", var.cpu_workers.instance_type))
    error_message = "cpu_workers.instance_type must be an x86_64 EC2 instance type such as c6i.xlarge."
  }

  validation {
    condition     = var.cpu_workers.min >= 1 && var.cpu_workers.min <= var.cpu_workers.desired && var.cpu_workers.desired <= var.cpu_workers.max && var.cpu_workers.max <= 100
    error_message = "cpu_workers needs 1 <= min <= desired <= max <= 100 (the web tier runs on CPU workers, so at least one is required)."
  }
}

variable "gpu_workers" {
  description = "GPU worker group: NVIDIA GPU instance type (x86_64) and auto-scaling sizes (min <= desired <= max; 0 disables the group)."
  type = object({
    instance_type = string
    min           = number
    desired       = number
    max           = number
  })
  default = {
    instance_type = "g5.xlarge"
    min           = 0
    desired       = 1
    max           = 4
  }

  validation {
    condition     = can(regex("^(g4dn|g5|g6|g6e|gr6|p3|p3dn|p4d|p4de|p5|p5e|p5en)\\.[a-z0-9]+$", var.gpu_workers.instance_type))
    error_message = "gpu_workers.instance_type must be an x86_64 NVIDIA GPU instance type (g4dn, g5, g6, g6e, gr6, p3, p3dn, p4d, p4de, p5, p5e or p5en family)."
  }

  validation {
    condition     = var.gpu_workers.min >= 0 && var.gpu_workers.min <= var.gpu_workers.desired && var.gpu_workers.desired <= var.gpu_workers.max && var.gpu_workers.max <= 100
    error_message = "gpu_workers needs 0 <= min <= desired <= max <= 100."
  }
}

variable "ami_id" {
  description = "AMI for managers and CPU workers (x86_64, Amazon Linux 2023 family). Empty: the latest Amazon Linux 2023 image. Pin it in production so a new image does not replace launch templates unexpectedly."
  type        = string
  default     = ""

  validation {
    condition     = var.ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be empty or an AMI id such as ami-0123456789abcdef0."
  }
}

variable "gpu_ami_id" {
  description = "AMI for GPU workers (x86_64, Amazon Linux 2023 with the NVIDIA driver, Docker and the NVIDIA container toolkit). Empty: the latest AWS Deep Learning Base OSS NVIDIA Driver GPU AMI (Amazon Linux 2023)."
  type        = string
  default     = ""

  validation {
    condition     = var.gpu_ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.gpu_ami_id))
    error_message = "gpu_ami_id must be empty or an AMI id such as ami-0123456789abcdef0."
  }
}

variable "root_volume_gb" {
  description = "Size in GiB of each node's encrypted gp3 root volume (Docker images, volumes and logs live there)."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_gb >= 30 && var.root_volume_gb <= 16384
    error_message = "root_volume_gb must be between 30 and 16384."
  }
}

variable "consul_version" {
  description = "Consul release installed on every node."
  type        = string
  default     = "1.14.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.consul_version))
    error_message = "consul_version must be a release number such as 1.14.0."
  }
}

variable "consul_zip_sha256" {
  description = "Expected SHA-256 of consul_<version>_linux_amd64.zip. Empty: the node checks the archive against the release's SHA256SUMS file instead."
  type        = string
  default     = ""

  validation {
    condition     = var.consul_zip_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.consul_zip_sha256))
    error_message = "consul_zip_sha256 must be empty or 64 lower-case hex digits."
  }
}

variable "node_labels" {
  description = "Swarm node labels per group, applied by the managers from each instance's tags. The platform stack's placement constraints refer to them (node.labels.<key>)."
  type = object({
    manager = map(string)
    cpu     = map(string)
    gpu     = map(string)
  })
  default = {
    manager = { "heartwood.role" = "manager" }
    cpu     = { "heartwood.role" = "cpu", "heartwood.web" = "true", "heartwood.data" = "true" }
    gpu     = { "heartwood.role" = "gpu", "heartwood.gpu" = "true" }
  }

  validation {
    condition = alltrue([
      for k, v in merge(var.node_labels.manager, var.node_labels.cpu, var.node_labels.gpu) :
      can(regex("^[a-z0-9][a-z0-9._-]{0,62}$", k)) && can(regex("^[A-Za-z0-9._-]{0,63}$", v))
    ])
    error_message = "node_labels keys must be lower-case [a-z0-9._-] (up to 63 characters) and values [A-Za-z0-9._-] (up to 63 characters)."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener on the load balancer. Empty: HTTP only on port 80; set: HTTPS on 443 and port 80 redirects to it."
  type        = string
  default     = ""

  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$", var.certificate_arn))
    error_message = "certificate_arn must be empty or an ACM certificate ARN."
  }
}

variable "swarm_address_pool" {
  description = "Address pool Swarm carves overlay networks from (/24 each). Must not overlap vpc_cidr; Docker's default (10.0.0.0/8) would."
  type        = string
  default     = "10.192.0.0/12"

  validation {
    condition     = can(cidrhost(var.swarm_address_pool, 0)) && try(tonumber(split("/", var.swarm_address_pool)[1]) <= 20, false)
    error_message = "swarm_address_pool must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "enable_session_manager" {
  description = "Let operators open shells on nodes with AWS Systems Manager Session Manager (no SSH port is opened). Grants the instance roles the Session Manager channel actions."
  type        = bool
  default     = true
}
