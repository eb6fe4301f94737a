package usm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3414 §A.3: password "maplesyrup", engine ID 00..02.
func TestRFC3414KeyVectors(t *testing.T) {
	engine := unhex(t, "000000000000000000000002")
	for _, c := range []struct {
		a       AuthProtocol
		ku, kul string
	}{
		{MD5, "9faf3283884e92834ebc9847d8edd963", "526f5eed9fcce26f8964c2930787d82b"},
		{SHA1, "9fb5cc0381497b3793528939ff788d5d79145211", "6695febc9288e36282235fc7151f128497b38f3f"},
	} {
		ku := PasswordToKey(c.a, []byte("maplesyrup"))
		if hex.EncodeToString(ku) != c.ku {
			t.Errorf("%s Ku %x, want %s", c.a, ku, c.ku)
		}
		if kul := Localize(c.a, ku, engine); hex.EncodeToString(kul) != c.kul {
			t.Errorf("%s Kul %x, want %s", c.a, kul, c.kul)
		}
	}
}

func TestMACLengths(t *testing.T) {
	for a, n := range map[AuthProtocol]int{MD5: 12, SHA1: 12, SHA224: 16, SHA256: 24, SHA384: 32, SHA512: 48} {
		k, err := NewKeys(a, []byte("authpass123"), NoPriv, nil, []byte("engine-id"))
		if err != nil {
			t.Fatal(err)
		}
		if a.MACLen() != n || len(k.mac([]byte("x"))) != n {
			t.Errorf("%s: MAC of %d octets, want %d", a, len(k.mac([]byte("x"))), n)
		}
	}
}

func TestSignVerify(t *testing.T) {
	k, err := NewKeys(SHA256, []byte("authpass123"), AES128, []byte("privpass123"), []byte{0x80, 0, 0x1f, 0x88, 5, 1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte("header"), make([]byte, 24)...)
	msg = append(msg, "trailer"...)
	k.Sign(msg, 6)
	signed := bytes.Clone(msg)
	if !k.Verify(msg, 6) {
		t.Fatal("own signature refused")
	}
	if !bytes.Equal(msg, signed) {
		t.Error("Verify changed the message")
	}
	msg[len(msg)-1] ^= 1
	if k.Verify(msg, 6) {
		t.Error("a changed message verified")
	}
	other, _ := NewKeys(SHA256, []byte("authpass124"), NoPriv, nil, []byte{0x80, 0, 0x1f, 0x88, 5, 1, 2, 3})
	if other.Verify(signed, 6) {
		t.Error("another passphrase verified")
	}
	if k.Verify(signed, len(signed)-3) {
		t.Error("an offset past the end verified")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	engine := []byte{0x80, 0, 0x1f, 0x88, 5, 9, 9, 9}
	plain := bytes.Repeat([]byte("scoped pdu "), 20)[:217] // not a block multiple: CFB needs no padding
	salt := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, a := range []AuthProtocol{MD5, SHA1, SHA256, SHA512} {
		for _, p := range []PrivProtocol{AES128, AES192, AES256} {
			k, err := NewKeys(a, []byte("authpass123"), p, []byte("privpass123"), engine)
			if err != nil {
				t.Fatal(err)
			}
			if len(k.privKey) != p.keyLen() {
				t.Fatalf("%s/%s: key of %d octets", a, p, len(k.privKey))
			}
			ct := k.Encrypt(plain, 3, 1000, salt)
			if len(ct) != len(plain) || bytes.Equal(ct, plain) {
				t.Fatalf("%s/%s: ciphertext %x", a, p, ct[:16])
			}
			back, err := k.Decrypt(ct, 3, 1000, salt)
			if err != nil || !bytes.Equal(back, plain) {
				t.Errorf("%s/%s: round trip %v", a, p, err)
			}
			if other, _ := k.Decrypt(ct, 3, 1001, salt); bytes.Equal(other, plain) {
				t.Errorf("%s/%s: another engine time decrypted", a, p)
			}
		}
	}
	k, _ := NewKeys(SHA256, []byte("authpass123"), AES128, []byte("privpass123"), engine)
	if _, err := k.Decrypt([]byte{1, 2}, 0, 0, []byte{1}); !errors.Is(err, ErrDecrypt) {
		t.Errorf("short privacy parameters: %v", err)
	}
}

// The Blumenthal extension: the first bytes are the localized key, the
// rest the hash of it.
func TestBlumenthalExtension(t *testing.T) {
	engine := []byte("engine-id-5")
	k, _ := NewKeys(SHA1, []byte("authpass123"), AES256, []byte("privpass123"), engine)
	kul := Localize(SHA1, PasswordToKey(SHA1, []byte("privpass123")), engine)
	h := SHA1.newHash()()
	h.Write(kul)
	want := append(kul, h.Sum(nil)...)[:32]
	if !bytes.Equal(k.privKey, want) {
		t.Errorf("AES-256 key %x, want %x", k.privKey, want)
	}
}

func TestNewKeysRefuses(t *testing.T) {
	for _, c := range []struct {
		a  AuthProtocol
		ap string
		p  PrivProtocol
		pp string
	}{
		{NoAuth, "", AES128, "privpass123"},
		{SHA256, "short", NoPriv, ""},
		{SHA256, "authpass123", AES128, "short"},
		{AuthProtocol(99), "authpass123", NoPriv, ""},
	} {
		if _, err := NewKeys(c.a, []byte(c.ap), c.p, []byte(c.pp), []byte("e")); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestParse(t *testing.T) {
	for s, want := range map[string]AuthProtocol{"sha-256": SHA256, "SHA": SHA1, "SHA-1": SHA1, "MD5": MD5, "SHA-512": SHA512} {
		if a, err := ParseAuth(s); err != nil || a != want {
			t.Errorf("%q: %v %v", s, a, err)
		}
	}
	for s, want := range map[string]PrivProtocol{"aes": AES128, "AES-128": AES128, "AES-256": AES256, "aes-192": AES192} {
		if p, err := ParsePriv(s); err != nil || p != want {
			t.Errorf("%q: %v %v", s, p, err)
		}
	}
	if _, err := ParseAuth("none"); err == nil {
		t.Error("none parsed as a protocol")
	}
	if _, err := ParsePriv("DES"); err == nil {
		t.Error("DES accepted")
	}
}
