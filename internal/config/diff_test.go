package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	a := Demo()
	b := Demo()
	if d := Diff(a, b); len(d) != 0 {
		t.Fatalf("equal configs differ in %v", d)
	}
	b.Log.Level = "debug"
	b.SNMP.RWCommunity = NewSecret("other-secret-value")
	b.SNMP.TrapSinks = []Addr{MustAddr("udp:127.0.0.1:162")}
	b.RMTP.Parent.Peers = []Addr{MustAddr("udp:10.0.0.1:7731")}
	b.Fanout.ReadDeadline = D(700 * time.Millisecond)
	got := Diff(a, b)
	want := []string{"log.level", "snmp.rw_community", "snmp.trap_sinks", "rmtp.parent.peers", "fanout.read_deadline"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	if strings.Contains(strings.Join(got, " "), "other-secret-value") {
		t.Error("Diff reveals a secret")
	}
	var restart []string
	for _, k := range got {
		if !Reloadable(k) {
			restart = append(restart, k)
		}
	}
	if len(restart) != 4 || Reloadable("node.id") || !Reloadable("log.format") {
		t.Errorf("reloadable split wrong: restart=%v", restart)
	}
}

// TestDiffCoversSchema: changing any one key is seen by Diff under that
// key's name, so a new field cannot slip past a reload check.
func TestDiffCoversSchema(t *testing.T) {
	n := 0
	for key := range schemaKeys() {
		a, b := Demo(), Demo()
		v := fieldByKey(reflect.ValueOf(b).Elem(), strings.Split(key, "."))
		if !v.IsValid() {
			continue // a key of an array of tables: the array is a leaf of its own
		}
		if v.Kind() == reflect.Struct && !reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
			continue // a table, not a leaf
		}
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Uint32:
			v.SetUint(v.Uint() + 1)
		case reflect.Float64:
			v.SetFloat(v.Float() + 0.5)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		case reflect.Struct: // Secret, Addr, Duration
			p := v.Addr().Interface().(interface{ UnmarshalText([]byte) error })
			text := map[reflect.Type]string{
				secretType:                  "changed",
				reflect.TypeFor[Addr]():     "udp:127.0.0.9:9",
				reflect.TypeFor[Duration](): "123ms",
			}[v.Type()]
			if err := p.UnmarshalText([]byte(text)); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		default:
			t.Fatalf("%s: kind %v not handled by this test", key, v.Kind())
		}
		if d := Diff(a, b); len(d) != 1 || d[0] != key {
			t.Errorf("changing %s: Diff = %v", key, d)
		}
		n++
	}
	if n < 60 {
		t.Errorf("only %d leaf keys exercised", n)
	}
}

func fieldByKey(v reflect.Value, path []string) reflect.Value {
	for _, p := range path {
		if v.Kind() != reflect.Struct {
			return reflect.Value{} // inside an array of tables
		}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			if name == p {
				v = v.Field(i)
				break
			}
		}
	}
	return v
}
