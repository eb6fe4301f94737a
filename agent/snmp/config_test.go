package snmp

import (
	"errors"
	"testing"

	"github.com/smsnmpd/smsnmpd/internal/config"
)

func TestFromConfig(t *testing.T) {
	sink, err := config.ParseAddr("udp:127.0.0.1:162")
	if err != nil {
		t.Fatal(err)
	}
	c := FromConfig(config.SNMP{ROCommunity: config.NewSecret("r"), TrapSinks: []config.Addr{sink},
		TrapCommunity: config.NewSecret("t"), MaxMessageSize: 1500, Workers: 3})
	if c.ROCommunity.Reveal() != "r" || c.TrapCommunity.Reveal() != "t" || len(c.TrapSinks) != 1 ||
		c.TrapSinks[0] != "127.0.0.1:162" || c.MaxMessageSize != 1500 || c.Workers != 3 {
		t.Errorf("got %+v", c)
	}
	c.setDefaults()
	if err := c.validate(); err != nil {
		t.Error(err)
	}
	for _, bad := range []Config{
		{ROCommunity: config.NewSecret("r"), MaxMessageSize: 483},
		{ROCommunity: config.NewSecret("r"), MaxMessageSize: MaxDatagram + 1},
		{ROCommunity: config.NewSecret("r"), TrapSinks: []string{"127.0.0.1:162"}},
		{},
	} {
		bad.setDefaults()
		if err := bad.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
