// Command etcd builds the etcd server for envtest from Go modules, for
// machines where setup-envtest cannot download its release binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
