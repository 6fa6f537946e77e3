import Foundation
import GraftCore
@testable import GraftTrain
import GraftTestSupport
import XCTest

/// Training states and feature caches are files a user may be handed: every count in them is
/// checked against the bytes there before memory is taken or written.
final class BlobFileTests: XCTestCase {
    struct Empty: Codable {}

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
