#!/bin/sh
# Prints etc/smsnmpd.service as the Debian package installs it: the binary
# in /usr/bin, and the install notes for a hand-made installation replaced
# by what the package leaves to the administrator.
set -eu
cd "$(dirname "$0")/../.."
cat <<'END'
# systemd unit of smsnmpd, installed by its Debian package. The package
# makes the user smsnmpd and /etc/smsnmpd/smsnmpd.toml (mode 0640, group
# smsnmpd); it enables and starts the unit only once the group key exists:
#     (printf '1 '; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo) > /etc/smsnmpd/rmtp.key
#     chown smsnmpd: /etc/smsnmpd/rmtp.key && chmod 600 /etc/smsnmpd/rmtp.key
#     systemctl enable --now smsnmpd
# Local changes belong in an override: systemctl edit smsnmpd
END
# Drop the leading comment block (how to install by hand), keep the rest.
awk 'body || !/^#/ { body = 1; print }' etc/smsnmpd.service | sed 's|/usr/local/bin/smsnmpd|/usr/bin/smsnmpd|g'
