// Package exporter tests etc/snmp_exporter against Debian's real
// snmp_exporter 0.21 and Prometheus 2.42 (issue 19): the generator makes
// the shipped snmp.yml again from the shipped generator.yml and the MIB,
// byte for byte; the exporter scrapes a farm of separate smsnmpd processes
// with it (every engine's smEngineState labelled with its smEngineName,
// the subtree totals, no snmp_error, an engine killed seen down); and a
// Prometheus running the shipped scrape-config example, pointed at that
// exporter, stores the same series. Static tests check the module's walk
// roots and the 0.23 form (generator-auths.yml) against the MIB's Go
// table without any tool.
//
// It needs the packages test/deps/install.sh installs; it skips without
// them, except with CI=true, where it fails. It owns no product code.
//
// Run: go test -count=1 -v ./test/exporter/
package exporter
