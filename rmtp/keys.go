package rmtp

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/smsnmpd/smsnmpd/rmtp/wire"
)

// Keyring is the set of group keys (see wire.Keyring).
type Keyring = wire.Keyring

// ErrKeyFile reports an unusable key file.
var ErrKeyFile = errors.New("rmtp: key file")

// maxKeyFileSize caps what LoadKeyFile reads.
const maxKeyFileSize = 64 << 10

// LoadKeyFile reads a group key file and refuses it when group or others
// may read it (or it is not a regular file). Format, one key per line:
//
//	# comment
//	KEYID HEXKEY
//
// KEYID is 1..65535, HEXKEY 16..64 bytes in hex (32 recommended: `openssl
// rand -hex 32`). All keys are accepted on receipt; the key on the last line
// signs. To roll: add the new key on a line before the old one everywhere,
// then move it last everywhere, then delete the old line.
func LoadKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, readable beyond its owner; chmod 600 it", ErrKeyFile, path, perm)
	}
	if st.Size() > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is over %d bytes", ErrKeyFile, path, maxKeyFileSize)
	}
	keys := map[uint16][]byte{}
	var current uint16
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: %s:%d: want KEYID HEXKEY", ErrKeyFile, path, line)
		}
		id, err := strconv.ParseUint(fields[0], 10, 16)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("%w: %s:%d: key id must be 1..65535", ErrKeyFile, path, line)
		}
		k, err := hex.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: key is not hex", ErrKeyFile, path, line)
		}
		if _, dup := keys[uint16(id)]; dup {
			return nil, fmt.Errorf("%w: %s:%d: key id %d repeated", ErrKeyFile, path, line, id)
		}
		keys[uint16(id)] = k
		current = uint16(id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s holds no key", ErrKeyFile, path)
	}
	kr, err := wire.NewKeyring(current, keys)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return kr, nil
}
