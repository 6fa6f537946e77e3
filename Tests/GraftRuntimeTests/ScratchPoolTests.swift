@testable import GraftRuntime
import XCTest

/// Scratch memory given back is lent again (a kernel's next call finds its pages already there),
/// the smallest buffer that holds what is asked; beyond what the pool keeps, buffers go back to
/// the system.
final class ScratchPoolTests: XCTestCase {
    func testBuffersAreLentAgainAndTheExcessReleased() {
        let pool = ScratchPool(keep: 3 << 20)
        let big = pool.borrow(2 << 20), small = pool.borrow(100_000)
        XCTAssertGreaterThanOrEqual(small.capacity, 100_000)
        XCTAssertEqual(Int(bitPattern: big.base) % 64, 0)
        pool.giveBack(big)
        pool.giveBack(small)
        // The smallest that holds 50,000 bytes is the small one; 1 MiB takes the big one.
        XCTAssertEqual(pool.borrow(50_000).base, small.base)
        let again = pool.borrow(1 << 20)
        XCTAssertEqual(again.base, big.base)
        // Nothing kept holds 4 MiB: a new buffer, and giving both back keeps 3 MiB at most.
        let larger = pool.borrow(4 << 20)
        XCTAssertNotEqual(larger.base, big.base)
        pool.giveBack(again)
        pool.giveBack(larger)
        let kept = pool.borrow(1)
        XCTAssertEqual(kept.base, again.base, "the 4 MiB buffer went back to the system, the 2 MiB one stayed")
    }
}
