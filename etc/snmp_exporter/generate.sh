#!/bin/sh
# Regenerates etc/snmp_exporter/snmp.yml from generator.yml with Debian's
# prometheus-snmp-generator, loading SERVICE-MANAGER-MIB, the standard MIB
# texts it imports (test/deps/install.sh mibs unpacks them into
# .cache/std-mibs) and NET-SNMP-MIB, and nothing else: the generator reads
# every MIB of its directories, and Debian's /usr/share/snmp/mibs holds
# modules whose imports Debian does not ship.
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
STD=${SMSNMPD_STD_MIBS:-$ROOT/.cache/std-mibs}
case $STD in /*) ;; *) STD=$ROOT/$STD ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/netsnmp"
ln -s /usr/share/snmp/mibs/NET-SNMP-MIB.txt "$tmp/netsnmp/"
cp "$ROOT/etc/snmp_exporter/generator.yml" "$tmp/"
(cd "$tmp" && MIBDIRS="$ROOT/mib:$STD:$tmp/netsnmp" prometheus-snmp-generator --fail-on-parse-errors generate)
cp "$tmp/snmp.yml" "$ROOT/etc/snmp_exporter/snmp.yml"
echo "etc/snmp_exporter/snmp.yml regenerated"
