import Foundation
import Synchronization

/// What a process does when it is told to stop (SIGTERM, SIGINT) or when a memory-mapped file
/// shrinks under it (SIGBUS): remove the temporary files being written and exit, with one line
/// on stderr for SIGBUS naming the file.
///
/// A signal handler may only call async-signal-safe functions, so everything it reads is in
/// fixed tables of C strings allocated once, before any handler is installed: a slot's state
/// byte is set only after its path is complete (with a fence between), and the handler calls
/// nothing but `unlink`, `write` and `_exit`.
public enum SignalCleanup {
    /// Installs the handlers: SIGTERM and SIGINT remove the temporary files and exit with
    /// 128 + the signal (143, 130); SIGBUS in a mapped file prints
    /// `<prefix>FILE: the file changed while it was read` and exits 1.
    public static func install(errorPrefix: String) {
        let table = Table.shared
        table.prefix.initialize(repeating: 0, count: Table.pathBytes)
        _ = errorPrefix.withCString { strncpy(table.prefix, $0, Table.pathBytes - 1) }
        for signal in [SIGTERM, SIGINT] { handle(signal, with: stopHandler) }
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = busHandler
        action.sa_flags = SA_SIGINFO
        sigemptyset(&action.sa_mask)
        sigaction(SIGBUS, &action, nil)
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

    /// Lists a file to remove on SIGTERM/SIGINT until `unregister`: a temporary file, or one
    /// renamed into place that nothing uses yet (an external data file before its model).
    ///
    /// - Returns: the slot to give `unregister`; nil when the path is too long or the table full.
    public static func register(_ path: String) -> Int? {
        Table.shared.temporaries.claim(path)
    }

    public static func unregister(_ slot: Int) {
        Table.shared.temporaries.release(slot)
    }

    /// Lists a mapped file's address range, for the SIGBUS message.
    static func registerMapping(_ path: String, start: UnsafeRawPointer, count: Int) -> Int? {
        let table = Table.shared
        guard let slot = table.mappings.claim(path, prepare: { table.ranges[2 * $0] = UInt(bitPattern: start); table.ranges[2 * $0 + 1] = UInt(count) }) else {
            return nil
        }
        return slot
    }

    static func unregisterMapping(_ slot: Int) {
        Table.shared.mappings.release(slot)
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
        let mappings = Slots(count: 32)
        /// Start and length of each mapping slot.
        let ranges = UnsafeMutablePointer<UInt>.allocate(capacity: 64)
        let prefix = UnsafeMutablePointer<CChar>.allocate(capacity: Table.pathBytes)

        private init() {
            ranges.initialize(repeating: 0, count: 64)
            prefix.initialize(repeating: 0, count: Table.pathBytes)
        }

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

private func busHandler(_ number: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    let table = SignalCleanup.Table.shared
    let address = UInt(bitPattern: info?.pointee._sifields._sigfault.si_addr)
    for slot in 0..<table.mappings.count where table.mappings.state(slot).pointee == 1 {
        let start = table.ranges[2 * slot], count = table.ranges[2 * slot + 1]
        guard address >= start, address - start < count else { continue }
        let path = table.mappings.path(slot)
        table.removeTemporaries()
        _ = write(2, table.prefix, strlen(table.prefix))
        _ = write(2, path, strlen(path))
        let message: StaticString = ": the file changed while it was read\n"
        _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
        _exit(1)
    }
    // Not a mapped file's fault: let it crash as it would have.
    Glibc.signal(SIGBUS, SIG_DFL)
}
