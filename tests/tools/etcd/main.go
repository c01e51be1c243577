// Command etcd runs the published etcd 3.5 server module; the test harness builds it from here
// because etcd's own main module has local replaces that `go install` refuses.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
