import GraftTestSupport
import XCTest

/// A package that depends on Graft by version (where SwiftPM refuses unsafe compiler flags)
/// builds in release and, through the `Graft` facade, runs an ONNX model and a `.pth` against
/// PyTorch's outputs and classifies an image
/// (tools/check_consumer_package.sh; it builds Graft's libraries once more, about a minute).
final class ConsumerPackageTests: XCTestCase {
    func testAPackageDependingOnGraftByVersionBuildsAndRuns() throws {
        let script = Fixtures.root.appendingPathComponent("tools/check_consumer_package.sh").path
        let output = try runTool("/bin/bash", [script])
        XCTAssert(output.contains("consumer: ok"), output)
    }
}
