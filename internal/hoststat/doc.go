// Package hoststat reads the statistics of the host a service engine runs
// on from Linux's /proc: load average, memory, network octets and uptime.
//
// The parsers (ParseLoadAvg, ParseMemInfo, ParseNetDev, ParseUptime) are
// pure: they read an io.Reader, never open a file, and return ErrFormat for
// input they do not understand; every number they keep is an integer, so
// no float rounding reaches an SNMP counter. Reader is the thin part that
// opens the files under a /proc root (tests point it at testdata).
//
// It owns no SNMP object: package mib maps these numbers onto smSe. It does
// not cache, start goroutines or log.
package hoststat
