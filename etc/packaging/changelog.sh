#!/bin/sh
# Prints the Debian changelog of a snapshot package: one entry for VERSION,
# dated from the commit (so a rebuild of the same commit is identical).
#   etc/packaging/changelog.sh VERSION MAINTAINER
set -eu
version=$1
maintainer=$2
cd "$(dirname "$0")/../.."
if sha=$(git rev-parse --short HEAD 2>/dev/null); then
	date=$(LC_ALL=C TZ=UTC git log -1 --format=%cd --date=format-local:'%a, %d %b %Y %H:%M:%S +0000' HEAD)
	# The subject wrapped as a changelog wants it: 80 columns at most.
	subject=$(git log -1 --format=%s HEAD | cut -c1-300 | fold -s -w 72 | sed 's/ *$//; 2,$s/^/    /')
	what="Snapshot of commit $sha:
    $subject"
else
	date=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S +0000')
	what="Snapshot of a source tree outside git."
fi
cat <<END
smsnmpd ($version) unstable; urgency=medium

  * $what
  * Built by make deb; the full history is the git log of
    https://github.com/smsnmpd/smsnmpd.

 -- $maintainer  $date
END
