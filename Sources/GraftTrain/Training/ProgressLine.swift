import Foundation
import GraftCore

/// Draws training progress on stderr: a bar redrawn in place when stderr is a terminal, and the
/// other events as lines.
public final class ProgressLine {
    private let isTerminal = isatty(2) != 0
    private var drawn = false
    private var tableStarted = false

    public init() {}

    /// Shows an event: a progress bar redrawn in place (on a terminal), anything else as a line.
    public func handle(_ event: TrainingEvent) {
        if case .progress(let p) = event {
            guard isTerminal else { return }
            FileHandle.standardError.write(Data("\r\(p.line())".utf8))
            drawn = true
            return
        }
        if case .epochEnded = event, !tableStarted {
            note(TrainingEvent.epochTableHeader)
            tableStarted = true
        }
        if let message = event.message { note(message) }
    }

    /// Prints a line (after a bar in progress).
    public func note(_ message: String) {
        finish()
        FileHandle.standardError.write(Data("\(message)\n".utf8))
    }

    /// Ends a bar in progress with a newline.
    public func finish() {
        if drawn {
            FileHandle.standardError.write(Data("\n".utf8))
            drawn = false
        }
    }
}
