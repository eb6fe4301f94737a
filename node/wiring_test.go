package node

import (
	"reflect"
	"testing"

	"github.com/smsnmpd/smsnmpd/agent"
	"github.com/smsnmpd/smsnmpd/fanout"
	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

// Every smTransport object shows the endpoint's counter of the same name.
func TestTransportCounters(t *testing.T) {
	var c rmtp.Counters
	cv := reflect.ValueOf(&c).Elem()
	for i := range cv.NumField() {
		cv.Field(i).SetUint(uint64(i + 1))
	}
	got := reflect.ValueOf(transportCounters(c))
	for i := range got.NumField() {
		name := got.Type().Field(i).Name
		want := cv.FieldByName(name)
		if !want.IsValid() {
			t.Errorf("mib.TransportCounters.%s has no rmtp.Counters field of that name", name)
			continue
		}
		if got.Field(i).Uint() != want.Uint() {
			t.Errorf("%s = %d, want rmtp's %d", name, got.Field(i).Uint(), want.Uint())
		}
	}
}

// The configuration's defaults, wired into the libraries, are the
// libraries' own: every field the wiring sets that a library also
// defaults gets the library's default from config.Default.
func TestDefaultsWiredAsTheLibraries(t *testing.T) {
	cfg := config.Default()
	cfg.Node.ID = 1
	tree := agent.NewTree()
	for _, c := range []struct {
		what      string
		wired, lb any
		least     int // fields compared at least: the test is not vacuous
	}{
		{"rmtp", rmtpConfig(cfg, rmtp.Engine, 1, nil, nil, nil), rmtp.DefaultConfig(), 6},
		{"coordinator", coordinatorConfig(cfg, nil), fanout.DefaultCoordinatorConfig(), 5},
		{"responder", responderConfig(cfg, tree, nil), fanout.DefaultResponderConfig(), 3},
	} {
		w, d := reflect.ValueOf(c.wired), reflect.ValueOf(c.lb)
		n := 0
		for i := range w.NumField() {
			wf, df := w.Field(i), d.Field(i)
			if wf.IsZero() || df.IsZero() { // the library fills it, or has no default
				continue
			}
			n++
			if !reflect.DeepEqual(wf.Interface(), df.Interface()) {
				t.Errorf("%s.%s wired as %v, the library's default is %v", c.what, w.Type().Field(i).Name, wf, df)
			}
		}
		if n < c.least {
			t.Errorf("%s: %d defaulted fields wired from the configuration, want at least %d", c.what, n, c.least)
		}
	}
}
