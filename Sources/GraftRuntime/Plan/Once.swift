import Foundation

/// A value made on first use, once, whichever thread asks first: packed weights that only some
/// batch sizes need, shared by every session that runs the plan.
final class Once<Value>: @unchecked Sendable {
    private var made: Value?
    private let lock = NSLock()

    init() {}

    /// An already made value.
    init(_ value: Value) { made = value }

    func value(_ make: () -> Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let made { return made }
        let v = make()
        made = v
        return v
    }
}
