import GraftCore

/// What a training run writes after every epoch so that `--resume` continues exactly: the
/// epoch reached, the latest and best parameters, the optimizer's state, early stopping's count
/// and the history. A `BlobFile` of kind `training state`.
struct TrainingState {
    struct Meta: Codable {
        /// The settings, classes and data the run trained with; a resume must match them.
        var fingerprint: [String: String]
        var completedEpochs: Int
        var bestEpoch: Int?
        var bestLoss: Double?
        var epochsWithoutImprovement: Int
        var history: TrainingHistory
        var parameterNames: [String]
        var optimizerKind: String
        var optimizerSettings: [String: Double]
        var optimizerStep: Int
    }

    var meta: Meta
    var parameters: [Parameter]
    var bestParameters: [Parameter]
    var optimizer: OptimizerState

    static let kind = "training state"

    func write(to path: String) throws {
        var blob = BlobFile(kind: Self.kind, meta: meta)
        for p in parameters { blob.floats["parameter/" + p.name] = p.values }
        for p in bestParameters { blob.floats["best/" + p.name] = p.values }
        for (name, values) in optimizer.buffers { blob.floats["optimizer/" + name] = values }
        try blob.write(to: path)
    }

    /// Reads a state and checks it continues a run with `fingerprint` over `parameters`' shapes.
    ///
    /// - Throws: `GraftError` naming the file when it is unreadable or belongs to another run.
    static func read(_ path: String, fingerprint: [String: String], like parameters: [Parameter]) throws -> TrainingState {
        let blob = try BlobFile<Meta>.read(path, kind: kind)
        let m = blob.meta
        for key in fingerprint.keys.sorted() where m.fingerprint[key] != fingerprint[key] {
            throw GraftError(.invalidArgument, "the saved run has \(key) \(m.fingerprint[key] ?? "unset"); this run has \(fingerprint[key]!): resume with the same settings and data",
                             file: path)
        }
        func load(_ prefix: String) throws -> [Parameter] {
            try parameters.map { p in
                guard let values = blob.floats[prefix + p.name], values.count == p.values.count else {
                    throw GraftError(.badInput, "the saved state lacks \(p.name) of shape \(p.shape)", file: path)
                }
                return Parameter(name: p.name, shape: p.shape, values: values)
            }
        }
        // Each optimizer buffer is updated in step with its parameter: it must be as long.
        let counts = Dictionary(parameters.map { ($0.name, $0.values.count) }, uniquingKeysWith: { a, _ in a })
        var buffers: [String: [Float]] = [:]
        for (name, values) in blob.floats where name.hasPrefix("optimizer/") {
            let key = String(name.dropFirst(10))
            let owner = [".exp_avg_sq", ".exp_avg", ".momentum_buffer"].first { key.hasSuffix($0) }.map { String(key.dropLast($0.count)) }
            guard let owner, counts[owner] == values.count else {
                throw GraftError(.badInput, "the saved optimizer state '\(key)' of \(values.count) values fits no parameter of the head", file: path)
            }
            buffers[key] = values
        }
        return TrainingState(meta: m, parameters: try load("parameter/"), bestParameters: try load("best/"),
                             optimizer: OptimizerState(kind: m.optimizerKind, settings: m.optimizerSettings,
                                                       step: m.optimizerStep, buffers: buffers))
    }
}
