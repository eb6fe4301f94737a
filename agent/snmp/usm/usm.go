// Package usm is the cryptography of SNMPv3's User-based Security Model:
// turning passphrases into keys localized to an engine (RFC 3414 §A.2,
// RFC 7860 §9.3), authenticating a message with HMAC-MD5-96 or HMAC-SHA-96
// (RFC 3414) or HMAC-SHA-2 with RFC 7860's truncated MACs (SHA-224: 16
// octets, SHA-256: 24, SHA-384: 32, SHA-512: 48), and encrypting a scoped
// PDU with AES-128 in CFB mode (RFC 3826) or AES-192/256 with the
// Blumenthal key extension (draft-blumenthal-aes-usm-04, net-snmp's
// AES-192/AES-256 and gosnmp's AES192/AES256). Only the Go standard
// library's crypto.
//
// It is pure: bytes in, bytes out, no I/O, no clock, no logging; the
// agent's USM model (package snmp) checks timeliness, counts and answers.
// Keys are localized once per engine ID (NewUser), never per message.
//
// What it does not own: DES (RFC 3414's CBC-DES is not offered: broken,
// and net-snmp deprecates it), Reeder's AES key extension (AES-256C),
// the message format (internal/ber) and the user table (package snmp).
package usm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// AuthProtocol is an authentication protocol.
type AuthProtocol int

// The authentication protocols.
const (
	NoAuth AuthProtocol = iota
	MD5
	SHA1
	SHA224
	SHA256
	SHA384
	SHA512
)

var authNames = map[AuthProtocol]string{NoAuth: "none", MD5: "MD5", SHA1: "SHA", SHA224: "SHA-224",
	SHA256: "SHA-256", SHA384: "SHA-384", SHA512: "SHA-512"}

func (a AuthProtocol) String() string {
	if n, ok := authNames[a]; ok {
		return n
	}
	return fmt.Sprintf("AuthProtocol(%d)", int(a))
}

// Legacy reports whether a is one of RFC 3414's (MD5, SHA-1), offered
// only when configured explicitly.
func (a AuthProtocol) Legacy() bool { return a == MD5 || a == SHA1 }

// ParseAuth parses net-snmp's names (-a): MD5, SHA (or SHA-1), SHA-224,
// SHA-256, SHA-384, SHA-512; case does not matter.
func ParseAuth(s string) (AuthProtocol, error) {
	u := strings.ToUpper(s)
	if u == "SHA-1" || u == "SHA1" {
		return SHA1, nil
	}
	for a, n := range authNames {
		if a != NoAuth && n == u {
			return a, nil
		}
	}
	return NoAuth, fmt.Errorf("usm: unknown authentication protocol %q (MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512)", s)
}

func (a AuthProtocol) newHash() func() hash.Hash {
	switch a {
	case MD5:
		return md5.New
	case SHA1:
		return sha1.New
	case SHA224:
		return sha256.New224
	case SHA256:
		return sha256.New
	case SHA384:
		return sha512.New384
	case SHA512:
		return sha512.New
	}
	return nil
}

// MACLen is the length of the truncated MAC a carries in
// msgAuthenticationParameters.
func (a AuthProtocol) MACLen() int {
	switch a {
	case MD5, SHA1:
		return 12
	case SHA224:
		return 16
	case SHA256:
		return 24
	case SHA384:
		return 32
	case SHA512:
		return 48
	}
	return 0
}

// PrivProtocol is a privacy protocol.
type PrivProtocol int

// The privacy protocols.
const (
	NoPriv PrivProtocol = iota
	AES128
	AES192 // Blumenthal key extension
	AES256 // Blumenthal key extension
)

var privNames = map[PrivProtocol]string{NoPriv: "none", AES128: "AES", AES192: "AES-192", AES256: "AES-256"}

func (p PrivProtocol) String() string {
	if n, ok := privNames[p]; ok {
		return n
	}
	return fmt.Sprintf("PrivProtocol(%d)", int(p))
}

// ParsePriv parses net-snmp's names (-x): AES (or AES-128), AES-192,
// AES-256; case does not matter.
func ParsePriv(s string) (PrivProtocol, error) {
	u := strings.ToUpper(s)
	if u == "AES-128" || u == "AES128" {
		return AES128, nil
	}
	for p, n := range privNames {
		if p != NoPriv && n == u {
			return p, nil
		}
	}
	return NoPriv, fmt.Errorf("usm: unknown privacy protocol %q (AES, AES-192, AES-256)", s)
}

func (p PrivProtocol) keyLen() int {
	switch p {
	case AES128:
		return 16
	case AES192:
		return 24
	case AES256:
		return 32
	}
	return 0
}

// PasswordToKey is RFC 3414 §A.2's password-to-key algorithm (the same
// for SHA-2, RFC 7860 §9.3): the hash of 1,048,576 octets of the
// passphrase repeated. It costs milliseconds: callers localize once.
func PasswordToKey(a AuthProtocol, pass []byte) []byte {
	if len(pass) == 0 || a.newHash() == nil {
		return nil
	}
	h := a.newHash()()
	const total = 1 << 20
	buf := make([]byte, 64)
	for n, i := 0, 0; n < total; n += len(buf) {
		for j := range buf {
			buf[j] = pass[i%len(pass)]
			i++
		}
		h.Write(buf)
	}
	return h.Sum(nil)
}

// Localize is RFC 3414 §A.2's key localization: H(key || engineID || key).
func Localize(a AuthProtocol, key, engineID []byte) []byte {
	h := a.newHash()()
	h.Write(key)
	h.Write(engineID)
	h.Write(key)
	return h.Sum(nil)
}

// Errors.
var (
	// ErrDecrypt is returned for an encrypted PDU that cannot be decrypted:
	// usmStatsDecryptionErrors counts it.
	ErrDecrypt = errors.New("usm: decryption error")
	// ErrConfig is returned by NewUser for a protocol pair it cannot serve.
	ErrConfig = errors.New("usm: invalid user")
)

// MinPassphrase is the shortest passphrase accepted (RFC 3414 §11.2).
const MinPassphrase = 8

// Keys are one user's keys localized to one engine ID.
type Keys struct {
	Auth    AuthProtocol
	Priv    PrivProtocol
	authKey []byte
	privKey []byte
}

// NewKeys localizes a user's passphrases to engineID. privPass is
// ignored with NoPriv; priv requires auth (RFC 3414: no privacy without
// authentication).
func NewKeys(auth AuthProtocol, authPass []byte, priv PrivProtocol, privPass []byte, engineID []byte) (*Keys, error) {
	k := &Keys{Auth: auth, Priv: priv}
	if auth == NoAuth {
		if priv != NoPriv {
			return nil, fmt.Errorf("%w: privacy without authentication", ErrConfig)
		}
		return k, nil
	}
	if auth.newHash() == nil {
		return nil, fmt.Errorf("%w: %s", ErrConfig, auth)
	}
	if len(authPass) < MinPassphrase {
		return nil, fmt.Errorf("%w: authentication passphrase shorter than %d characters", ErrConfig, MinPassphrase)
	}
	k.authKey = Localize(auth, PasswordToKey(auth, authPass), engineID)
	if priv == NoPriv {
		return k, nil
	}
	if priv.keyLen() == 0 {
		return nil, fmt.Errorf("%w: %s", ErrConfig, priv)
	}
	if len(privPass) < MinPassphrase {
		return nil, fmt.Errorf("%w: privacy passphrase shorter than %d characters", ErrConfig, MinPassphrase)
	}
	key := Localize(auth, PasswordToKey(auth, privPass), engineID)
	// Blumenthal: Kul' = Kul || H(Kul) ..., until long enough.
	for len(key) < priv.keyLen() {
		h := auth.newHash()()
		h.Write(key)
		key = h.Sum(key)
	}
	k.privKey = key[:priv.keyLen()]
	return k, nil
}

// mac is the truncated HMAC of msg.
func (k *Keys) mac(msg []byte) []byte {
	m := hmac.New(k.Auth.newHash(), k.authKey)
	m.Write(msg)
	return m.Sum(nil)[:k.Auth.MACLen()]
}

// Verify reports whether msg carries the right MAC at off (the
// msgAuthenticationParameters content, MACLen octets). It zeroes those
// octets to compute the MAC and puts them back before returning.
func (k *Keys) Verify(msg []byte, off int) bool {
	n := k.Auth.MACLen()
	if n == 0 || off < 0 || off+n > len(msg) {
		return false
	}
	got := make([]byte, n)
	copy(got, msg[off:off+n])
	clear(msg[off : off+n])
	want := k.mac(msg)
	copy(msg[off:off+n], got)
	return subtle.ConstantTimeCompare(got, want) == 1
}

// Sign writes msg's MAC at off, where MACLen zero octets were encoded.
func (k *Keys) Sign(msg []byte, off int) {
	n := k.Auth.MACLen()
	clear(msg[off : off+n])
	copy(msg[off:], k.mac(msg))
}

// iv is RFC 3826 §3.1.2.1's IV: the authoritative engine's boots and
// time, then the 64-bit salt (msgPrivacyParameters).
func iv(boots, time int32, salt []byte) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b, uint32(boots))
	binary.BigEndian.PutUint32(b[4:], uint32(time))
	copy(b[8:], salt)
	return b
}

// Encrypt encrypts a scoped PDU with salt (8 octets, which the caller
// sends as msgPrivacyParameters and never reuses with the same key,
// boots and time).
func (k *Keys) Encrypt(plain []byte, boots, time int32, salt []byte) []byte {
	block, _ := aes.NewCipher(k.privKey) // the key length is the cipher's
	out := make([]byte, len(plain))
	cipher.NewCFBEncrypter(block, iv(boots, time, salt)).XORKeyStream(out, plain) //nolint:staticcheck // RFC 3826 mandates CFB
	return out
}

// Decrypt decrypts an encrypted PDU with the sender's privacy parameters
// and the authoritative engine's boots and time. The result must still
// be decoded: a wrong key yields garbage, not an error here.
func (k *Keys) Decrypt(ct []byte, boots, time int32, privParams []byte) ([]byte, error) {
	if len(privParams) != 8 {
		return nil, fmt.Errorf("%w: %d octets of privacy parameters", ErrDecrypt, len(privParams))
	}
	block, _ := aes.NewCipher(k.privKey)
	out := make([]byte, len(ct))
	cipher.NewCFBDecrypter(block, iv(boots, time, privParams)).XORKeyStream(out, ct) //nolint:staticcheck // RFC 3826 mandates CFB
	return out, nil
}
