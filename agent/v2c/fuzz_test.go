package v2c

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// seedRequests are well-formed requests of every kind; the fuzz targets
// start from them (and from their files in testdata/fuzz, which plain
// `go test` runs).
func seedRequests() [][]byte {
	get := names(agenttest.ScalarInt.Append(0), agenttest.ScalarC64.Append(0), agenttest.Base.Append(99))
	set := []smi.VarBind{
		{Name: agenttest.WritableInt.Append(0), Value: smi.Integer(5)},
		{Name: agenttest.WritableStr.Append(0), Value: smi.String("fuzz")},
	}
	var out [][]byte
	for _, v := range []int{versionV1, versionV2c} {
		for _, c := range []string{"public", "private", "public@none", "x"} {
			out = append(out,
				(&message{version: v, community: []byte(c), pdu: PDUGet, requestID: 1, vbs: get}).encode(),
				(&message{version: v, community: []byte(c), pdu: PDUGetNext, requestID: 2, vbs: get}).encode(),
				(&message{version: v, community: []byte(c), pdu: PDUGetBulk, requestID: 3, field2: 1, field3: 10, vbs: get}).encode(),
				(&message{version: v, community: []byte(c), pdu: PDUSet, requestID: 4, vbs: set}).encode())
		}
	}
	out = append(out,
		(&message{version: versionV2c, community: []byte("public"), pdu: PDUGetBulk, requestID: 5, field2: 0, field3: 1 << 30,
			vbs: names(agenttest.SparseTable)}).encode(),
		(&message{version: versionV2c, community: []byte("public"), pdu: PDUResponse, requestID: 6, vbs: everyType()}).encode(),
		(&message{version: 3, community: []byte("public"), pdu: PDUGet, requestID: 7, vbs: get}).encode(),
		[]byte{0x30, 0x00},
	)
	return out
}

// TestWriteSeedCorpus regenerates testdata/fuzz when V2C_WRITE_SEEDS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("V2C_WRITE_SEEDS") != "1" {
		t.Skip("set V2C_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	for _, target := range []string{"FuzzHandle", "FuzzParseHeader"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seedRequests() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzHandle feeds random datagrams to the request path: it must never
// panic, and whatever it answers must be a well-formed Response to that
// request.
func FuzzHandle(f *testing.F) {
	for _, b := range seedRequests() {
		f.Add(b)
	}
	cfg := testConfig()
	cfg.MaxMessageSize = 1500
	h := newHarness(f, cfg)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		resp := h.a.handle(context.Background(), pkt, &gosnmp.GoSNMP{})
		if resp == nil {
			return
		}
		if len(resp) > cfg.MaxMessageSize {
			t.Fatalf("response of %d bytes", len(resp))
		}
		req, err := parseHeader(pkt)
		if err != nil {
			t.Fatalf("answered a request that does not parse: %v", err)
		}
		rh, err := parseHeader(resp)
		if err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if rh.pdu != PDUResponse || rh.requestID != req.requestID || rh.version != req.version ||
			!bytes.Equal(rh.community, req.community) {
			t.Fatalf("response header %+v to %+v", rh, req)
		}
		p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(resp)
		if err != nil {
			t.Fatalf("gosnmp cannot decode the response: %v", err)
		}
		rq, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(pkt)
		if err != nil {
			t.Fatalf("answered what gosnmp cannot decode: %v", err)
		}
		if p.Error == gosnmp.NoError && (req.pdu == PDUGet || req.pdu == PDUGetNext || req.pdu == PDUSet) &&
			len(p.Variables) != len(rq.Variables) {
			t.Fatalf("%v: %d varbinds for %d", req.pdu, len(p.Variables), len(rq.Variables))
		}
		if req.version == versionV1 {
			for _, v := range p.Variables {
				if v.Type == gosnmp.Counter64 || v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance || v.Type == gosnmp.EndOfMibView {
					t.Fatalf("SNMPv1 response carries %v", v.Type)
				}
			}
		}
	})
}

// FuzzParseHeader checks decode -> encode -> decode stability of the
// envelope pre-parse.
func FuzzParseHeader(f *testing.F) {
	for _, b := range seedRequests() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil || h.pdu == PDUTrapV1 {
			return
		}
		m := &message{version: h.version, community: h.community, pdu: h.pdu, requestID: h.requestID,
			field2: h.field2, field3: h.field3, rawVBL: h.vbl}
		enc := m.encode()
		if len(enc) != m.Len() {
			t.Fatalf("Len %d, encoded %d", m.Len(), len(enc))
		}
		h2, err := parseHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if h2.version != h.version || !bytes.Equal(h2.community, h.community) || h2.pdu != h.pdu ||
			h2.requestID != h.requestID || h2.field2 != h.field2 || h2.field3 != h.field3 || !bytes.Equal(vblContent(h2.vbl), vblContent(h.vbl)) {
			t.Fatalf("round trip changed %+v into %+v", h, h2)
		}
	})
}

// vblContent is a varbind list's contents: the length octets may be
// re-encoded in minimal form.
func vblContent(vbl []byte) []byte {
	_, c, _, _ := readTLV(vbl)
	return c
}
