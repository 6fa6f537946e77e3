#!/usr/bin/env bash
# Checks that another package can depend on Graft by version, as SwiftPM resolves it for a user:
# the working tree (tracked and new files, not ignored ones) is copied into a fresh repository
# tagged 0.1.0, a consumer package depending on it with `from: "0.1.0"` (SwiftPM refuses unsafe
# compiler flags in such a dependency) imports a fixture ONNX model with GraftONNX, runs it with
# GraftRuntime in a release build and compares the output with PyTorch's.
#
#     tools/check_consumer_package.sh    (prints "consumer: ok ..." and exits 0 when it works)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/graft-consumer.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The package as it would be published: what git tracks or would add, minus the fixtures (the
# consumer reads the ones it needs from here) and files deleted from the working tree.
mkdir "$WORK/graft"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [[ -f "$f" && "$f" != fixtures/* ]] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$WORK/graft"
(cd "$WORK/graft" && git init -q && git add -A \
    && git -c user.name=consumer-check -c user.email=consumer-check@localhost commit -qm "Graft" && git tag 0.1.0)

mkdir -p "$WORK/consumer/Sources/consumer"
cat > "$WORK/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$WORK/graft", from: "0.1.0")],
    targets: [
        .executableTarget(name: "consumer", dependencies: [
            .product(name: "GraftCore", package: "graft"),
            .product(name: "GraftONNX", package: "graft"),
            .product(name: "GraftRuntime", package: "graft"),
        ]),
    ]
)
SWIFT
cat > "$WORK/consumer/Sources/consumer/main.swift" <<'SWIFT'
import GraftCore
import GraftONNX
import GraftRuntime

// consumer MODEL INPUT.npy EXPECTED.npy: runs the model and compares with the expected output.
let arguments = CommandLine.arguments
let graph = try ONNXImporter.importModel(at: arguments[1])
let input = try NPY.read(arguments[2]), expected = try NPY.read(arguments[3])
let output = try Interpreter(graph: graph).run([graph.inputs[0].name: input])[graph.outputs[0].name]!
guard output.shape == expected.shape else { fatalError("shape \(output.shape), expected \(expected.shape)") }
// |Δ| ≤ 1e-4 + 1e-3·|expected| everywhere.
let worst = zip(output.floats, expected.floats).map { abs($0 - $1) / (1e-4 + 1e-3 * abs($1)) }.max() ?? 0
guard worst <= 1 else { fatalError("output differs: worst |Δ|/tolerance \(worst)") }
print("consumer: ok, \(output.shape), worst |Δ|/tolerance \(worst)")
SWIFT

cd "$WORK/consumer"
swift build -c release 2>&1 | tail -n 20
"$(swift build -c release --show-bin-path)/consumer" \
    "$ROOT/fixtures/tiny/ts_opset17_bn.onnx" "$ROOT/fixtures/tiny/input_b1.npy" "$ROOT/fixtures/tiny/output_b1.npy"
