// Package bench holds cross-process benchmarks: smsnmpd's agents measured
// against a real net-snmp snmpd started by the benchmark itself, with
// gosnmp as the client, in one run so both sides see the same machine
// load. Each benchmark reports its figures and the ratio ours/snmpd with
// b.ReportMetric (below 1 means smsnmpd is faster). It owns no product
// code. Run with `go test -run XXX -bench . ./test/bench/`.
package bench
