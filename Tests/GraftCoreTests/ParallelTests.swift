import Foundation
import GraftCore
import XCTest

/// The one parallel loop: every index once, on `Parallel.threads` threads (the caller alone for 1).
final class ParallelTests: XCTestCase {
    override func tearDown() { Parallel.threads = Parallel.defaultThreads }

    func testEveryIndexOnceAndOneThreadMeansTheCaller() {
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var counts = [Int](repeating: 0, count: 1000)
            var threads = Set<UInt>()
        }
        for threads in [1, 3] {
            Parallel.threads = threads
            let seen = Seen()
            Parallel.forEach(1000) { i in
                seen.lock.lock()
                seen.counts[i] += 1
                seen.threads.insert(UInt(pthread_self()))
                seen.lock.unlock()
            }
            XCTAssertEqual(seen.counts, [Int](repeating: 1, count: 1000), "\(threads) threads")
            if threads == 1 { XCTAssertEqual(seen.threads, [UInt(pthread_self())]) }
            XCTAssertLessThanOrEqual(seen.threads.count, threads)
        }
    }

    func testRunsCoverTheRangeInOrderedPieces() {
        Parallel.threads = 4
        final class Pieces: @unchecked Sendable {
            let lock = NSLock()
            var ranges: [Range<Int>] = []
        }
        let pieces = Pieces()
        Parallel.forEachRun(1000, minimumRun: 100) { r in
            pieces.lock.lock()
            pieces.ranges.append(r)
            pieces.lock.unlock()
        }
        let sorted = pieces.ranges.sorted { $0.lowerBound < $1.lowerBound }
        XCTAssertEqual(sorted.count, 4)
        XCTAssertEqual(sorted.first?.lowerBound, 0)
        XCTAssertEqual(sorted.last?.upperBound, 1000)
        XCTAssertTrue(zip(sorted, sorted.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        // Too little work for a thread each: one run on the caller.
        pieces.ranges = []
        Parallel.forEachRun(150, minimumRun: 100) { r in pieces.ranges.append(r) }
        XCTAssertEqual(pieces.ranges, [0..<150])
    }
}
