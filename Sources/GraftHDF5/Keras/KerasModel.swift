import Foundation
import GraftCore
import GraftTorch

/// A Keras functional model saved with `model.save("model.h5")` (the legacy HDF5 format of
/// Keras 2 and 3): the `model_config` JSON attribute says the layers and how they connect, the
/// `model_weights/<layer>` groups hold each layer's weights, listed by its `weight_names`.
///
/// Layers become Graft nodes in NCHW order: the input is `[batch, C, H, W]`, convolution kernels
/// `[kh, kw, cin, cout]` become `[cout, cin, kh, kw]`, Dense kernels `[in, out]` become
/// `[out, in]` (Gemm with transB). Nodes are named `/<layer>/<Op>` with the layer as scope, and
/// constants `<layer>.weight`, `.bias`, `.running_mean`, `.running_var` (batch norm's gamma,
/// beta, moving mean and variance), as PyTorch would name them.
struct KerasModel {
    static let configAttribute = "model_config"
    static let weightsGroup = "model_weights"
    /// The root attribute of a Keras weights-only file (`save_weights`), which has no config.
    static let layerNamesAttribute = "layer_names"

    struct Layer {
        let name: String
        let className: String
        let config: KerasConfig
        /// The layers whose outputs this layer reads, in order.
        let inputs: [String]
    }

    let layers: [Layer]
    let inputLayer: String
    let outputLayer: String
    let weights: KerasWeights

    init(root: HDF5Group) throws {
        guard root.hasAttribute(Self.configAttribute) else {
            throw GraftError(.badInput, "a Keras weights-only file (no '\(Self.configAttribute)' attribute): save the whole model with model.save(\"model.h5\")")
        }
        let text = try root.stringAttribute(Self.configAttribute)
        guard let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw GraftError(.badInput, "attribute '\(Self.configAttribute)' is not a JSON object")
        }
        let model = KerasConfig(json, owner: "model_config")
        let className = try model.string("class_name")
        guard className == "Functional" || className == "Model" else {
            throw GraftError(.badInput, "Keras model class \(className) is not supported (only functional models, as keras.applications builds them)")
        }
        let config = try model.object("config")
        var layers: [Layer] = []
        for entry in try config.objects("layers") {
            let name = try entry.string("name", fallback: { try $0.object("config").string("name") })
            let layerConfig = KerasConfig(try entry.object("config").values, owner: "layer '\(name)'")
            layers.append(Layer(name: name, className: try entry.string("class_name"), config: layerConfig,
                                inputs: try Self.inboundLayers(entry.value("inbound_nodes"), layer: name)))
        }
        self.layers = layers
        inputLayer = try Self.single(config.value("input_layers"), "input_layers")
        outputLayer = try Self.single(config.value("output_layers"), "output_layers")
        guard root.hasMember(Self.weightsGroup) else {
            throw GraftError(.badInput, "the Keras model has no '\(Self.weightsGroup)' group")
        }
        weights = try KerasWeights(group: try root.group(Self.weightsGroup))
    }

    /// The layer names a layer reads. Keras 3 writes `[{"args": [tensor or [tensors]], ...}]`
    /// with `keras_history: [layer, node, index]` in each tensor; Keras 2 writes
    /// `[[[layer, node, index, kwargs], ...]]`.
    private static func inboundLayers(_ value: Any?, layer: String) throws -> [String] {
        guard let nodes = value as? [Any], !nodes.isEmpty else { return [] }
        guard nodes.count == 1 else {
            throw GraftError(.badInput, "Keras layer '\(layer)' is called \(nodes.count) times; shared layers are not supported")
        }
        var histories: [[Any]] = []
        func collect(_ v: Any) {
            if let d = v as? [String: Any] {
                if let config = d["config"] as? [String: Any], let history = config["keras_history"] as? [Any] {
                    histories.append(history)
                } else if let args = d["args"] {
                    collect(args)
                }
            } else if let list = v as? [Any] {
                if list.count >= 3, list[0] is String, (list[1] as? Int) != nil { histories.append(list) } else { list.forEach(collect) }
            }
        }
        collect(nodes[0])
        return try histories.map { history in
            guard history.count >= 3, let name = history[0] as? String, let node = history[1] as? Int, let index = history[2] as? Int else {
                throw GraftError(.badInput, "Keras layer '\(layer)' has an inbound node Graft cannot read")
            }
            guard node == 0, index == 0 else {
                throw GraftError(.badInput, "Keras layer '\(layer)' reads output \(index) of call \(node) of '\(name)'; only single-output, single-call layers are supported")
            }
            return name
        }
    }

    /// `["predictions", 0, 0]` or `[["predictions", 0, 0]]`: the one layer named.
    private static func single(_ value: Any?, _ key: String) throws -> String {
        var v = value
        if let list = v as? [Any], list.count == 1 { v = list[0] }
        guard let entry = v as? [Any], entry.count >= 1, let name = entry[0] as? String else {
            throw GraftError(.badInput, "model_config '\(key)' must name exactly one layer (models with several inputs or outputs are not supported)")
        }
        return name
    }

    /// The graph of the model, its weights converted to Graft's layout.
    func graph(name: String) throws -> Graph {
        var build = KerasBuild(weights: weights)
        for layer in layers {
            do {
                try build.add(layer, isInput: layer.name == inputLayer)
            } catch let error as GraftError {
                var e = error
                if !e.message.contains("'\(layer.name)'") { e.message = "Keras layer '\(layer.name)' (\(layer.className)): \(e.message)" }
                throw e
            }
        }
        guard let output = build.values[outputLayer] else {
            throw GraftError(.badInput, "output layer '\(outputLayer)' is not among the model's layers")
        }
        guard !build.builder.nodes.isEmpty, build.builder.nodes.last!.outputs == [output.name] else {
            throw GraftError(.badInput, "the output layer '\(outputLayer)' is not the last layer of the model")
        }
        try weights.checkAllUsed(build.usedWeights)
        var graph = Graph(name: name)
        for (key, tensor) in build.constants { graph.setConstant(key, tensor) }
        build.builder.nameLastOutput("output")
        graph.nodes = build.builder.nodes
        guard let input = build.input else { throw GraftError(.badInput, "the Keras model has no InputLayer") }
        graph.inputs = [input]
        guard let shape = try graph.inferShapes()["output"]?.shape else {
            throw GraftError(.internal, "the shape of the Keras model's output is not known")
        }
        graph.outputs = [ValueInfo(name: "output", dtype: .float32, shape: shape)]
        return graph
    }
}

/// The weights of each layer, by role (`kernel`, `bias`, `gamma`, ...): the last part of each of
/// the layer's `weight_names`, without a `:0` suffix (`conv1_conv/kernel:0` → `kernel`).
struct KerasWeights {
    private let layers: [String: [String: HDF5Dataset]]

    init(group: HDF5Group) throws {
        var layers: [String: [String: HDF5Dataset]] = [:]
        for layer in try group.memberNames() {
            guard case .group(let layerGroup) = try group.member(layer), layerGroup.hasAttribute("weight_names") else { continue }
            var roles: [String: HDF5Dataset] = [:]
            for weightName in try layerGroup.stringsAttribute("weight_names") {
                var role = String(weightName.split(separator: "/").last ?? "")
                if let colon = role.lastIndex(of: ":") { role = String(role[..<colon]) }
                roles[role] = try layerGroup.dataset(weightName)
            }
            layers[layer] = roles
        }
        self.layers = layers
    }

    func roles(of layer: String) -> [String: HDF5Dataset] { layers[layer] ?? [:] }

    /// Refuses a file with weights no layer of the model read.
    func checkAllUsed(_ used: [String: Set<String>]) throws {
        for (layer, roles) in layers.sorted(by: { $0.key < $1.key }) {
            let unused = roles.keys.filter { !(used[layer]?.contains($0) ?? false) }.sorted()
            if !unused.isEmpty {
                throw GraftError(.badInput, "weights \(unused.joined(separator: ", ")) of Keras layer '\(layer)' are not used by the model")
            }
        }
    }
}

/// Typed access to a Keras JSON config, with errors naming its owner.
struct KerasConfig {
    let values: [String: Any]
    let owner: String

    init(_ values: [String: Any], owner: String) {
        self.values = values
        self.owner = owner
    }

    func value(_ key: String) -> Any? {
        let v = values[key]
        return v is NSNull ? nil : v
    }

    private func wrong(_ key: String, _ expected: String) -> GraftError {
        GraftError(.badInput, "\(owner): '\(key)' is \(values[key].map { "\($0)" } ?? "missing"), expected \(expected)")
    }

    func string(_ key: String, fallback: ((KerasConfig) throws -> String)? = nil) throws -> String {
        if let s = value(key) as? String { return s }
        if let fallback { return try fallback(self) }
        throw wrong(key, "a string")
    }

    func string(_ key: String, default d: String) throws -> String {
        guard value(key) != nil else { return d }
        return try string(key)
    }

    func object(_ key: String) throws -> KerasConfig {
        guard let d = value(key) as? [String: Any] else { throw wrong(key, "an object") }
        return KerasConfig(d, owner: owner)
    }

    func objects(_ key: String) throws -> [KerasConfig] {
        guard let list = value(key) as? [Any] else { throw wrong(key, "a list") }
        return try list.map { item in
            guard let d = item as? [String: Any] else { throw wrong(key, "a list of objects") }
            return KerasConfig(d, owner: owner)
        }
    }

    func int(_ key: String, default d: Int? = nil) throws -> Int {
        if let v = value(key) as? Int { return v }
        if value(key) == nil, let d { return d }
        throw wrong(key, "an integer")
    }

    func double(_ key: String, default d: Double) throws -> Double {
        guard let v = value(key) else { return d }
        if let x = v as? Double { return x }
        throw wrong(key, "a number")
    }

    func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = value(key) else { return d }
        if let b = v as? Bool { return b }
        throw wrong(key, "true or false")
    }

    /// A pair such as `kernel_size`, written as one integer or a list of two.
    func pair(_ key: String, default d: [Int]? = nil) throws -> [Int] {
        if let v = value(key) as? Int { return [v, v] }
        if let list = value(key) as? [Any], list.count == 2, let a = list[0] as? Int, let b = list[1] as? Int { return [a, b] }
        if value(key) == nil, let d { return d }
        throw wrong(key, "an integer or a list of two")
    }

    /// Keras layers here work on `channels_last` data only.
    func requireChannelsLast() throws {
        let format = try string("data_format", default: "channels_last")
        guard format == "channels_last" else { throw wrong("data_format", "channels_last") }
    }
}
