import Dispatch
import Foundation
import GraftCore
import GraftPasses

/// A model ready to run: its graph as imported, the graph passes (unless turned off), and the
/// runtime's plan for what they produced. Every caller that runs a model — inference, the
/// benchmark, evaluation, image prediction, the trunk's feature extraction — goes through it, so
/// the passes are honoured or skipped in one place and errors name the model's file.
///
/// `run` may be called from several threads at once: each call takes a `Session` of its own
/// over the one shared `Plan` (kept for the next call), and gives the same result as one
/// session alone.
public final class CompiledModel: @unchecked Sendable {
    /// The graph as the importer built it.
    public let imported: Graph
    /// The graph that runs: `imported` after the passes, or `imported` itself without them.
    public let graph: Graph
    /// What the passes did; nil when they were turned off.
    public let passReport: PassReport?
    /// The file the model came from, named in errors; nil for a graph built in memory.
    public let file: String?
    /// Seconds spent in the passes and in planning.
    public let passSeconds: Double, planSeconds: Double
    /// What the runtime decided: steps, kernels, layouts, packed weights.
    public let plan: Plan
    /// The precision asked for (steps without a kernel for it run f32).
    public let precision: Plan.Precision
    /// Sessions not running now, for the next call.
    private var idle: [Session] = []
    private let lock = NSLock()

    /// Optimizes (unless `optimize` is false) and plans `graph`, its convolutions and dense
    /// products at `precision` where a kernel for it exists.
    ///
    /// - Throws: `GraftError`, naming `file`, when a pass or the planner refuses the graph, or
    ///   the processor cannot compute at `precision`.
    public init(_ graph: Graph, optimize: Bool = true, precision: Plan.Precision = .f32, file: String? = nil) throws {
        imported = graph
        self.file = file
        self.precision = precision
        do {
            let t0 = Self.now()
            if optimize {
                // An int8 plan takes a quantized model's weights as the integers they are.
                let passes = PassManager(passes: PassManager.standard(keepingWeightDequantization: precision == .int8))
                let (optimized, report) = try passes.run(graph)
                self.graph = optimized
                passReport = report
            } else {
                self.graph = graph
                passReport = nil
            }
            let t1 = Self.now()
            // The weights the passes replaced (folded) and those the planner packs are copies:
            // the file's pages need not stay resident beside them.
            for constant in graph.constants.values { constant.evictMappedPages() }
            plan = try Planner.plan(self.graph, options: Planner.Options(precision: precision))
            passSeconds = t1 - t0
            planSeconds = Self.now() - t1
        } catch let error as GraftError {
            throw file.map { error.inFile($0) } ?? error
        }
    }

    /// The graph's inputs, as the runtime expects them.
    public var inputs: [ValueInfo] { graph.inputs }
    /// The graph's outputs, in order.
    public var outputs: [ValueInfo] { graph.outputs }

    /// Runs the model on named inputs and returns every output by name.
    ///
    /// - Throws: `GraftError` naming the input that is missing or does not fit (its dtype or
    ///   shape), or the node that failed; errors about the model name its file.
    public func run(_ inputs: [String: Tensor]) throws -> [String: Tensor] {
        var profile: Profile?
        return try run(inputs, profile: &profile)
    }

    /// Runs the model, adding each step's time to `profile` when one is given.
    public func run(_ inputs: [String: Tensor], profile: inout Profile?) throws -> [String: Tensor] {
        lock.lock()
        let session = idle.popLast() ?? Session(plan: plan)
        lock.unlock()
        defer {
            lock.lock()
            idle.append(session)
            lock.unlock()
        }
        do {
            return try session.run(inputs, profile: &profile)
        } catch let error as GraftError {
            // An input that is missing or does not fit is the caller's, not the model file's.
            let aboutAnInput = error.tensor.map { name in graph.inputs.contains { $0.name == name } } ?? false
            guard let file, !aboutAnInput else { throw error }
            throw error.inFile(file)
        }
    }

    /// Runs a model of one input and one output on `input`.
    ///
    /// - Throws: `GraftError` when the model has not one input, or as `run(_:)`.
    public func run(_ input: Tensor) throws -> Tensor {
        guard graph.inputs.count == 1, let output = graph.outputs.first else {
            throw GraftError(.invalidArgument, "the model has \(graph.inputs.count) inputs and \(graph.outputs.count) outputs; one input is needed here", file: file)
        }
        return try run([graph.inputs[0].name: input])[output.name]!
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
