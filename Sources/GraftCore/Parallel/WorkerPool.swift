import Dispatch
import Foundation
import Synchronization

/// Threads kept for the runtime's parallel loops: they spin for a short while after each loop
/// (a run starts the next one within microseconds), yielding to any other runnable thread, and
/// sleep on a condition variable after that, so a loop costs no thread wake-up in the middle of
/// a run.
final class WorkerPool: @unchecked Sendable {
    /// Threads besides the caller's, as asked for.
    let workers: Int
    /// Those the system created: fewer than `workers` when it refused some (a ulimit, memory).
    private var started = 0
    private let generation = Atomic<Int>(0)
    private let next = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private var count = 0
    private var body: ((Int) -> Void)?
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    /// Held by the thread whose loop the pool runs (one at a time).
    private var owner = pthread_mutex_t()
    /// How long an idle worker spins before it sleeps.
    private static let spinNanoseconds: UInt64 = 300_000

    /// `GRAFT_TEST_THREAD_LIMIT=N`: the system "refuses" every thread after the first N, as a
    /// ulimit would (for the tests of that path, which a real limit makes flaky: once address
    /// space runs out for stacks, any later allocation may fail too).
    private static let testThreadLimit = ProcessInfo.processInfo.environment["GRAFT_TEST_THREAD_LIMIT"].flatMap(Int.init)

    init(workers: Int) {
        self.workers = workers
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        pthread_mutex_init(&owner, nil)
        for _ in 0..<workers {
            var thread = pthread_t()
            let box = Unmanaged.passRetained(self).toOpaque()
            let status = started >= (Self.testThreadLimit ?? .max) ? EAGAIN : pthread_create(&thread, nil, { raw in
                let pool = Unmanaged<WorkerPool>.fromOpaque(raw!).takeRetainedValue()
                pool.serve()
                return nil
            }, box)
            guard status == 0 else {
                // Out of threads: the loops run on those started (and the caller).
                Unmanaged<WorkerPool>.fromOpaque(box).release()
                break
            }
            pthread_detach(thread)
            started += 1
        }
    }

    /// Lets the workers finish and exit (they hold the pool until then).
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        generation.add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
    }

    private func serve() {
        var seen = 0
        while true {
            var g = generation.load(ordering: .sequentiallyConsistent)
            if g == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while g == seen {
                    spins += 1
                    // Let another runnable thread (OpenBLAS's, the training loop's) have the core.
                    if spins & 63 == 0 { sched_yield() }
                    if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds {
                        pthread_mutex_lock(&mutex)
                        sleepers.add(1, ordering: .sequentiallyConsistent)
                        while generation.load(ordering: .sequentiallyConsistent) == seen { pthread_cond_wait(&wake, &mutex) }
                        sleepers.subtract(1, ordering: .sequentiallyConsistent)
                        pthread_mutex_unlock(&mutex)
                    }
                    g = generation.load(ordering: .sequentiallyConsistent)
                }
            }
            seen = g
            if stopping.load(ordering: .sequentiallyConsistent) { return }
            work()
            pending.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    private func work() {
        guard let body else { return }
        while true {
            let i = next.add(1, ordering: .relaxed).oldValue
            if i >= count { break }
            body(i)
        }
    }

    /// Runs `body(i)` for every i in `0..<count` on the caller and the workers; false (nothing
    /// run) when another thread is using the pool.
    func run(_ count: Int, _ body: (Int) -> Void) -> Bool {
        guard pthread_mutex_trylock(&owner) == 0 else { return false }
        defer { pthread_mutex_unlock(&owner) }
        withoutActuallyEscaping(body) { body in
            self.body = body
            self.count = count
            next.store(0, ordering: .sequentiallyConsistent)
            pending.store(started, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&wake)
                pthread_mutex_unlock(&mutex)
            }
            work()
            while pending.load(ordering: .sequentiallyConsistent) > 0 {}
            self.body = nil
        }
        return true
    }
}

import Glibc
