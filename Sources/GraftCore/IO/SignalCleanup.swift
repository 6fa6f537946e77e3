import Foundation
import Synchronization

/// What a process does when it is told to stop (SIGTERM, SIGINT): remove the temporary files
/// being written and exit.
///
/// A signal handler may only call async-signal-safe functions, so everything it reads is in
/// a fixed table of C strings allocated once, before any handler is installed: a slot's state
/// byte is set only after its path is complete (with a fence between), and the handler calls
/// nothing but `unlink`, `write` and `_exit`.
public enum SignalCleanup {
    /// Installs the handlers: SIGTERM and SIGINT remove the temporary files and exit with
    /// 128 + the signal (143, 130).
    public static func install() {
        _ = Table.shared
        for signal in [SIGTERM, SIGINT] { handle(signal, with: stopHandler) }
    }

    /// Restores the SIGTERM/SIGINT handler (after something else handled the signal a while).
    public static func reinstall(_ signal: Int32) {
        handle(signal, with: stopHandler)
    }

    private static func handle(_ signal: Int32, with handler: @convention(c) (Int32) -> Void) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        sigaction(signal, &action, nil)
    }

    /// Lists a temporary file to remove on a signal; nil when the path is too long or the table full.
    static func register(_ path: String) -> Int? {
        Table.shared.temporaries.claim(path)
    }

    static func unregister(_ slot: Int) {
        Table.shared.temporaries.release(slot)
    }

    /// Slots of NUL-terminated paths, each led by a state byte (1: in use).
    final class Slots: @unchecked Sendable {
        let count: Int
        let bytes: UnsafeMutablePointer<CChar>
        private let lock = Mutex<Void>(())

        init(count: Int) {
            self.count = count
            bytes = .allocate(capacity: count * Table.slotBytes)
            bytes.initialize(repeating: 0, count: count * Table.slotBytes)
        }

        func state(_ slot: Int) -> UnsafeMutablePointer<CChar> { bytes + slot * Table.slotBytes }
        func path(_ slot: Int) -> UnsafeMutablePointer<CChar> { bytes + slot * Table.slotBytes + 1 }

        func claim(_ path: String, prepare: (Int) -> Void = { _ in }) -> Int? {
            let length = path.utf8.count
            guard length < Table.pathBytes else { return nil }
            return lock.withLock { _ -> Int? in
                guard let slot = (0..<count).first(where: { state($0).pointee == 0 }) else { return nil }
                _ = path.withCString { memcpy(self.path(slot), $0, length + 1) }
                prepare(slot)
                atomicMemoryFence(ordering: .sequentiallyConsistent)
                state(slot).pointee = 1
                return slot
            }
        }

        func release(_ slot: Int) {
            lock.withLock { _ in
                state(slot).pointee = 0
                atomicMemoryFence(ordering: .sequentiallyConsistent)
            }
        }
    }

    /// Every table the handlers read, allocated once.
    final class Table: @unchecked Sendable {
        static let pathBytes = Int(PATH_MAX)
        static let slotBytes = pathBytes + 1
        static let shared = Table()

        let temporaries = Slots(count: 64)

        private init() {}

        /// Unlinks every listed temporary file (async-signal-safe).
        func removeTemporaries() {
            for slot in 0..<temporaries.count where temporaries.state(slot).pointee == 1 {
                unlink(temporaries.path(slot))
            }
        }
    }
}

private func stopHandler(_ signal: Int32) {
    SignalCleanup.Table.shared.removeTemporaries()
    _exit(128 + signal)
}
