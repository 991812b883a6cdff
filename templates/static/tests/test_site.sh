#!/bin/sh
# The site builds and its entry page is there.
set -eu
out=$(mktemp -d)
sh build.sh site "$out" >/dev/null
grep -q "<title>" "$out/index.html"
echo "ok"
