// Command pause is the sandbox ("pause") image of the node e2e target: it
// holds a pod's namespaces and waits to be told to stop. containerd's CRI
// plugin needs one, and the usual one is pulled from a registry this machine
// cannot reach.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
