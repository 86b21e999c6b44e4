// Command sleeper is the process of the watchman benchmark's idle
// containers: it blocks until SIGTERM or SIGINT and uses no CPU meanwhile.
// It is built statically into a FROM scratch image by bench/watchman.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
