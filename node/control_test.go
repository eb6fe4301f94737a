package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/control"
)

// The control socket refuses a negative TTL (it would mean "never
// expires") before adding anything, with a clear error.
func TestControlRefusesNegativeTTL(t *testing.T) {
	h := &controlHandler{}
	raw, _ := json.Marshal(control.PublishArgs{Entries: []control.PublishEntry{{Key: "a", TTL: 1e9}, {Key: "b", TTL: -1}}})
	res, err := h.handle(context.Background(), control.CmdPublish, raw)
	if err == nil || !strings.Contains(err.Error(), `"b": ttl -1ns is negative`) {
		t.Fatalf("negative ttl: %v, %v", res, err)
	}
	if r, ok := res.(control.PublishResult); !ok || r.Queued != 0 {
		t.Errorf("result %+v, want nothing accepted", res)
	}
}
