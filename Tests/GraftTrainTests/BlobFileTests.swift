import Foundation
import GraftCore
@testable import GraftTrain
import GraftTestSupport
import XCTest

/// Training states and feature caches are files a user may be handed: every count in them is
/// checked against the bytes there before memory is taken or written.
final class BlobFileTests: XCTestCase {
    struct Empty: Codable {}

    /// A blob file of `kind` whose header lists `arrays` as given (whatever their counts), with
    /// `payload` after it and a valid checksum.
    func blob(kind: String, arrays: String, payload: Data = Data()) -> Data {
        let header = Data("{\"kind\":\"\(kind)\",\"meta\":{},\"arrays\":[\(arrays)]}".utf8)
        var data = Data("GRAFTBLB".utf8)
        withUnsafeBytes(of: UInt32(1).littleEndian) { data.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(header)
        data.append(payload)
        let checksum = data.withUnsafeBytes { ContentHash.of($0) }
        withUnsafeBytes(of: checksum.littleEndian) { data.append(contentsOf: $0) }
        return data
    }

    func testCountsThatOverflowOrExceedTheFileAreRefused() {
        // 2^63 − 1 and 2^61 wrap to small byte counts when multiplied by 8 without a check.
        for (type, count) in [("i64", Int.max), ("f32", Int.max), ("i64", 1 << 61), ("f32", 1 << 62), ("i64", 3), ("f32", -1)] {
            let data = blob(kind: "training state", arrays: "{\"name\":\"w\",\"type\":\"\(type)\",\"count\":\(count)}", payload: Data(count: 16))
            XCTAssertThrowsError(try BlobFile<Empty>.decode(data, kind: "training state"), "\(type) \(count)") { error in
                XCTAssertEqual((error as? GraftError)?.description, "not a valid Graft training state file: array 'w' is truncated", "\(type) \(count)")
            }
        }
        let fits = blob(kind: "training state", arrays: "{\"name\":\"w\",\"type\":\"i64\",\"count\":2}", payload: Data(count: 16))
        XCTAssertEqual(try BlobFile<Empty>.decode(fits, kind: "training state").integers["w"], [0, 0])
    }

    func testAnOptimizerBufferOfAnotherSizeIsRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("m.onnx.state")
        let weight = Parameter(name: "fc.weight", shape: [2, 3], values: Array(repeating: 0.5, count: 6))
        let meta = TrainingState.Meta(fingerprint: [:], completedEpochs: 1, bestEpoch: 1, bestLoss: 1, epochsWithoutImprovement: 0,
                                      history: TrainingHistory(), parameterNames: ["fc.weight"], optimizerKind: "adam",
                                      optimizerSettings: [:], optimizerStep: 1)
        for (key, count) in [("fc.weight.exp_avg", 6), ("fc.weight.exp_avg_sq", 2), ("fc.weight.momentum_buffer", 100), ("fc.bias.exp_avg", 6)] {
            let optimizer = OptimizerState(kind: "adam", settings: [:], step: 1, buffers: [key: Array(repeating: 0, count: count)])
            try TrainingState(meta: meta, parameters: [weight], bestParameters: [weight], optimizer: optimizer).write(to: path)
            if count == 6 && key.hasPrefix("fc.weight") {
                XCTAssertEqual(try TrainingState.read(path, fingerprint: [:], like: [weight]).optimizer.buffers[key]?.count, 6)
                continue
            }
            XCTAssertThrowsError(try TrainingState.read(path, fingerprint: [:], like: [weight]), key) { error in
                XCTAssertEqual((error as? GraftError)?.description,
                               "\(path): the saved optimizer state '\(key)' of \(count) values fits no parameter of the head", key)
            }
        }
    }

    func testAFIFOWhereTheStateShouldBeIsRefusedWithoutWaiting() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("m.onnx.state")
        XCTAssertEqual(mkfifo(path, 0o600), 0)
        final class Box: @unchecked Sendable { var description: String? }
        let box = Box(), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do {
                _ = try BlobFile<Empty>.read(path, kind: "training state")
            } catch {
                box.description = (error as? GraftError)?.description
            }
            done.signal()
        }
        if done.wait(timeout: .now() + 10) == .timedOut {
            XCTFail("reading a FIFO hung")
            // A writer that opens and closes lets the blocked reader go on.
            close(open(path, O_WRONLY | O_NONBLOCK))
            done.wait()
        }
        XCTAssertEqual(box.description, "\(path): not a regular file")
    }
}
