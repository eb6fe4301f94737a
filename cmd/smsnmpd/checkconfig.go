package main

import (
	"fmt"
	"io"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", stderr)
	// -config as in every other command; the positional form is older.
	file := fs.String("config", "", "configuration `file` to check")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	path := *file
	switch {
	case path == "" && fs.NArg() == 1:
		path = fs.Arg(0)
	case path == "" || fs.NArg() != 0:
		fmt.Fprintln(stderr, "usage: smsnmpd check-config [-config] FILE")
		return exitUsage
	}
	if err := config.Check(path); err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	fmt.Fprintf(stdout, "%s: valid\n", path)
	return exitOK
}
