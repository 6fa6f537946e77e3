import Foundation
import GraftCore
@testable import GraftHDF5
import GraftONNX
import GraftTorch
import GraftTestSupport
import XCTest

/// What Graft writes, Graft reads back exactly; the plain state_dict form is the one h5py
/// writes from PyTorch.
final class ExportTests: XCTestCase {
    func roundTrip(_ graph: Graph, recordingTopology: Bool = true) throws -> Graph {
        let dir = try TemporaryDirectory()
        let path = dir.file("model.h5")
        try HDF5Exporter.export(graph, to: path, recordingTopology: recordingTopology)
        return try HDF5Importer.importModel(at: path)
    }

    func testEveryFixtureRoundTripsBitForBit() throws {
        let sources = ["basic_flat.h5", "bottleneck_f16.h5", "resnext.h5", "fc_head.h5", "keras_resnet50.h5"]
        for source in sources {
            let graph = try HDF5Importer.importModel(at: HDF5Fixtures.path(source))
            XCTAssertEqual(try roundTrip(graph), graph, source)
        }
        // An ONNX import with its producer metadata and opset.
        let onnx = try ONNXImporter.importModel(at: HDF5Fixtures.path("resnext.onnx"))
        XCTAssertEqual(try roundTrip(onnx), onnx)
    }

    func testPlainStateDictReadsBackAsTheFileH5pyWrote() throws {
        for (source, model) in [("basic_flat.h5", "basic"), ("fc_head.h5", "fc_head"), ("resnext.h5", "resnext")] {
            let h5py = try HDF5Importer.importModel(at: HDF5Fixtures.path(source))
            // From the ONNX graph: what `graft convert model.onnx model.h5` starts from.
            let onnx = try ONNXImporter.importModel(at: HDF5Fixtures.path("\(model).onnx"))
            let written = try roundTrip(onnx, recordingTopology: false)
            assertSameModel(written, h5py, source)
        }
    }

    /// A graph no importer would build: constants after passes (names with `/`, a name HDF5
    /// cannot hold, integer, bool, half and scalar tensors), every op with its attributes, and
    /// a head that is not torchvision's.
    func oddGraph() -> Graph {
        let window = Window(kernel: [3, 3], strides: [2, 1], pads: [1, 0, 1, 0], dilations: [1, 2], autoPad: .sameLower, ceilMode: true)
        let ops: [Op] = [
            .conv(ConvAttributes(window: window, group: 2)), .batchNorm(epsilon: 1.001e-5, momentum: 0.99), .relu, .sigmoid, .tanh,
            .leakyRelu(alpha: 0.1), .maxPool(window), .averagePool(window, countIncludePad: true), .globalAveragePool, .globalMaxPool,
            .reduceMean(axes: [-1, -2], keepDims: false, noopWithEmptyAxes: true), .reduceMean(axes: nil, keepDims: true, noopWithEmptyAxes: false),
            .add, .sub, .mul, .div, .sum, .neg, .exp, .sqrt, .flatten(axis: 1), .reshape(allowZero: true),
            .gemm(GemmAttributes(alpha: 0.5, beta: 0.25, transA: true, transB: false)), .matMul, .identity, .dropout(ratio: 0.3),
            .constantOfShape(value: Tensor(shape: [1], int64s: [7])), .shape(start: 1, end: nil), .shape(start: 0, end: 2),
            .gather(axis: 1), .unsqueeze(axes: nil), .unsqueeze(axes: [0]), .squeeze(axes: []), .concat(axis: -1),
            .transpose(perm: nil), .transpose(perm: [0, 2, 3, 1]), .softmax(axis: 1, coerce2D: true),
            .logSoftmax(axis: -1, coerce2D: false), .slice, .pad,
        ]
        var graph = Graph(name: "odd", metadata: ModelMetadata(producerName: "someone", producerVersion: "9", opset: 13, irVersion: 7,
                                                               otherOpsets: ["com.microsoft": 1], properties: ["note": "é ✓"]))
        graph.inputs = [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(2), .symbol("height"), .value(5)]))]
        var rng = SeededGenerator(seed: 3)
        graph.setConstant("/layer1/Constant_output_0", rng.tensor([2, 3]))
        graph.setConstant("onnx::Reshape_12", Tensor(shape: [2], int64s: [-1, 6]))
        graph.setConstant("graft_constants", Tensor(scalar: 1.5))
        graph.setConstant(".", Tensor(shape: [1], floats: [2]))
        graph.setConstant("mask", Tensor(shape: [3], int64s: [1, 0, 1]).converted(to: .bool))
        graph.setConstant("half", rng.tensor([4]).converted(to: .float16))
        graph.setConstant("head.0.weight", rng.tensor([3, 6]))
        graph.setConstant("empty", Tensor(zeros: [0, 3]))
        graph.setConstant("counts", Tensor(shape: [2], int64s: [3, 4]).converted(to: .int32))
        for (i, op) in ops.enumerated() {
            graph.nodes.append(Node(name: "n\(i)", op: op, inputs: ["x", i % 2 == 0 ? "head.0.weight" : ""], outputs: ["y\(i)"],
                                    scope: i % 3 == 0 ? nil : ModuleScope(path: "block.\(i)", classNames: i % 3 == 1 ? [] : ["A", "B.C"])))
        }
        graph.outputs = [ValueInfo(name: "y0", dtype: .float32, shape: Shape([.symbol("N"), .value(3)]))]
        return graph
    }

    func testAnyGraphRoundTripsThroughTheRecordedTopology() throws {
        let graph = oddGraph()
        let dir = try TemporaryDirectory()
        let path = dir.file("model.h5")
        try HDF5Exporter.export(graph, to: path, recordingTopology: true)
        XCTAssertEqual(try HDF5Importer.readGraph(at: path), graph)
        // Its nodes read made-up inputs, which the import's validation refuses.
        XCTAssertThrowsError(try HDF5Importer.importModel(at: path)) { error in
            XCTAssertEqual("\(error)", "\(path): node 'n1' (BatchNormalization): takes 5 inputs, got 1")
        }
    }

    func testPlainStateDictIsRefusedForAGraphItCannotHold() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("odd.h5")
        XCTAssertThrowsError(try HDF5Exporter.export(oddGraph(), to: path, recordingTopology: false)) { error in
            XCTAssertEqual("\(error)", "\(path): the model has no torchvision state_dict form: constant 'onnx::Reshape_12' is int64, not float32")
        }
        // A torchvision ResNet whose head was changed is no longer the model its keys name.
        var graph = try HDF5Importer.importModel(at: HDF5Fixtures.path("basic_flat.h5"))
        graph.nodes.insert(Node(name: "/fc/Relu", op: .relu, inputs: ["/Flatten_output_0"], outputs: ["relu"]), at: graph.nodes.count - 1)
        graph.nodes[graph.nodes.count - 1].inputs[0] = "relu"
        XCTAssertThrowsError(try HDF5Exporter.export(graph, to: path, recordingTopology: false)) { error in
            XCTAssertEqual("\(error)", "\(path): the model has no torchvision state_dict form: its nodes are not those of the torchvision ResNet (BasicBlock [2, 2, 2, 2]) its weights name (was it optimized? convert with the passes off)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }

    func testAFailedWriteLeavesNothingAndKeepsTheOldFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("model.h5")
        let old = Data("an older file".utf8)
        try old.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try HDF5Exporter.export(oddGraph(), to: path, recordingTopology: false))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), old)
        // The rename over a folder fails after the file was written.
        let folder = dir.file("folder.h5")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        XCTAssertThrowsError(try HDF5Exporter.export(oddGraph(), to: folder)) { error in
            XCTAssertEqual("\(error)", "\(folder): cannot write: Is a directory")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["folder.h5", "model.h5"])
        let missing = dir.file("no/such/folder/model.h5")
        XCTAssertThrowsError(try HDF5Exporter.export(oddGraph(), to: missing)) { error in
            XCTAssertEqual("\(error)", "\(missing): cannot write: No such file or directory")
        }
    }

    /// The layout PyTorch users load (`{k: torch.from_numpy(v[()]) for k, v in h5py.File(p).items()}`),
    /// checked with h5py from the test venv (tools/requirements-test.txt).
    func testH5pySeesAFlatFloat32StateDict() throws {
        let python = Fixtures.root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python),
              (try? Self.python(python, ["-c", "import h5py"]))?.status == 0 else {
            return XCTFail("h5py is not in .venv: run `make test` (tools/setup_venv.sh)")
        }
        let dir = try TemporaryDirectory()
        let path = dir.file("basic.h5")
        let onnx = try ONNXImporter.importModel(at: HDF5Fixtures.path("basic.onnx"))
        try HDF5Exporter.export(onnx, to: path)
        let script = """
        import sys, h5py, numpy as np
        ours, theirs = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
        want = {k: v for k, v in theirs.items() if not k.endswith("num_batches_tracked")}
        assert sorted(ours.keys()) == sorted(want), sorted(set(ours.keys()) ^ set(want))
        for k, v in ours.items():
            a = v[()]
            assert isinstance(v, h5py.Dataset) and a.dtype == np.float32 and np.array_equal(a, want[k][()]), k
        assert ours.attrs["graft_format_version"] == 1 and "graft_graph" in ours.attrs
        print(len(want))
        """
        let result = try Self.python(python, ["-c", script, path, HDF5Fixtures.path("basic_flat.h5")])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output, "\(onnx.constants.count)\n")
    }

    static func python(_ python: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try GraftProcess.capture(URL(fileURLWithPath: python), arguments)
        return (result.status, result.stdout + result.stderr)
    }
}

/// Graphs that came from HDF5 (a PyTorch state_dict, a Keras model) and from PyTorch's `.pth`,
/// written as ONNX: ONNX Runtime runs them and gives the framework's own output.
final class ExportToONNXRuntimeTests: XCTestCase {
    func testStateDictKerasAndPthGraphsRunInONNXRuntime() throws {
        let dir = try TemporaryDirectory()
        let cases: [(graph: Graph, input: String, reference: String)] = [
            (try HDF5Importer.importModel(at: HDF5Fixtures.path("fc_head.h5")), HDF5Fixtures.path("input_b1.npy"), HDF5Fixtures.path("fc_head.output_b1.npy")),
            (try HDF5Importer.importModel(at: HDF5Fixtures.path("keras_resnet50.h5")), HDF5Fixtures.path("input_b1.npy"),
             HDF5Fixtures.path("keras_resnet50.output_b1.npy")),
            (try TorchCheckpoint.read(at: Fixtures.path("torch/basic.pth")).graph(name: "basic"), HDF5Fixtures.path("input_b1.npy"),
             Fixtures.path("torch/basic.output_b1.npy")),
        ]
        var jobs: [ONNXRuntime.Job] = []
        for (i, c) in cases.enumerated() {
            let model = dir.file("\(i).onnx")
            try ONNXExporter.export(c.graph, to: model)
            jobs.append(ONNXRuntime.Job(model: model, inputs: [c.input], output: dir.file("\(i).npy")))
        }
        XCTAssertEqual(try ONNXRuntime.check(jobs.map(\.model)), [nil, nil, nil])
        let failures = try ONNXRuntime.run(jobs)
        for (i, c) in cases.enumerated() {
            XCTAssertNil(failures[i], "case \(i)")
            assertClose(try NPY.read(jobs[i].output), try NPY.read(c.reference), "case \(i)")
        }
    }
}
