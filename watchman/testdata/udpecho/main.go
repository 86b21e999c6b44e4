// Command udpecho answers every datagram it receives on UDP port 9999 with
// "echo: " and the datagram, for the watchman's UDP wake test.
package main

import (
	"log"
	"net"
)

func main() {
	c, err := net.ListenPacket("udp", ":9999")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := c.WriteTo(append([]byte("echo: "), buf[:n]...), from); err != nil {
			log.Print(err)
		}
	}
}
