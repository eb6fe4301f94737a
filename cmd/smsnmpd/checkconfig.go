package main

import (
	"fmt"
	"io"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: smsnmpd check-config FILE")
		return exitUsage
	}
	path := fs.Arg(0)
	if err := config.Check(path); err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: valid\n", path)
	return exitOK
}
