// Command mkpkg builds Tally's release packages (make packages): see
// package packaging and the README's "Packages" section.
package main

import (
	"os"

	"github.com/tallyhq/tally/installer/packaging"
)

func main() {
	os.Exit(packaging.Main(os.Args[1:], os.Stdout, os.Stderr))
}
