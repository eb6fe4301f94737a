package snmp

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosnmp/gosnmp"

	"github.com/smsnmpd/smsnmpd/agent/agenttest"
	"github.com/smsnmpd/smsnmpd/internal/ber"
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
	for _, v := range []ber.Version{ber.Version1, ber.Version2c} {
		for _, c := range []string{"public", "private", "public@none", "x"} {
			out = append(out,
				encode(v, c, ber.PDUGet, 1, 0, 0, get),
				encode(v, c, ber.PDUGetNext, 2, 0, 0, get),
				encode(v, c, ber.PDUGetBulk, 3, 1, 10, get),
				encode(v, c, ber.PDUSet, 4, 0, 0, set))
		}
	}
	out = append(out,
		encode(ber.Version2c, "public", ber.PDUGetBulk, 5, 0, 1<<30, names(agenttest.SparseTable)),
		encode(ber.Version2c, "public", ber.PDUResponse, 6, 0, 0, everyType()),
		encode(3, "public", ber.PDUGet, 7, 0, 0, get),
		[]byte{0x30, 0x00},
	)
	for _, r := range loadRecorded(nil) {
		out = append(out, r.bytes)
	}
	return out
}

// TestWriteSeedCorpus regenerates testdata/fuzz when SNMP_WRITE_SEEDS=1.
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("SNMP_WRITE_SEEDS") != "1" {
		t.Skip("set SNMP_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	for target, seeds := range map[string][][]byte{"FuzzHandle": seedRequests(), "FuzzUSM": recordedBytes(loadRecordedV3(t))} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzHandle feeds random datagrams to the request path: it must never
// panic, and whatever it answers must be a well-formed Response to that
// request, decodable by gosnmp too.
func FuzzHandle(f *testing.F) {
	for _, b := range seedRequests() {
		f.Add(b)
	}
	cfg := testConfig()
	cfg.MaxMessageSize = 1500
	h := newHarness(f, cfg)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		resp := h.a.handle(context.Background(), pkt, testFrom)
		if resp == nil {
			return
		}
		if len(resp) > cfg.MaxMessageSize {
			t.Fatalf("response of %d bytes", len(resp))
		}
		req, err := ber.DecodeCommunityMessage(pkt)
		if err != nil {
			t.Fatalf("answered a request that does not decode: %v", err)
		}
		rm, err := ber.DecodeCommunityMessage(resp)
		if err != nil {
			t.Fatalf("response does not decode: %v", err)
		}
		if rm.PDU.Type != ber.PDUResponse || rm.PDU.RequestID != req.PDU.RequestID || rm.Version != req.Version ||
			!bytes.Equal(rm.Community, req.Community) {
			t.Fatalf("response %+v to %+v", rm, req)
		}
		// An error response echoes the request's varbinds as they came
		// (RFC 3416 §4.2.5), so gosnmp reads the answer whenever it reads
		// the request.
		p, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(resp)
		if _, reqErr := (&gosnmp.GoSNMP{}).SnmpDecodePacket(pkt); err != nil && reqErr == nil {
			t.Fatalf("gosnmp cannot decode the response: %v", err)
		}
		if err == nil && p.Error == gosnmp.NoError && (req.PDU.Type == ber.PDUGet || req.PDU.Type == ber.PDUGetNext || req.PDU.Type == ber.PDUSet) &&
			len(rm.PDU.VarBinds) != len(req.PDU.VarBinds) {
			t.Fatalf("%v: %d varbinds for %d", req.PDU.Type, len(rm.PDU.VarBinds), len(req.PDU.VarBinds))
		}
		if req.Version == ber.Version1 {
			for _, vb := range rm.PDU.VarBinds {
				if vb.Value.Type == smi.TypeCounter64 || vb.Value.Type.IsException() {
					t.Fatalf("SNMPv1 response carries %v", vb.Value.Type)
				}
			}
		}
	})
}

func recordedBytes(rs []recording) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = r.bytes
	}
	return out
}
