#!/bin/sh
# Makes sure this machine has what `make test` needs, installing what is
# missing, and says exactly what is missing when it cannot install it.
#
#   test/deps/install.sh          # idempotent; silent and fast when all is there
#   test/deps/install.sh mibs     # only the standard MIB texts (make deb, make demo)
#
# Needs:
#   - Debian packages: snmp snmpd snmptrapd (net-snmp tools and agents the
#     end-to-end tests run), libsnmp-base (NET-SNMP-MIB, which
#     SERVICE-MANAGER-MIB imports; snmp depends on it), smitools (smilint),
#     nftables (packet loss in namespace tests), iproute2 (ip netns).
#   - For the tests against real monitoring systems and the package
#     (test/zabbix, test/exporter, test/deb): a Zabbix 6.0 server with its
#     PostgreSQL and the PHP frontend whose JSON-RPC API the test drives
#     (postgresql zabbix-server-pgsql zabbix-frontend-php php-pgsql
#     php-cli), snmp_exporter and its generator
#     (prometheus-snmp-exporter), Prometheus and promtool (prometheus),
#     lintian and man-db (the package's checks), systemd
#     (systemd-analyze verify of the unit; nothing starts it). None of
#     their postinsts starts a daemon on a machine without systemd as
#     init; the tests start private instances on 127.0.0.1.
#   - The standard IETF MIB modules (SNMPv2-SMI, -TC, -CONF, SNMPv2-MIB, ...)
#     that smilint and the net-snmp tools need to read SERVICE-MANAGER-MIB.
#     Debian main ships no IETF MIB text; the erlang-snmp package does, so
#     its .deb is downloaded and unpacked (dpkg -x), never installed.
#     They go to $SMSNMPD_STD_MIBS (a relative path is taken from the
#     repository root), default <repo>/.cache/std-mibs, where the Go tests
#     (package test/deps) look for them too.
#
# As root it runs `apt-get update` at most once, and only when something is
# missing. As another user it installs nothing system-wide: it prints what
# is missing and the command that installs it, and exits 1. (Unpacking the
# MIB files needs no root and is tried anyway.)
set -eu

PROG=test/deps/install.sh
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/../.." && pwd)
DEFAULT_MIBS=$ROOT/.cache/std-mibs
MIBS=${SMSNMPD_STD_MIBS:-$DEFAULT_MIBS}
# Relative to the repository, as the Go tests (run from package
# directories) read it too.
case $MIBS in /*) ;; *) MIBS=$ROOT/$MIBS ;; esac
PKGS="snmp snmpd snmptrapd libsnmp-base smitools nftables iproute2"
PKGS="$PKGS postgresql zabbix-server-pgsql zabbix-frontend-php php-pgsql php-cli"
PKGS="$PKGS prometheus-snmp-exporter prometheus lintian man-db systemd"
case ${1:-} in
mibs) PKGS="" ;;
"") ;;
*)
	echo "usage: $0 [mibs]" >&2
	exit 2
	;;
esac
# The modules the project's MIB and tests import; the whole set is kept.
STD_MODULES="SNMPv2-SMI SNMPv2-TC SNMPv2-CONF SNMPv2-MIB INET-ADDRESS-MIB"

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# missing_pkgs prints the packages of $PKGS that are not installed, in one
# dpkg-query call (a call per package costs more than the whole fast path).
missing_pkgs() {
	installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PKGS 2>/dev/null |
		awk '$2 == "installed" { print $1 }') || true
	for p in $PKGS; do
		case " $(echo $installed) " in
		*" $p "*) ;;
		*) printf '%s\n' "$p" ;;
		esac
	done | xargs
}

missing_mibs() {
	for m in $STD_MODULES; do
		[ -s "$MIBS/$m.mib" ] || printf '%s\n' "$m"
	done | xargs
}

updated=no
apt_update() {
	[ "$updated" = yes ] && return 0
	say "apt-get update"
	apt-get update -qq >/dev/null
	updated=yes
}

# fetch_mibs unpacks erlang-snmp's MIB files into $MIBS. It builds the
# directory beside the target and renames it into place, so an interrupted
# run never leaves a half-filled directory that looks complete.
fetch_mibs() {
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	# apt drops privileges to _apt for downloads; let it write here.
	if is_root && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
	if ! (cd "$tmp" && apt-get download -qq erlang-snmp >/dev/null 2>&1); then
		is_root || return 1
		apt_update
		(cd "$tmp" && apt-get download -qq erlang-snmp >/dev/null) || return 1
	fi
	dpkg -x "$tmp"/erlang-snmp_*.deb "$tmp/x" || return 1
	new=$MIBS.new.$$
	rm -rf "$new"
	mkdir -p "$new" || return 1
	if ! cp "$tmp"/x/usr/lib/erlang/lib/snmp-*/mibs/*.mib "$new"/; then
		rm -rf "$new"
		return 1
	fi
	rm -rf "$MIBS"
	mv "$new" "$MIBS" || return 1
	if [ "$MIBS" = "$DEFAULT_MIBS" ] && [ ! -e "$ROOT/.cache/.gitignore" ]; then
		# A cache that ignores itself stays out of git even without a rule
		# in the top-level .gitignore.
		echo '*' >"$ROOT/.cache/.gitignore"
	fi
	rm -rf "$tmp"
	trap - EXIT
	say "standard MIB modules in $MIBS"
}

pkgs=$(missing_pkgs)
mibs=$(missing_mibs)
[ -z "$pkgs" ] && [ -z "$mibs" ] && exit 0

if [ -n "$pkgs" ]; then
	if is_root; then
		apt_update
		say "apt-get install $pkgs"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
		pkgs=$(missing_pkgs)
	fi
fi
if [ -n "$mibs" ] && command -v apt-get >/dev/null 2>&1; then
	fetch_mibs || say "could not unpack erlang-snmp's MIB files"
	mibs=$(missing_mibs)
fi

[ -z "$pkgs" ] && [ -z "$mibs" ] && exit 0

if [ -n "$pkgs" ]; then
	say "missing Debian packages: $pkgs"
fi
if [ -n "$mibs" ]; then
	say "missing standard MIB modules in $MIBS: $mibs"
fi
if is_root; then
	say "installing failed; see the messages above"
	exit 1
fi
say "to install them, run as root:  $ROOT/test/deps/install.sh"
if [ -n "$pkgs" ]; then
	say "or by hand:  apt-get update && apt-get install -y $pkgs"
fi
if [ -n "$mibs" ]; then
	say "and:  d=\$(mktemp -d) && (cd \$d && apt-get download erlang-snmp) && dpkg -x \$d/erlang-snmp_*.deb \$d/x && mkdir -p $MIBS && cp \$d/x/usr/lib/erlang/lib/snmp-*/mibs/*.mib $MIBS/"
fi
exit 1
