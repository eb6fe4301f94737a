module github.com/smsnmpd/smsnmpd

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/gosnmp/gosnmp v1.47.0
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.49.0
)
