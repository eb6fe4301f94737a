package ber

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/smi"
)

// Recorded from net-snmp 5.9 (agent/snmp/testdata/netsnmp-v3): snmpget's
// discovery probe, and its noAuthNoPriv GET that follows for user "open".
const (
	netsnmpProbe = "303e 020103 3011 020470538f60 020300ffe3 040104 020103 0410 300e 0400 020100 020100 0400 0400 0400" +
		"3014 0400 0400 a00e 02040715336e 020100 020100 3000"
	netsnmpNoAuthGet = "3078 020103 3011 0204554e9acc 020300ffe3 040104 020103" +
		"0425 3023 041180001f88050102030405060708090a0b0c 020107 020101 04046f70656e 0400 0400" +
		"3039 041180001f88050102030405060708090a0b0c 0400 a022 02047307f43b 020100 020100 3014 3012 060e2b06010401bf08ce0fa1120101000500"
	// snmpget -l authNoPriv -a SHA-256 for user "authonly": a 24-octet MAC.
	netsnmpAuthGet = "308194 020103 3011 020463cd39ad 020300ffe3 040105 020103" +
		"0441 303f 041180001f88050102030405060708090a0b0c 020107 020101 0408617574686f6e6c79" +
		"0418d87d63181dcb30e9e2083f923005fa42dfe794130c9a6073 0400" +
		"3039 041180001f88050102030405060708090a0b0c 0400 a022 02047a596106 020100 020100 3014 3012 060e2b06010401bf08ce0fa1120101000500"
)

var testEngineID = []byte{0x80, 0, 0x1f, 0x88, 5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func TestV3ExactBytes(t *testing.T) {
	probe := unhex(t, netsnmpProbe)
	m, err := DecodeV3Message(probe)
	if err != nil {
		t.Fatal(err)
	}
	if m.MsgID != 0x70538f60 || m.MaxSize != 65507 || m.Flags != FlagReportable || m.SecurityModel != SecurityModelUSM || m.Encrypted != nil {
		t.Errorf("probe header %+v", m)
	}
	sp, err := DecodeUSMParams(m.SecurityParameters)
	if err != nil || len(sp.EngineID) != 0 || sp.Boots != 0 || sp.Time != 0 || len(sp.UserName) != 0 || len(sp.AuthParams) != 0 {
		t.Errorf("probe USM %+v %v", sp, err)
	}
	s, err := DecodeScopedPDU(m.ScopedPDU)
	if err != nil || s.PDU.Type != PDUGet || len(s.PDU.VarBinds) != 0 || len(s.ContextEngineID) != 0 {
		t.Errorf("probe scoped PDU %+v %v", s, err)
	}

	get := unhex(t, netsnmpNoAuthGet)
	m, err = DecodeV3Message(get)
	if err != nil {
		t.Fatal(err)
	}
	sp, err = DecodeUSMParams(m.SecurityParameters)
	if err != nil || !bytes.Equal(sp.EngineID, testEngineID) || sp.Boots != 7 || sp.Time != 1 || string(sp.UserName) != "open" {
		t.Errorf("GET USM %+v %v", sp, err)
	}
	s, err = DecodeScopedPDU(m.ScopedPDU)
	if err != nil || !bytes.Equal(s.ContextEngineID, testEngineID) || len(s.PDU.VarBinds) != 1 ||
		!s.PDU.VarBinds[0].Name.Equal(smi.MustParseOID("1.3.6.1.4.1.8072.9999.4242.1.1.0")) {
		t.Errorf("GET scoped PDU %+v %v", s, err)
	}

	auth := unhex(t, netsnmpAuthGet)
	m, err = DecodeV3Message(auth)
	if err != nil {
		t.Fatal(err)
	}
	sp, err = DecodeUSMParams(m.SecurityParameters)
	if err != nil || len(sp.AuthParams) != 24 || m.Flags != FlagReportable|FlagAuth {
		t.Fatalf("auth GET %+v %v", sp, err)
	}
	// The offsets point at the MAC in the whole message.
	if off := m.SecurityOffset + sp.AuthOffset; !bytes.Equal(auth[off:off+24], sp.AuthParams) {
		t.Errorf("MAC offset %d", off)
	}

	// Each re-encodes to net-snmp's bytes: the USM parameters, the scoped
	// PDU (from its fields) and the message.
	for _, b := range [][]byte{probe, get, auth} {
		m, _ := DecodeV3Message(b)
		sp, _ := DecodeUSMParams(m.SecurityParameters)
		enc, off := sp.Append(nil)
		if !bytes.Equal(enc, m.SecurityParameters) || off != sp.AuthOffset {
			t.Errorf("USM parameters re-encode to %x (offset %d, want %d)", enc, off, sp.AuthOffset)
		}
		s, _ := DecodeScopedPDU(m.ScopedPDU)
		s.PDU.RawVarBinds = nil
		if enc, err := s.Append(nil); err != nil || !bytes.Equal(enc, m.ScopedPDU) {
			t.Errorf("scoped PDU re-encodes to %x (%v)", enc, err)
		}
		if n, _ := s.Len(); n != len(m.ScopedPDU) {
			t.Errorf("scoped PDU Len %d, want %d", n, len(m.ScopedPDU))
		}
		enc, off = m.Append(nil)
		if !bytes.Equal(enc, b) || off != m.SecurityOffset || m.Len() != len(b) {
			t.Errorf("message re-encodes to %x (offset %d, want %d)", enc, off, m.SecurityOffset)
		}
	}
	if _, err := DecodeV3Message(unhex(t, netsnmpGet)); !errors.Is(err, ErrVersion) {
		t.Errorf("v2c as v3: %v", err)
	}
}

// TestV3MaxScopedPDULen: the room MaxScopedPDULen gives is exact, in
// plaintext and encrypted.
func TestV3MaxScopedPDULen(t *testing.T) {
	for _, flags := range []byte{FlagAuth, FlagAuth | FlagPriv} {
		m := V3Message{MsgID: 1 << 20, MaxSize: 65507, Flags: flags, SecurityModel: 3, SecurityParameters: make([]byte, 77)}
		for limit := 100; limit < 70000; limit += 131 {
			n := m.MaxScopedPDULen(limit)
			if n < 0 {
				continue
			}
			fits := func(n int) bool {
				mm := m
				if flags&FlagPriv != 0 {
					mm.Encrypted = make([]byte, n)
				} else {
					mm.ScopedPDU = make([]byte, n)
				}
				return mm.Len() <= limit
			}
			if !fits(n) || fits(n+1) {
				t.Fatalf("flags %x limit %d: MaxScopedPDULen %d", flags, limit, n)
			}
		}
	}
}

func TestV3Malformed(t *testing.T) {
	for name, in := range map[string]string{
		"flags of 2 octets": "3013 020103 3012 020101 0202ffe3 04020400 020103 0400 3000",
		"header trailing":   "3014 020103 3011 020101 0202ffe3 040104 020103 0500 0400 3000",
		"data not seq/octs": "3012 020103 3010 020101 0202ffe3 040104 020103 0400 0500",
		"bytes after data":  "3014 020103 3010 020101 0202ffe3 040104 020103 0400 3000 00",
	} {
		if _, err := DecodeV3Message(unhex(t, in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	long := make([]byte, 40)
	sp := USMParams{EngineID: long, AuthParams: []byte{}, PrivParams: []byte{}}
	b, _ := sp.Append(nil)
	if _, err := DecodeUSMParams(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("40-octet engine ID: %v", err)
	}
	sp = USMParams{UserName: []byte(strings.Repeat("u", 33)), AuthParams: []byte{}, PrivParams: []byte{}}
	b, _ = sp.Append(nil)
	if _, err := DecodeUSMParams(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("33-octet user name: %v", err)
	}
	sp = USMParams{AuthParams: make([]byte, 49), PrivParams: []byte{}}
	b, _ = sp.Append(nil)
	if _, err := DecodeUSMParams(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("49-octet MAC: %v", err)
	}
}

func TestV3EveryTruncationIsAnError(t *testing.T) {
	for _, h := range []string{netsnmpProbe, netsnmpNoAuthGet, netsnmpAuthGet} {
		b := unhex(t, h)
		m, err := DecodeV3Message(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(b); i++ {
			if _, err := DecodeV3Message(b[:i]); err == nil {
				t.Fatalf("message cut at %d of %d: no error", i, len(b))
			}
		}
		for i := 0; i < len(m.SecurityParameters); i++ {
			if _, err := DecodeUSMParams(m.SecurityParameters[:i]); err == nil {
				t.Fatalf("USM parameters cut at %d: no error", i)
			}
		}
		for i := 0; i < len(m.ScopedPDU); i++ {
			if _, err := DecodeScopedPDU(m.ScopedPDU[:i]); err == nil {
				t.Fatalf("scoped PDU cut at %d: no error", i)
			}
		}
	}
}

func seedV3(t testing.TB) [][]byte {
	out := [][]byte{unhex(t, netsnmpProbe), unhex(t, netsnmpNoAuthGet), unhex(t, netsnmpAuthGet)}
	return append(out, recordings(t, "netsnmp-v3")...)
}

func TestWriteV3Seeds(t *testing.T) { writeSeeds(t, "FuzzDecodeV3Message", seedV3(t)) }

// FuzzDecodeV3Message: the SNMPv3 decoders never panic, and what decodes
// (message, USM parameters, a plaintext scoped PDU) re-encodes to what
// decodes the same.
func FuzzDecodeV3Message(f *testing.F) {
	for _, b := range seedV3(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeV3Message(b)
		if err != nil {
			return
		}
		enc, off := m.Append(nil)
		m2, err := DecodeV3Message(enc)
		if err != nil || off != m2.SecurityOffset || m2.MsgID != m.MsgID || m2.MaxSize != m.MaxSize || m2.Flags != m.Flags ||
			!bytes.Equal(m2.SecurityParameters, m.SecurityParameters) || !bytes.Equal(m2.Encrypted, m.Encrypted) {
			t.Fatalf("message round trip: %+v -> %+v (%v)", m, m2, err)
		}
		if sp, err := DecodeUSMParams(m.SecurityParameters); err == nil {
			enc, off := sp.Append(nil)
			sp2, err := DecodeUSMParams(enc)
			if err != nil || off != sp2.AuthOffset || !bytes.Equal(sp2.EngineID, sp.EngineID) || sp2.Boots != sp.Boots ||
				sp2.Time != sp.Time || !bytes.Equal(sp2.UserName, sp.UserName) || !bytes.Equal(sp2.AuthParams, sp.AuthParams) ||
				!bytes.Equal(sp2.PrivParams, sp.PrivParams) {
				t.Fatalf("USM round trip: %+v -> %+v (%v)", sp, sp2, err)
			}
		}
		if m.ScopedPDU == nil {
			return
		}
		s, err := DecodeScopedPDU(m.ScopedPDU)
		if err != nil {
			return
		}
		enc, err = s.Append(nil)
		if err != nil {
			t.Fatalf("scoped PDU does not re-encode: %v", err)
		}
		s2, err := DecodeScopedPDU(enc)
		if err != nil || !bytes.Equal(s2.ContextEngineID, s.ContextEngineID) || !bytes.Equal(s2.ContextName, s.ContextName) ||
			s2.PDU.Type != s.PDU.Type || s2.PDU.RequestID != s.PDU.RequestID || len(s2.PDU.VarBinds) != len(s.PDU.VarBinds) {
			t.Fatalf("scoped PDU round trip: %+v -> %+v (%v)", s, s2, err)
		}
	})
}
