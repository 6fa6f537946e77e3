import Foundation
import GraftCore
import GraftONNX
import GraftTestSupport
import XCTest

/// Import → export → import gives the same graph, inline and with external data, and the
/// external data file has the layout ONNX's own reader expects.
final class ExportRoundTripTests: XCTestCase {
    static let variants = [
        "ts_opset11_folded", "ts_opset13_folded", "ts_opset17_folded",
        "ts_opset11_bn", "ts_opset17_bn", "ts_opset17_dynamic",
        "dynamo_opset18", "dynamo_opset18_dynamic",
    ]

    /// Exports `graph` to a fresh folder and imports the result.
    func roundTrip(_ graph: Graph, externalData: Bool, in folder: TemporaryDirectory) throws -> Graph {
        let path = folder.file("model.onnx")
        try ONNXExporter.export(graph, to: path, externalData: externalData)
        return try ONNXImporter.importModel(at: path)
    }

    func testTinyFixturesRoundTripInline() throws {
        for variant in Self.variants {
            let folder = try TemporaryDirectory()
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            let back = try roundTrip(graph, externalData: false, in: folder)
            assertSameGraph(back, graph, "\(variant) inline")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.onnx"], variant)
            // The bytes in memory are what a file holds.
            XCTAssertEqual(try ONNXExporter.serialize(graph), [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.file("model.onnx")))), variant)
        }
    }

    func testTinyFixturesRoundTripWithExternalData() throws {
        for variant in Self.variants {
            let folder = try TemporaryDirectory()
            let graph = try ONNXImporter.importModel(at: Fixtures.tiny("\(variant).onnx"))
            let back = try roundTrip(graph, externalData: true, in: folder)
            assertSameGraph(back, graph, "\(variant) external")
            XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["model.onnx", "model.onnx.data"], variant)
            try assertExternalLayout(folder.file("model.onnx"), graph, variant)
        }
    }

    func testResNet50RoundTripsInlineAndWithExternalData() throws {
        let graph = try ONNXImporter.importModel(at: try Fixtures.materialized("resnet50/resnet50_bn.onnx"))
        for external in [false, true] {
            let folder = try TemporaryDirectory()
            let back = try roundTrip(graph, externalData: external, in: folder)
            assertSameGraph(back, graph, "resnet50 \(external ? "external" : "inline")")
            XCTAssertEqual(back.parameterCount, 25_557_032)
            if external {
                try assertExternalLayout(folder.file("model.onnx"), graph, "resnet50")
                // Aligned tensors are mapped from the data file, not copied.
                XCTAssertTrue(back.constants["conv1.weight"]!.isMemoryMapped)
            }
        }
    }

    func testInitializersOverOneGiBGoToExternalDataUnasked() throws {
        // Three names for one 384 MiB tensor: 1.125 GiB of initializers in 384 MiB of memory.
        var weight = Tensor(zeros: [96 << 20])
        weight.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 1; $0[$0.count - 1] = 2 }
        let x = ValueInfo(name: "x", dtype: .float32, shape: [1])
        let graph = Graph(name: "large", inputs: [x], outputs: [x], constants: ["a": weight, "b": weight, "c": weight],
                          constantOrder: ["a", "b", "c"])
        let e = thrownGraftError { _ = try ONNXExporter.serialize(graph) }
        XCTAssertEqual(e?.description, "the initializers hold 1207959552 bytes, more than 1 GiB: write the model to a file, with external data")
        let folder = try TemporaryDirectory()
        let back = try roundTrip(graph, externalData: false, in: folder)
        let size = { (name: String) in try FileManager.default.attributesOfItem(atPath: folder.file(name))[.size] as? Int }
        XCTAssertEqual(try size("model.onnx.data"), 3 * weight.byteCount)
        XCTAssertLessThan(try size("model.onnx") ?? .max, 1024)
        assertSameGraph(back, graph, "large")
    }

    func testScopesAreWrittenAsGraftMetadata() throws {
        // Dynamo scopes come from pkg.torch.onnx metadata, which a Graph does not keep; Graft's
        // own metadata carries them, classes included, in the form ONNX tools show.
        let graph = try ONNXImporter.importModel(at: Fixtures.tiny("dynamo_opset18.onnx"))
        let conv = graph.nodes.first { $0.op.name == "Conv" && $0.inputs[1] == "layer1.0.conv1.weight" }!
        let folder = try TemporaryDirectory()
        try ONNXExporter.export(graph, to: folder.file("model.onnx"))
        let script = """
        import sys, onnx
        m = onnx.load(sys.argv[1])
        n = next(n for n in m.graph.node if n.name == sys.argv[2])
        for p in n.metadata_props:
            print(p.key, p.value, sep="\\t")
        """
        let printed = try ONNXRuntime.python(script, [folder.file("model.onnx"), conv.name])
        XCTAssertEqual(printed, """
        graft.module_path\tlayer1.0.conv1
        graft.module_classes\t['torchvision.models.resnet.ResNet', 'torch.nn.modules.container.Sequential', \
        'torchvision.models.resnet.Bottleneck']

        """)
        let back = try ONNXImporter.importModel(at: folder.file("model.onnx"))
        XCTAssertEqual(back.nodes.first { $0.name == conv.name }?.scope, conv.scope)
    }

    func testPythonListReprRoundTrips() throws {
        let names = ["", "plain", "it's", "say \"hi\"", "both ' and \"", "back\\slash"]
        let graph = Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .float32, shape: [1])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [1])],
                          nodes: [Node(name: "n", op: .relu, inputs: ["x"], outputs: ["y"], scope: ModuleScope(path: "a.b", classNames: names))])
        let folder = try TemporaryDirectory()
        try ONNXExporter.export(graph, to: folder.file("model.onnx"))
        // Python reads the list back as the same strings.
        let script = """
        import sys, ast, onnx
        m = onnx.load(sys.argv[1])
        value = {p.key: p.value for p in m.graph.node[0].metadata_props}["graft.module_classes"]
        print(ast.literal_eval(value) == sys.argv[2:])
        """
        XCTAssertEqual(try ONNXRuntime.python(script, [folder.file("model.onnx")] + names), "True\n")
        XCTAssertEqual(try ONNXImporter.importModel(at: folder.file("model.onnx")).nodes[0].scope, graph.nodes[0].scope)
    }

    /// Checks with the `onnx` package that every float initializer of 1 KiB or more is external,
    /// in `<model>.data`, 64-byte aligned and of the right length, and the others are inline.
    func assertExternalLayout(_ model: String, _ graph: Graph, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let script = """
        import sys, onnx
        m = onnx.load(sys.argv[1], load_external_data=False)
        for t in m.graph.initializer:
            e = {p.key: p.value for p in t.external_data}
            print(t.name, t.data_location, e.get("location", "-"), e.get("offset", "-"), e.get("length", "-"), sep="\\t")
        """
        let text = try ONNXRuntime.python(script, [model], file: file, line: line)
        let rows = text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(rows.map { $0[0] }, graph.constantOrder, "\(label): initializers", file: file, line: line)
        var external = 0
        var end = 0
        for row in rows where row.count == 5 {
            let t = graph.constants[row[0]]!
            if t.dtype.isFloatingPoint && t.byteCount >= 1024 {
                external += 1
                XCTAssertEqual(row[1], "1", "\(label): \(row[0]) data_location", file: file, line: line)
                XCTAssertEqual(row[2], "model.onnx.data", "\(label): \(row[0]) location", file: file, line: line)
                let offset = Int(row[3]) ?? -1
                XCTAssertEqual(offset % 64, 0, "\(label): \(row[0]) offset \(offset)", file: file, line: line)
                XCTAssertGreaterThanOrEqual(offset, end, "\(label): \(row[0]) overlaps the tensor before it", file: file, line: line)
                XCTAssertEqual(Int(row[4]), t.byteCount, "\(label): \(row[0]) length", file: file, line: line)
                end = offset + t.byteCount
            } else {
                XCTAssertEqual(row[1], "0", "\(label): \(row[0]) should be inline", file: file, line: line)
            }
        }
        XCTAssertGreaterThan(external, 0, label, file: file, line: line)
        let size = try FileManager.default.attributesOfItem(atPath: model + ".data")[.size] as? Int
        XCTAssertEqual(size, end, "\(label): data file size", file: file, line: line)
    }
}

