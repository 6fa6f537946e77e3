import Foundation
import GraftTestSupport
import XCTest

/// Generated code is what its generator writes today: protoc-c's output for schemas/onnx.proto.
final class GeneratedCodeTests: XCTestCase {
    func testTheProtobufCodeIsUpToDate() throws {
        let dir = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["protoc-c", "--proto_path=\(Fixtures.root.path)/schemas", "--c_out=\(dir.path)", "\(Fixtures.root.path)/schemas/onnx.proto"]
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "protoc-c (Debian's protobuf-c-compiler, tools/install_deps.sh) failed")
        let header = try String(contentsOfFile: dir.file("onnx.pb-c.h"), encoding: .utf8)
        let source = try String(contentsOfFile: dir.file("onnx.pb-c.c"), encoding: .utf8)
            .replacingOccurrences(of: "#include \"onnx.pb-c.h\"", with: "#include \"include/onnx.pb-c.h\"")
        let committed = Fixtures.root.appendingPathComponent("Sources/COnnxProto")
        XCTAssertEqual(header, try String(contentsOf: committed.appendingPathComponent("include/onnx.pb-c.h"), encoding: .utf8),
                       "Sources/COnnxProto/include/onnx.pb-c.h is stale: run tools/gen_proto.sh")
        XCTAssertEqual(source, try String(contentsOf: committed.appendingPathComponent("onnx.pb-c.c"), encoding: .utf8),
                       "Sources/COnnxProto/onnx.pb-c.c is stale: run tools/gen_proto.sh")
    }
}
