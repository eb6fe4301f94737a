//go:build !linux

package agentx

import (
	"io"
	"net"
)

// newSysConn is the plain connection where sysConn (sysio.go) is not built.
func newSysConn(c net.Conn) io.ReadWriter { return c }
