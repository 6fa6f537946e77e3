import Foundation
import GraftCore
import GraftHDF5
import GraftTestSupport
import XCTest

/// Every bad file is one `GraftError` line naming the file and the dataset or keys at fault,
/// and HDF5 prints nothing.
final class BadInputTests: XCTestCase {
    /// Imports `path`, expecting the error `path: message` and nothing on stderr.
    func expectError(_ path: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var thrown: Error?
        let printed = try capturingStandardError {
            do { _ = try HDF5Importer.importModel(at: path) } catch { thrown = error }
        }
        guard let error = thrown as? GraftError else {
            return XCTFail("\(path) imported, or failed with \(String(describing: thrown)), instead of: \(message)", file: file, line: line)
        }
        XCTAssertEqual(error.description, "\(path): \(message)", file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
        XCTAssertEqual(printed, "", "printed on stderr", file: file, line: line)
    }

    func testSpoiledStateDicts() throws {
        let bad = { (name: String) in HDF5Fixtures.path("bad/\(name)") }
        let model = "torchvision ResNet (BasicBlock [1, 1, 1, 1])"
        try expectError(bad("missing_key.h5"), "the state_dict does not match a \(model): missing layer1.0.bn1.running_var")
        try expectError(bad("extra_key.h5"), "the state_dict does not match a \(model): unexpected decoder.weight")
        try expectError(bad("many_wrong_keys.h5"), "the state_dict does not match a \(model): missing fc.bias, layer3.0.bn2.bias, layer3.0.bn2.running_mean, layer3.0.bn2.running_var, layer3.0.bn2.weight; unexpected head.weight, layer5.0.conv1.weight")
        try expectError(bad("wrong_shape.h5"), "the state_dict does not fit a \(model): wrong shape fc.weight [3, 15] (expected [3, 16])")
        try expectError(bad("wrong_rank.h5"), "dataset '/layer2.0.conv1.weight' has shape [4, 18] (rank 2); a convolution weight has rank 4")
        try expectError(bad("int_weight.h5"), "dataset '/layer1.0.conv2.weight' holds int32; weights must be float16, float32 or float64")
        try expectError(bad("string_dataset.h5"), "dataset '/bn1.bias' holds strings; weights must be float16, float32 or float64")
        try expectError(bad("unknown_layout.h5"), "unknown layout: the state_dict keys do not name a torchvision ResNet (no conv1.weight, no layer1.*); found encoder.bias, encoder.weight")
        try expectError(bad("empty.h5"), "unknown layout: the file holds no datasets (not a PyTorch state_dict, a Keras model or a Graft file)")
        try expectError(bad("keras_unsupported_layer.h5"), "Keras layer 'norm' (LayerNormalization): the layer class is not supported")
        try expectError(bad("graft_future_version.h5"), "graft_format_version is 2 (a newer Graft wrote it?); this Graft reads version 1")
        try expectError(bad("graft_bad_record.h5"), "attribute 'graft_graph' is not a graph record Graft can read: 'metadata' is missing at the top")
        try expectError(bad("keras_weights_only.h5"), "a Keras weights-only file (no 'model_config' attribute): save the whole model with model.save(\"model.h5\")")
    }

    func testNotHDF5TruncatedAndMissingFiles() throws {
        let dir = try TemporaryDirectory()
        let text = dir.file("notes.h5")
        try Data("these are not weights\n".utf8).write(to: URL(fileURLWithPath: text))
        try expectError(text, "not an HDF5 file (no HDF5 signature)")
        try expectError(HDF5Fixtures.path("basic.onnx"), "not an HDF5 file (no HDF5 signature)")
        let empty = dir.file("empty.h5")
        try Data().write(to: URL(fileURLWithPath: empty))
        try expectError(empty, "not an HDF5 file (no HDF5 signature)")
        try expectError(dir.file("absent.h5"), "no such file")
        try expectError(dir.path, "a folder, not a model file")

        let original = try Data(contentsOf: URL(fileURLWithPath: HDF5Fixtures.path("basic_flat.h5")))
        for fraction in [0.001, 0.5, 0.99] {
            let cut = dir.file("cut.h5")
            let size = Int(Double(original.count) * fraction)
            try original.prefix(size).write(to: URL(fileURLWithPath: cut))
            try expectError(cut, "not a readable HDF5 file, truncated or damaged (truncated file: eof = \(size), sblock->base_addr = 0, stored_eof = \(original.count))")
        }
    }

    /// Runs `body` with file descriptor 2 sent to a file, and returns what was written there.
    func capturingStandardError(_ body: () throws -> Void) throws -> String {
        let dir = try TemporaryDirectory()
        let path = dir.file("stderr")
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        let saved = dup(2)
        fflush(stderr)
        dup2(fd, 2)
        defer {
            fflush(stderr)
            dup2(saved, 2)
            close(saved)
            close(fd)
        }
        try body()
        fflush(stderr)
        return try String(contentsOfFile: path, encoding: .utf8)
    }
}
