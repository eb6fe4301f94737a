package config

import (
	"encoding"
	"reflect"
	"sort"
	"strings"
)

// keyInfo describes one key of the schema.
type keyInfo struct {
	secret bool
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	secretType          = reflect.TypeFor[Secret]()
)

// schemaKeys lists every key the Config struct accepts, tables included, by
// their dotted name. It is derived from the toml tags, so a field added to
// Config is accepted without touching this file.
func schemaKeys() map[string]keyInfo {
	out := make(map[string]keyInfo)
	walkSchema(reflect.TypeFor[Config](), "", out)
	return out
}

func walkSchema(t reflect.Type, prefix string, out map[string]keyInfo) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		full := name
		if prefix != "" {
			full = prefix + "." + name
		}
		ft := f.Type
		out[full] = keyInfo{secret: ft == secretType}
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem() // an array of tables: its keys are the element's
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(textUnmarshalerType) {
			walkSchema(ft, full, out)
		}
	}
}

// suggest returns the known key closest to an unknown one, or "".
func suggest(unknown string, known map[string]keyInfo) string {
	best, bestD := "", 1<<30
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names) // deterministic among equal distances
	ul := strings.ToLower(unknown)
	for _, k := range names {
		d := editDistance(ul, strings.ToLower(k))
		if d < bestD {
			best, bestD = k, d
		}
	}
	// Beyond a third of the key's length the "suggestion" is noise.
	if bestD == 0 || bestD <= max(2, len(unknown)/3) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
