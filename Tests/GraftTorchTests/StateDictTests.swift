import GraftCore
import GraftTestSupport
@testable import GraftTorch
import XCTest

final class StateDictTests: XCTestCase {
    func testEntriesKeepTheFileOrder() {
        let dict = StateDict(entries: [.init(key: "b", tensor: Tensor(scalar: 1)), .init(key: "a", tensor: Tensor(scalar: 2))])
        XCTAssertEqual(dict.entries.map(\.key), ["b", "a"])
        XCTAssertEqual(dict["a"]?.floats, [2])
        XCTAssertNil(dict["c"])
    }
}
