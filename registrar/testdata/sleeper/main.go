// Command sleeper does nothing until it is stopped; the Swarm integration
// test runs it as a task in an image that EXPOSEs a port.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
