// Package cluster holds the integration tests of Heartwood on a Docker Swarm
// of several nodes built on one machine by cluster.sh (build tag
// integration, run by make test-cluster). See README.md.
package cluster
