package pdu

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// The codec's share of one request: decoding snmpd's recorded 14-range Get
// and encoding its recorded 14-varbind Response.
func BenchmarkCodec(b *testing.B) {
	load := func(name string) []byte {
		text, err := os.ReadFile("testdata/snmpd/" + name + ".hex")
		if err != nil {
			b.Fatal(err)
		}
		raw, err := hex.DecodeString(strings.TrimSpace(string(text)))
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	get, resp := load("master-Get-14ranges"), load("subagent-Response-to-Get")
	b.Run("DecodeGet14", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := Decode(get); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := Decode(resp)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("EncodeResponse14", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for i := 0; i < b.N; i++ {
			if _, err := Append(buf[:0], p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
