import GraftCore
import GraftTorch

/// Graft's own additions to the state_dict layout: the `graft_format_version` and
/// `graft_graph` root attributes, and the `graft_constants` group for constants whose names
/// HDF5 cannot hold at the root.
enum GraftLayout {
    static let versionAttribute = "graft_format_version"
    static let graphAttribute = "graft_graph"
    static let escapedGroup = "graft_constants"

    /// Where constant `name` is stored: at the root under its own name when HDF5 can hold it
    /// there (no `/`, not `.`, not one of Graft's names), else `graft_constants/<position>`.
    static func datasetPaths(_ graph: Graph) -> [String: String] {
        var paths: [String: String] = [:]
        for (i, name) in graph.constantOrder.enumerated() {
            let plain = !name.isEmpty && name != "." && !name.contains("/") && name != escapedGroup
            paths[name] = plain ? name : "\(escapedGroup)/\(i)"
        }
        return paths
    }

    /// The graph recorded in a file Graft wrote.
    static func read(_ root: HDF5Group) throws -> Graph {
        guard root.hasAttribute(versionAttribute) else {
            throw GraftError(.badInput, "attribute '\(graphAttribute)' is present but '\(versionAttribute)' is not")
        }
        let version = try root.integerAttribute(versionAttribute)
        guard version == GraphRecord.formatVersion else {
            throw GraftError(.badInput, "\(versionAttribute) is \(version) (a newer Graft wrote it?); this Graft reads version \(GraphRecord.formatVersion)")
        }
        guard root.hasAttribute(graphAttribute) else {
            throw GraftError(.badInput, "attribute '\(versionAttribute)' is present but '\(graphAttribute)' is not")
        }
        let record = try GraphRecord.decode(json: try root.stringAttribute(graphAttribute))
        let datasets = try HDF5StateDict(datasetsOf: root)
        let extra = datasets.keys.subtracting(record.constants.map(\.dataset)).sorted()
        guard extra.isEmpty else {
            throw GraftError(.badInput, "datasets not in the recorded graph: \(TorchvisionResNet.list(extra))")
        }
        return try record.graph { constant, dtype in
            guard let entry = datasets.entries[constant.dataset] else {
                throw GraftError(.badInput, "dataset '\(constant.dataset)' of constant '\(constant.name)' is missing")
            }
            guard entry.shape == constant.shape else {
                throw GraftError(.badInput, "dataset '\(entry.dataset.path)' has shape \(entry.shape); the recorded graph has \(constant.shape)")
            }
            let compatible: Bool
            switch entry.type {
            case .float: compatible = dtype.isFloatingPoint
            case .integer: compatible = !dtype.isFloatingPoint
            default: compatible = false
            }
            guard compatible else {
                throw GraftError(.badInput, "dataset '\(entry.dataset.path)' holds \(entry.type); the recorded graph has \(dtype)")
            }
            return try entry.dataset.read(as: dtype, shape: constant.shape)
        }
    }
}
