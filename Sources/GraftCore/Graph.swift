import Foundation

/// Where a graph came from, kept so that exporters can write it back.
public struct ModelMetadata: Sendable, Equatable {
    public var producerName: String
    public var producerVersion: String
    /// The default-domain ONNX opset the graph's op semantics follow.
    public var opset: Int
    public var irVersion: Int
    /// The ONNX version of other domains the source imported, kept for export.
    public var otherOpsets: [String: Int]
    public var properties: [String: String]

    public init(producerName: String = "graft", producerVersion: String = "", opset: Int = 17,
                irVersion: Int = 8, otherOpsets: [String: Int] = [:], properties: [String: String] = [:]) {
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.opset = opset
        self.irVersion = irVersion
        self.otherOpsets = otherOpsets
        self.properties = properties
    }
}

/// A dataflow graph: inputs, constants (weights), nodes in any order, outputs.
///
/// Every value is named once: by a graph input, a constant, or one node output. `Graph` is a
/// value type, so passes rewrite a copy.
public struct Graph: Sendable, Equatable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var nodes: [Node]
    /// Weights and other constant values by name.
    public var constants: [String: Tensor]
    /// Constant names in the order the source listed them (exporters keep it).
    public var constantOrder: [String]
    public var metadata: ModelMetadata

    public init(name: String = "graph", inputs: [ValueInfo] = [], outputs: [ValueInfo] = [],
                nodes: [Node] = [], constants: [String: Tensor] = [:], constantOrder: [String]? = nil,
                metadata: ModelMetadata = ModelMetadata()) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.constants = constants
        self.constantOrder = constantOrder ?? constants.keys.sorted()
        self.metadata = metadata
    }

    /// Adds or replaces a constant.
    public mutating func setConstant(_ name: String, _ tensor: Tensor) {
        if constants.updateValue(tensor, forKey: name) == nil { constantOrder.append(name) }
    }

    /// Removes constants that no node and no output reads.
    public mutating func removeUnusedConstants() {
        var used = Set(outputs.map(\.name))
        for node in nodes { used.formUnion(node.inputs) }
        constants = constants.filter { used.contains($0.key) }
        constantOrder = constantOrder.filter { constants[$0] != nil }
    }

    /// Node indices in an order where every node comes after the producers of its inputs.
    ///
    /// - Throws: `GraftError` naming the node and the value when a value is produced twice (by two
    ///   nodes, or by a node and a graph input or constant), when an input is produced by
    ///   nothing, or naming a node on a cycle.
    public func topologicalOrder() throws -> [Int] {
        var producer: [String: Int] = [:]
        producer.reserveCapacity(nodes.count * 2)
        let graphInputs = Set(inputs.map(\.name))
        for (i, node) in nodes.enumerated() {
            for output in node.outputs where !output.isEmpty {
                if let first = producer.updateValue(i, forKey: output) {
                    throw GraftError(.badInput, "the output is already produced by node '\(nodes[first].name)'",
                                     node: node.name, op: node.op.name, tensor: output)
                }
                if constants[output] != nil {
                    throw GraftError(.badInput, "the output redefines the constant (initializer) of that name",
                                     node: node.name, op: node.op.name, tensor: output)
                }
                if graphInputs.contains(output) {
                    throw GraftError(.badInput, "the output redefines the graph input of that name",
                                     node: node.name, op: node.op.name, tensor: output)
                }
            }
        }
        var indegree = [Int](repeating: 0, count: nodes.count)
        var consumers = [[Int]](repeating: [], count: nodes.count)
        for (i, node) in nodes.enumerated() {
            for input in node.inputs where !input.isEmpty {
                if let p = producer[input] {
                    indegree[i] += 1
                    consumers[p].append(i)
                } else if constants[input] == nil && !graphInputs.contains(input) {
                    throw GraftError(.badInput, "the input is not produced by any node, graph input or constant",
                                     node: node.name, op: node.op.name, tensor: input)
                }
            }
        }
        // Kahn's algorithm, taking ready nodes in file order so the result is stable.
        var ready = (0..<nodes.count).filter { indegree[$0] == 0 }.reversed() as [Int]
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        while let i = ready.popLast() {
            order.append(i)
            for c in consumers[i].reversed() {
                indegree[c] -= 1
                if indegree[c] == 0 { ready.append(c) }
            }
        }
        if order.count < nodes.count {
            let stuck = nodes.indices.first { indegree[$0] > 0 }!
            throw GraftError(.badInput, "the graph has a cycle through this node", node: nodes[stuck].name,
                             op: nodes[stuck].op.name)
        }
        return order
    }

    /// The graph with its nodes sorted topologically.
    public func sorted() throws -> Graph {
        var copy = self
        copy.nodes = try topologicalOrder().map { nodes[$0] }
        return copy
    }

    /// The number of parameter elements: float constants read by nodes as weights, biases or
    /// batch-norm scale and shift. Batch-norm running statistics are buffers, as in PyTorch.
    public var parameterCount: Int {
        var counted = Set<String>()
        var total = 0
        for node in nodes {
            for index in node.op.parameterInputs where index < node.inputs.count {
                let name = node.inputs[index]
                guard let t = constants[name], t.dtype.isFloatingPoint, counted.insert(name).inserted else { continue }
                total += t.elementCount
            }
        }
        return total
    }
}

extension Op {
    /// The input positions that hold trainable parameters (weights and biases).
    public var parameterInputs: [Int] {
        switch self {
        case .conv, .gemm: return [1, 2]
        case .batchNorm: return [1, 2]
        case .matMul: return [1]
        default: return []
        }
    }
}

extension Graph {
    /// The metadata key naming the modules whose parameters are trained, as a JSON array of
    /// module paths (a grafted model's head: `["fc"]`).
    public static let trainableModulesKey = "graft.trainable_modules"

    /// The modules whose parameters are trained, the others frozen; nil when the graph does not
    /// say (every parameter counts as trainable, as in a fresh PyTorch model).
    public var trainableModules: [String]? {
        get { metadata.value([String].self, forKey: Graph.trainableModulesKey) }
        set { metadata.setValue(newValue, forKey: Graph.trainableModulesKey) }
    }
}

extension ModelMetadata {
    /// A value kept as JSON text under `key` among the properties (what the exporters write as
    /// ONNX `metadata_props`); nil when there is none or it does not decode as `T`.
    public func value<T: Decodable>(_ type: T.Type, forKey key: String) -> T? {
        properties[key].flatMap { try? JSONDecoder().decode(T.self, from: Data($0.utf8)) }
    }

    /// Keeps `value` as JSON text under `key` (keys sorted, slashes as they are); nil removes it.
    public mutating func setValue<T: Encodable>(_ value: T?, forKey key: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        properties[key] = value.flatMap { try? encoder.encode($0) }.map { String(decoding: $0, as: UTF8.self) }
    }
}
