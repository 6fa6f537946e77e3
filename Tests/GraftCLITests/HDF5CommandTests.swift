import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// `summary`, `infer` and `convert` take all three kinds of `.h5`.
final class HDF5CommandTests: XCTestCase {
    let input = Fixtures.path("hdf5/input_b1.npy")

    func inferOutput(_ model: String, in dir: TemporaryDirectory, _ name: String) throws -> Tensor {
        let out = dir.file(name)
        let r = try GraftProcess.run(["infer", model, "--input", input, "--output", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try NPY.read(out)
    }

    func testStateDictKerasAndGraftFiles() throws {
        let dir = try TemporaryDirectory()
        // A PyTorch state_dict written by h5py, against PyTorch's output.
        let stateDict = Fixtures.path("hdf5/fc_head.h5")
        assertClose(try inferOutput(stateDict, in: dir, "a.npy"), try NPY.read(Fixtures.path("hdf5/fc_head.output_b1.npy")))
        let summary = try GraftProcess.run(["summary", stateDict])
        XCTAssertEqual(summary.status, 0, summary.stderr)
        XCTAssertTrue(summary.stdout.hasPrefix("ResNet(\n"), summary.stdout)
        XCTAssertTrue(summary.stdout.contains("(fc): Sequential("), summary.stdout)
        // A Keras model, against Keras's output.
        let keras = Fixtures.path("hdf5/keras_resnet50.h5")
        assertClose(try inferOutput(keras, in: dir, "k.npy"), try NPY.read(Fixtures.path("hdf5/keras_resnet50.output_b1.npy")))
        // ONNX → .h5 → the same answers, and back to ONNX.
        let h5 = dir.file("m.h5"), onnx = dir.file("m.onnx")
        XCTAssertEqual(try GraftProcess.run(["convert", Fixtures.path("hdf5/resnext.onnx"), h5]).status, 0)
        XCTAssertEqual(try GraftProcess.run(["convert", h5, onnx]).status, 0)
        let reference = try NPY.read(Fixtures.path("hdf5/resnext.output_b1.npy"))
        assertClose(try inferOutput(h5, in: dir, "h.npy"), reference)
        assertClose(try inferOutput(onnx, in: dir, "o.npy"), reference)
    }

    func testBadHDF5IsOneLine() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("fake.h5")
        try Data("not hdf5 at all".utf8).write(to: URL(fileURLWithPath: path))
        let r = try GraftProcess.run(["summary", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("graft: error: \(path): "), r.stderr)
        XCTAssertEqual(r.stderr.filter { $0 == "\n" }.count, 1, r.stderr)
        let missing = try GraftProcess.run(["infer", Fixtures.path("hdf5/bad/missing_key.h5"), "--input", input])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("layer1.0.bn1.running_var"), missing.stderr)
    }
}
