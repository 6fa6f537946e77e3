import Dispatch
import Foundation
import GraftCore
import Synchronization

/// Raises a stop flag on Ctrl-C (SIGINT) while it lives, instead of ending the process; the
/// command then exits with 130 (`wasReceived`).
public final class Interrupt {
    private let source: DispatchSourceSignal
    private static let received = Atomic<Bool>(false)

    /// Whether Ctrl-C stopped a run.
    public static var wasReceived: Bool { received.load(ordering: .sequentiallyConsistent) }

    public init(_ flag: StopFlag) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            Interrupt.received.store(true, ordering: .sequentiallyConsistent)
            flag.stop()
        }
        source.resume()
    }

    public func cancel() {
        source.cancel()
        SignalCleanup.reinstall(SIGINT)
    }
}
