package config

import (
	"reflect"
	"strings"
)

// Diff lists the dotted keys whose values differ between two configs, in
// struct order. It names keys only, never values, so the result may be
// logged even when a community changed.
func Diff(old, cur *Config) []string {
	var out []string
	diffStruct(reflect.ValueOf(old).Elem(), reflect.ValueOf(cur).Elem(), "", &out)
	return out
}

func diffStruct(a, b reflect.Value, prefix string, out *[]string) {
	t := a.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshalerType) {
			diffStruct(fa, fb, key, out)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			*out = append(*out, key)
		}
	}
}

// Reloadable reports whether a change of key takes effect on SIGHUP without
// a restart. Today that is the [log] section; everything else (identity,
// sockets, groups, keys, deadlines baked into running sessions) needs a
// restart, and the caller should say so for each changed key.
func Reloadable(key string) bool {
	switch key {
	case "log.level", "log.format":
		return true
	}
	return false
}
