package snmp

import (
	"context"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// waitLog waits (bounded) until the log file holds s.
func waitLog(t *testing.T, logf, s string) bool {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(logf); strings.Contains(string(b), s) {
			return true
		}
	}
	b, _ := os.ReadFile(logf)
	t.Logf("snmptrapd log:\n%s", b)
	return false
}

// TestNotifySinks: an SNMPv3 authPriv trap reaches a real snmptrapd that
// knows our engine ID; SNMPv3 and SNMPv2c informs are acknowledged by it
// (it is the authoritative engine of a v3 inform: the agent discovers it
// and localizes the user's keys to it).
func TestNotifySinks(t *testing.T) {
	cfg := v3Config()
	eid := "0x" + hex.EncodeToString(cfg.Engine.ID)
	addr, logf := startTrapd(t,
		"createUser -e "+eid+" ops SHA-256 "+testAuthPass+" AES "+testPrivPass,
		"createUser big SHA-512 "+testAuthPass+" AES-256 "+testPrivPass,
		"authUser log ops", "authUser log big", "authCommunity log traps")
	cfg.Sinks = []Sink{
		{Address: addr, User: "ops"},
		{Address: addr, User: "big", Inform: true},
		{Address: addr, Community: config.NewSecret("traps"), Inform: true},
	}
	cfg.InformTimeout = 500 * time.Millisecond
	h := newHarness(t, cfg)
	trap := smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242.0.7")
	vb := []smi.VarBind{{Name: smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242.9.0"), Value: smi.String("v3-notification")}}
	if err := h.a.Notify(context.Background(), trap, vb); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.a.WaitInforms(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitLog(t, logf, "v3-notification") {
		t.Fatal("nothing reached snmptrapd")
	}
	b, _ := os.ReadFile(logf)
	if n := strings.Count(string(b), `"v3-notification"`); n != 3 {
		t.Errorf("snmptrapd logged %d notifications, want 3 (a v3 trap, a v3 inform, a v2c inform):\n%s", n, b)
	}
	if c := h.a.Counters(); c.OutTraps != 1 || c.InformsAcked != 2 || c.InformFailures != 0 {
		t.Errorf("counters: traps %d, informs acked %d, failed %d", c.OutTraps, c.InformsAcked, c.InformFailures)
	}
}

// TestInformUnacknowledged: with nothing listening, an inform is re-sent
// InformRetries times, then counted as failed, within its bound.
func TestInformUnacknowledged(t *testing.T) {
	for _, s := range []Sink{
		{Address: "127.0.0.1:" + strconv.Itoa(freeUDPPort(t)), Community: config.NewSecret("traps"), Inform: true},
		{Address: "127.0.0.1:" + strconv.Itoa(freeUDPPort(t)), User: "ops", Inform: true},
	} {
		cfg := v3Config()
		cfg.Sinks = []Sink{s}
		cfg.InformTimeout, cfg.InformRetries = 200*time.Millisecond, 2
		h := newHarness(t, cfg)
		t0 := time.Now()
		if err := h.a.Notify(context.Background(), smi.OID{1, 3, 6, 1, 4, 1, 8072, 9}, nil); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := h.a.WaitInforms(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		d := time.Since(t0)
		if c := h.a.Counters(); c.InformFailures != 1 || c.InformsAcked != 0 {
			t.Errorf("%s: counters %+v", s.Address, c)
		}
		// 3 sends of 200 ms: at least 0.6 s, and well within 5 s.
		if d < 500*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: gave up after %v", s.Address, d)
		}
	}
}
