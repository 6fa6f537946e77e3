#!/usr/bin/env bash
# Regenerates Sources/COnnxProto from schemas/onnx.proto with protoc-c (Debian protobuf-c-compiler).
# The output is committed; run this after changing the schema.
set -euo pipefail
cd "$(dirname "$0")/.."
out=Sources/COnnxProto
mkdir -p "$out/include"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
protoc-c --proto_path=schemas --c_out="$tmp" schemas/onnx.proto
mv "$tmp/onnx.pb-c.h" "$out/include/onnx.pb-c.h"
sed 's|#include "onnx.pb-c.h"|#include "include/onnx.pb-c.h"|' "$tmp/onnx.pb-c.c" > "$out/onnx.pb-c.c"
echo "regenerated $out ($(protoc-c --version | head -1))"
