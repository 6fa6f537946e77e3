import Dispatch
import Glibc

/// Graft's one parallel loop, used by the runtime's kernels, image decoding and the optimizers,
/// on `threads` threads (`--threads`).
public enum Parallel {
    /// The number of worker threads for Graft's loops (1 runs everything on the caller).
    nonisolated(unsafe) public static var threads: Int = defaultThreads

    /// All online cores.
    public static var defaultThreads: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Runs `body(i)` for every `i` in `0..<count`, spread over `threads` threads. Workers take
    /// the next index as they finish one, so uneven tiles (the edges) do not leave a core idle.
    /// The workers are kept between loops (`WorkerPool`); a loop started inside another, or
    /// while another thread's loop holds the pool, runs on GCD's threads instead.
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if threads <= 1 || count <= 1 {
            for i in 0..<count { body(i) }
            return
        }
        if pool(threads - 1).run(count, body) { return }
        let workers = min(threads, count)
        let next = Counter()
        withoutActuallyEscaping(body) { body in
            // The loop returns only when every index has run: `body` never outlives the call.
            nonisolated(unsafe) let body = body
            DispatchQueue.concurrentPerform(iterations: workers) { _ in
                while true {
                    let i = next.take()
                    if i >= count { break }
                    body(i)
                }
            }
        }
    }

    /// Runs `body` over `0..<count` cut into one run of consecutive indices per thread (sizes
    /// differ by one at most): for loops whose next index's data follow the current one's.
    ///
    /// - Parameter minimumRun: the fewest indices worth a thread of their own (an element-wise
    ///   update of a few thousand floats is done before a thread would start).
    public static func forEachRun(_ count: Int, minimumRun: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, count / max(minimumRun, 1)))
        if parts == 1 { return body(0..<count) }
        forEach(parts) { part in body(run(part, of: parts, in: count)) }
    }

    /// Run `part` of `0..<count` cut into `parts` runs of consecutive indices.
    public static func run(_ part: Int, of parts: Int, in count: Int) -> Range<Int> {
        part * count / parts..<(part + 1) * count / parts
    }

    nonisolated(unsafe) private static var shared: WorkerPool?
    nonisolated(unsafe) private static var sharedLock: pthread_mutex_t = {
        var m = pthread_mutex_t()
        pthread_mutex_init(&m, nil)
        return m
    }()

    /// The pool with `workers` threads, made (and the old one stopped) when the count changes.
    private static func pool(_ workers: Int) -> WorkerPool {
        pthread_mutex_lock(&sharedLock)
        defer { pthread_mutex_unlock(&sharedLock) }
        if let shared, shared.workers == workers { return shared }
        shared?.stop()
        let pool = WorkerPool(workers: workers)
        shared = pool
        return pool
    }
}

/// A shared index handed out one at a time.
private final class Counter: @unchecked Sendable {
    private var value = 0
    private var mutex = pthread_mutex_t()

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func take() -> Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        value += 1
        return value - 1
    }
}
