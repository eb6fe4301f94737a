// Package deb tests the Debian package `make deb` builds (issue 19): its
// contents and control data, lintian (no errors; only the warnings the
// README names, each with its reason), the MIB loading with snmptranslate
// from the package's own paths, and, only with CI=true (a throwaway
// machine, as root), the install steps an operator takes: dpkg -i, the
// service user and the conffile's mode, smsnmpd version and check-config,
// man -w, snmptranslate from the installed paths, systemd-analyze verify
// of the installed unit, the unit left disabled without the rmtp key and
// enabled with it, dpkg -r keeping the conffile and dpkg -P purging it.
// It never installs anything on a developer's machine. It owns no product
// code.
//
// Run: go test -count=1 -v ./test/deb/
package deb
