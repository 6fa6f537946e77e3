import COpenBLAS
import GraftCore

extension Parallel {
    /// Keeps OpenBLAS single-threaded: its idle workers spin (sched_yield) and would take the
    /// cores from Graft's own loops. Called before any kernel runs.
    static let quietOpenBLAS: Void = openblas_set_num_threads(1)

    /// Keeps freed activations in the heap for the next step and the next run: glibc would
    /// otherwise map each large buffer afresh and fault in (and zero) its pages on every run.
    static let keepFreedMemory: Void = graft_keep_freed_memory()
}
