// Command etcd is upstream's etcd server: the few lines that its own root
// module's main.go holds, so that it builds from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
