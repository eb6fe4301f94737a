#!/bin/sh
# Prints the Debian version of this checkout, which must start with a digit:
#   - at a release tag vX.Y.Z:            X.Y.Z
#   - after a release tag:                X.Y.Z+git<date>.<sha>
#   - before the first release tag:       0.0~git<date>.<sha>
# <date> is the commit date (UTC, YYYYMMDD) and <sha> the short commit id;
# uncommitted changes add "+dirty". "~" sorts before anything, so the
# first release tag outranks every snapshot before it.
set -eu
cd "$(dirname "$0")/../.."
if ! sha=$(git rev-parse --short HEAD 2>/dev/null); then
	echo "0.0~unknown"
	exit 0
fi
date=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d HEAD)
dirty=""
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	dirty="+dirty"
fi
tag=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null || true)
if [ -z "$tag" ]; then
	echo "0.0~git$date.$sha$dirty"
elif [ "$(git rev-list -n1 "$tag")" = "$(git rev-parse HEAD)" ]; then
	echo "${tag#v}$dirty"
else
	echo "${tag#v}+git$date.$sha$dirty"
fi
