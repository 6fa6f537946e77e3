import Foundation

/// Runs `body(0..<count)` on all cores; each index once, in no particular order.
func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    if count == 1 { return body(0) }
    DispatchQueue.concurrentPerform(iterations: count, execute: body)
}
