#!/usr/bin/env bash
# MathJax 3 served with the book: the npm package's es5 build into book/_static/mathjax (git-ignored),
# so that maths renders without the internet (_config.yml: mathjax_path). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${MATHJAX_VERSION:-3.2.2}
DEST=book/_static/mathjax
if [ -f "$DEST/tex-chtml.js" ] && [ "$(cat "$DEST/.version" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "error: npm is needed to fetch MathJax (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
tar -xzf "$tmp"/mathjax-"$VERSION".tgz -C "$tmp"
rm -rf "$DEST"
mkdir -p "$DEST"
cp -r "$tmp/package/es5/." "$DEST/"
echo "$VERSION" > "$DEST/.version"
echo "MathJax $VERSION in $DEST"
