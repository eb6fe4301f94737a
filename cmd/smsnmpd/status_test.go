package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smsnmpd/smsnmpd/internal/control"
	"github.com/smsnmpd/smsnmpd/node"
)

// statusNode is a control socket answering status with snap, and with an
// extra field a newer node might add.
func statusNode(t *testing.T, snap node.Snapshot) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "control.sock")
	srv, err := control.Listen(path, func(_ context.Context, cmd string, raw json.RawMessage) (any, error) {
		if cmd != control.CmdStatus {
			return nil, control.ErrUnknownCommand
		}
		var a control.StatusArgs
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
		}
		if a.Engine != 0 && a.Engine != 7 {
			return nil, &control.RemoteError{Command: cmd, Message: "no engine here"}
		}
		b, _ := json.Marshal(snap)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		m["from_a_newer_node"] = true
		return m, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "unix:" + path
}

// status prints what an operator looks at first; -json prints everything
// the node sent, fields this CLI does not know included.
func TestStatusPrintsTheSnapshot(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	snap := node.Snapshot{Taken: at.Add(90 * time.Second), Started: at, Version: "1.2.3", Node: 1000, Name: "bsm-a", Role: "backup", Level: 1, Term: 4,
		View:      node.View{Owner: 1001, Term: 4, Version: 9, Members: []node.Member{{Node: 7, Role: "engine"}, {Node: 1000, Role: "manager"}, {Node: 1001, Role: "manager"}}},
		Farm:      node.Link{Peers: []node.Peer{{Node: 1001, Role: "manager", State: "alive", Active: true}, {Node: 7, Role: "engine", State: "alive"}}, Transport: node.Transport{Sent: 12, AuthFailures: 2}},
		Subtree:   &node.Subtree{Up: 1, Down: 2, Requests: 99},
		Engines:   []node.Engine{{ID: 7, Name: "cache-7", State: "up", Addr: "10.0.0.7:7730", RTTMicros: 250, Load: 1.5, Requests: 99, ContentCount: 3, LastStatus: "ok"}},
		Manager:   &node.ManagerState{Election: "backup", Cause: "fenced", Owner: 1001, StaleTerm: 5, ReconcilesPending: 1, Fanout: node.Fanout{Transactions: 40, UndoFailed: 1}},
		Directory: &node.DirectoryInfo{Entries: 3, MaxEntries: 100, Flow: node.Flow{RefusedOps: 6, RefusalEpisodes: 1}},
		Events: []node.Event{{Time: at.Add(time.Second), Kind: node.EventRole, Role: "backup", Cause: "fenced", Term: 4},
			{Time: at.Add(2 * time.Second), Kind: node.EventEngineDown, Engine: 7}},
		EventsTotal: 2}
	sock := statusNode(t, snap)
	var out bytes.Buffer
	if code := run([]string{"status", "-socket", sock}, &out, &out); code != exitOK {
		t.Fatalf("status: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{
		"node 1000 (bsm-a): backup, level 1, cdn 0 / datacenter 0 / farm 0, smsnmpd 1.2.3, up 1m30s",
		"view: term 4, owner 1001, version 9, 3 member(s)",
		"election: backup (fenced), following 1001, fenced: the SEs obey term 5",
		"1 engine(s) to reconcile",
		"farm group: 1001 manager alive active, 7 engine alive",
		"engines: 1 (1 up)",
		"10.0.0.7:7730",
		"cache-7",
		"below: 1 engine(s) up, 0 suspect, 2 down; 99 requests",
		"directory: 3 entries (cap 100), 0 updates; refused 6 ops over the rate",
		"2 auth failures",
		"recent events (2 of 2",
		"role backup (fenced) term 4",
		"engine-down 7",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run([]string{"status", "-json", "-socket", sock, "-engine", "7"}, &out, &out); code != exitOK {
		t.Fatalf("status -json: exit %d\n%s", code, out.String())
	}
	var back map[string]any
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("status -json is not JSON: %v\n%s", err, out.String())
	}
	if back["from_a_newer_node"] != true || back["role"] != "backup" || back["node"] != float64(1000) {
		t.Errorf("status -json dropped or changed fields: %v", back)
	}

	out.Reset()
	if code := run([]string{"status", "-socket", sock, "-engine", "3"}, &out, &out); code != exitFail || !strings.Contains(out.String(), "no engine here") {
		t.Errorf("status of an engine not there: exit %d\n%s", code, out.String())
	}
	if code := run([]string{"status", "-socket", sock, "extra"}, &out, &out); code != exitUsage {
		t.Errorf("status with an argument: exit %d", code)
	}
}
