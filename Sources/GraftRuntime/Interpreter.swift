import GraftCore

/// A graph planned and ready to run in one call: a `Plan` and one `Session` over it, for callers
/// that run one input at a time on one thread (tests, tools). Servers running several inputs at
/// once make one `Session` per thread over a shared `Plan` (as `CompiledModel` does).
public final class Interpreter {
    public let plan: Plan
    private let session: Session

    public var graph: Graph { plan.graph }

    /// - Throws: `GraftError` when the graph has a missing input or a cycle.
    public init(graph: Graph, options: Planner.Options = Planner.Options()) throws {
        plan = try Planner.plan(graph, options: options)
        session = Session(plan: plan)
    }

    /// Runs the graph.
    ///
    /// - Parameter feeds: a tensor for every graph input, by name.
    /// - Returns: the graph outputs by name.
    /// - Throws: `GraftError` for inputs that do not fit the graph, or a node that fails.
    public func run(_ feeds: [String: Tensor]) throws -> [String: Tensor] {
        try session.run(feeds)
    }

    /// Runs the graph, adding each step's time to `profile` when one is given.
    public func run(_ feeds: [String: Tensor], profile: inout Profile?) throws -> [String: Tensor] {
        try session.run(feeds, profile: &profile)
    }
}
