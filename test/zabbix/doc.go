// Package zabbix tests etc/zabbix/smsnmpd_snmp.yaml against a real Zabbix
// 6.0 server (issue 19): Debian's zabbix-server-pgsql on a private
// PostgreSQL on 127.0.0.1, and the frontend's JSON-RPC API under `php -S`
// (in a private mount namespace, where /etc/zabbix holds the test's own
// zabbix.conf.php, so nothing on the machine changes). The API imports the
// template and links it to a host pointing at a farm of separate smsnmpd
// processes (a manager and 4 engines); the server must then give every
// node item a value, discover the 4 engines by smEngineName, mark no item
// unsupported, and raise and clear an engine's "down" trigger when that
// engine is killed and started again.
//
// The initialised database (schema, images, data: about 30 s) is cached
// once per machine as a tarball under <repo>/.cache/zabbix; a run after
// that starts PostgreSQL from it in about 2 s. Intervals come from the
// template's macros, set short on the host. A static test checks the
// template against the MIB's Go table (numeric OIDs, types, value maps,
// UUIDv4s, the 6.0 format) without any Zabbix.
//
// It needs root and the packages test/deps/install.sh installs; it skips
// without them, except with CI=true, where it fails. It owns no product
// code.
//
// Run: go test -count=1 -v ./test/zabbix/
package zabbix
