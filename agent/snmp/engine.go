package snmp

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/smsnmpd/smsnmpd/internal/statefile"
)

// Engine is this agent's SNMPv3 identity (RFC 3411 §3.1.1.1, RFC 3414
// §2.2): snmpEngineID and snmpEngineBoots. snmpEngineTime counts from
// when the Agent is made.
type Engine struct {
	ID    []byte
	Boots int32
}

// EnterpriseNetSNMP is the enterprise number in the engine IDs made here:
// smsnmpd's MIB lives in net-snmp's playpen (README: OIDs) until the
// project has a number of its own.
const EnterpriseNetSNMP = 8072

// NewEngineID returns a random engine ID of RFC 3411's format 5
// (administratively assigned octets): 0x80 | enterprise, 5, then 12
// random octets. Two nodes (SM and BSM) never share one.
func NewEngineID() []byte {
	id := binary.BigEndian.AppendUint32(nil, 0x8000_0000|EnterpriseNetSNMP)
	id = append(id, 5)
	r := make([]byte, 12)
	_, _ = rand.Read(r) // crypto/rand never fails on Linux
	return append(id, r...)
}

// engineFile is what node.state_dir keeps of the engine.
type engineFile struct {
	EngineID string `json:"engine_id"` // hex
	Boots    int32  `json:"boots"`
}

// EngineFileName is the file in node.state_dir holding the engine ID and
// boots.
const EngineFileName = "snmp-engine.json"

// ErrEngineState is returned for an engine file that cannot be used.
var ErrEngineState = errors.New("snmp: engine state")

// StartEngine loads the engine from dir (node.state_dir), makes one the
// first time, increments snmpEngineBoots and writes it back before the
// agent answers anything (RFC 3414 §2.2.2: boots counts every start).
// With no dir, it returns a random engine ID and boots 1, and persistent
// is false: the caller says in the log that managers must rediscover it
// after every restart.
func StartEngine(dir string) (e Engine, persistent bool, err error) {
	if dir == "" {
		return Engine{ID: NewEngineID(), Boots: 1}, false, nil
	}
	e, err = ReadEngine(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		e = Engine{ID: NewEngineID()}
	case err != nil:
		return Engine{}, false, err
	}
	if e.Boots < math.MaxInt32 {
		// At 2^31-1 it latches (RFC 3414 §2.2.2): the engine must then be
		// given a new ID (remove the file).
		e.Boots++
	}
	b, _ := json.Marshal(engineFile{EngineID: hex.EncodeToString(e.ID), Boots: e.Boots})
	if err := statefile.Write(filepath.Join(dir, EngineFileName), append(b, '\n')); err != nil {
		return Engine{}, false, fmt.Errorf("%w: %w", ErrEngineState, err)
	}
	return e, true, nil
}

// ReadEngine reads the engine file in dir without changing it (the
// engine-id command).
func ReadEngine(dir string) (Engine, error) {
	b, err := os.ReadFile(filepath.Join(dir, EngineFileName))
	if err != nil {
		return Engine{}, err
	}
	var f engineFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Engine{}, fmt.Errorf("%w: %s: %w", ErrEngineState, EngineFileName, err)
	}
	id, err := hex.DecodeString(f.EngineID)
	if err != nil || len(id) < 5 || len(id) > 32 || f.Boots < 0 {
		return Engine{}, fmt.Errorf("%w: %s: engine ID %q, boots %d", ErrEngineState, EngineFileName, f.EngineID, f.Boots)
	}
	return Engine{ID: id, Boots: f.Boots}, nil
}
