import COpenBLAS
import Dispatch

/// How many threads Graft's own kernels use. OpenBLAS is kept to one thread whenever Graft runs
/// its own parallel loops, so the two never oversubscribe the cores.
public enum Parallel {
    /// The number of worker threads for Graft's kernels (1 runs everything on the caller).
    nonisolated(unsafe) public static var threads: Int = defaultThreads

    /// Keeps OpenBLAS single-threaded: its idle workers spin (sched_yield) and would take the
    /// cores from Graft's own loops. Called before any kernel runs.
    static let quietOpenBLAS: Void = openblas_set_num_threads(1)

    /// All online cores.
    public static var defaultThreads: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over `threads` threads.
    static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if threads <= 1 || count <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        let workers = min(threads, count)
        // Each worker takes a contiguous share, so neighbouring tiles stay on one core.
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                let start = count * w / workers, end = count * (w + 1) / workers
                for i in start..<end { body(i) }
            }
        }
    }
}

import Glibc
