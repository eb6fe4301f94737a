package node

import (
	"os"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/mib"
)

// Options.CrashAfterSave is a test-only knob, not a configuration key
// (cmd/smsnmpd reads it from SMSNMPD_TEST_CRASH_AFTER_SAVE): set to
// KEY=VALUE (e.g. smSeWeight=7), the SE kills itself with SIGKILL right
// after it persisted that value, before it answers the COMMIT that wrote
// it. test/e2e uses it to interrupt a SET deterministically at its worst
// moment (an engine that has written and persisted the new value while the
// others will undo it). Never set it on a production node.

// crashStore is a Store that dies after one particular save.
type crashStore struct {
	mib.Store
	key, value string
}

func crashAfterSave(s mib.Store, spec string, log logrus.FieldLogger) mib.Store {
	key, value, ok := strings.Cut(spec, "=")
	if !ok {
		log.WithField("crash_after_save", spec).Warn("test knob ignored: not KEY=VALUE")
		return s
	}
	log.WithField("crash_after_save", spec).Warn("test knob set: this SE kills itself after saving that value")
	return &crashStore{Store: s, key: key, value: value}
}

func (c *crashStore) Save(key, value string) error {
	err := c.Store.Save(key, value)
	if err == nil && key == c.key && value == c.value {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	return err
}
