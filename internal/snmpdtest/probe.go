package snmpdtest

import (
	"bytes"
	"errors"
	"net"
	"time"
)

// getSysUpTime is an SNMPv2c GET of sysUpTime.0 with community "public"
// and request-id 1, in BER.
var getSysUpTime = []byte{
	0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c',
	0xa0, 0x1c, 0x02, 0x04, 0x00, 0x00, 0x00, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
	0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x03, 0x00, 0x05, 0x00,
}

// probe sends one GET of sysUpTime.0 to addr and waits for any response
// PDU (0xa2) for at most timeout.
func probe(addr string, timeout time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(getSysUpTime); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		time.Sleep(timeout / 4) // ECONNREFUSED returns at once; do not spin
		return err
	}
	if !bytes.Contains(buf[:n], []byte{0xa2}) {
		return errors.New("snmpdtest: probe: not a response")
	}
	return nil
}
