package main

import (
	"fmt"
	"io"
)

func cmdVerify(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "rowsync verify: not built yet")
	return exitFail
}
