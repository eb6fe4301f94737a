//go:build !linux

package agentx_test

import (
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// startRawFloorResponder is built on Linux only; elsewhere the benchmark
// runs without the raw floor.
func startRawFloorResponder(*testing.B, string, smi.OID) bool { return false }
