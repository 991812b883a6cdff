#!/bin/sh
# build.sh SRC OUT: the site's build step (replace with `npm run build` when the site grows one).
set -eu
src=$1; out=$2
mkdir -p "$out"
cp -R "$src"/. "$out"/
test -f "$out/index.html"
echo "built $(find "$out" -type f | wc -l) file(s) into $out"
