package rmtp

import (
	"reflect"
	"testing"
)

// A zero Config is filled with DefaultConfig, field for field, and with
// nothing DefaultConfig does not name but the member's identity and its
// logger: the defaults are written in one place.
func TestFillIsDefaultConfig(t *testing.T) {
	c := Config{Node: 1, Role: Engine, Insecure: true}
	if err := c.fill(); err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{"Node": true, "Role": true, "Insecure": true, "Incarnation": true, "Logger": true}
	got, want := reflect.ValueOf(c), reflect.ValueOf(DefaultConfig())
	for i := range got.NumField() {
		name := got.Type().Field(i).Name
		g, w := got.Field(i), want.Field(i)
		switch {
		case own[name]:
		case w.IsZero() && !g.IsZero():
			t.Errorf("fill defaults %s to %v, DefaultConfig has none", name, g)
		case !w.IsZero() && !reflect.DeepEqual(g.Interface(), w.Interface()):
			t.Errorf("fill defaults %s to %v, DefaultConfig to %v", name, g, w)
		}
	}
}
