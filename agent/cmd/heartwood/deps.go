package main

import (
	_ "github.com/docker/docker/client"
	_ "github.com/elastic/go-elasticsearch/v8"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/shirou/gopsutil/v4/host"
	_ "gopkg.in/yaml.v3"
)

func main() {}
