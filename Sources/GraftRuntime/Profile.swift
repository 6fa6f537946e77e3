/// Time and work per step of a run, summed over runs, for `graft bench --profile`.
public struct Profile {
    public struct Entry {
        public var kind: String
        public var node: String
        public var seconds: Double = 0
        public var flops: Double = 0
    }

    /// By step position.
    public private(set) var entries: [Int: Entry] = [:]
    /// Runs of the model: a batch run a sub-batch at a time is one run (its steps' times, over
    /// every sub-batch, are the run's).
    public private(set) var runs = 0

    public init() {}

    mutating func startRun() { runs += 1 }

    mutating func record(step: Int, label: (kind: String, node: String), seconds: Double, flops: Double) {
        entries[step, default: Entry(kind: label.kind, node: label.node)].seconds += seconds
        entries[step]!.flops += flops
    }

    /// Per kind of step: total seconds per run, share of the run, and GFLOP/s.
    public var byKind: [(kind: String, seconds: Double, gflops: Double, count: Int)] {
        var totals: [String: (Double, Double, Int)] = [:]
        for e in entries.values {
            let t = totals[e.kind] ?? (0, 0, 0)
            totals[e.kind] = (t.0 + e.seconds, t.1 + e.flops, t.2 + 1)
        }
        let n = Double(max(runs, 1))
        return totals.map { ($0.key, $0.value.0 / n, $0.value.0 > 0 ? $0.value.1 / $0.value.0 / 1e9 : 0, $0.value.2) }
            .sorted { $0.seconds > $1.seconds }
    }

    /// Every step in run order, seconds and FLOPs per run.
    public var steps: [Entry] {
        let n = Double(max(runs, 1))
        return entries.sorted { $0.key < $1.key }.map {
            var e = $0.value
            e.seconds /= n
            e.flops /= n
            return e
        }
    }

    /// The slowest steps, seconds per run.
    public func top(_ count: Int) -> [Entry] {
        let n = Double(max(runs, 1))
        return entries.values.sorted { $0.seconds > $1.seconds }.prefix(count).map {
            var e = $0
            e.seconds /= n
            e.flops /= n
            return e
        }
    }
}
