package node

import (
	"reflect"
	"testing"

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
