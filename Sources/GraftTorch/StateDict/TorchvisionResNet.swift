import Foundation
import GraftCore

/// A torchvision ResNet as its state_dict describes it: `torchvision.models.resnet.ResNet` with
/// BasicBlock (ResNet-18/34) or Bottleneck blocks (ResNet-50/101/152, wide ResNet, ResNeXt), four
/// stages whose first block strides by 2 from the second stage on (on the 3×3 convolution, as in
/// torchvision's "v1.5"), and a classifier `fc` that is one Linear or a Sequential of Linear
/// layers with ReLU between them.
///
/// Everything else is read from the names and shapes: the number of blocks per stage, the
/// widths, the groups of the 3×3 convolutions, the number of classes.
public struct TorchvisionResNet: Sendable {
    public enum BlockKind: Sendable {
        case basic, bottleneck

        var name: String { self == .basic ? "BasicBlock" : "Bottleneck" }
    }

    public struct Block: Sendable {
        /// `layer1.0`.
        public let module: String
        public let inChannels: Int
        /// The channels inside a Bottleneck (`width` in torchvision); a BasicBlock's output.
        public let width: Int
        public let outChannels: Int
        public let stride: Int
        public let groups: Int
        public let downsample: Bool
    }

    public struct Linear: Sendable {
        /// `fc` or `fc.4`.
        public let module: String
        /// The position in the Sequential head; nil for a plain `fc`.
        public let index: Int?
        public let inFeatures: Int
        public let outFeatures: Int
    }

    public static let stageCount = 4

    public var inputChannels: Int
    public var stemWidth: Int
    public var kind: BlockKind
    public var stages: [[Block]]
    public var head: [Linear]

    /// `ResNet (Bottleneck [3, 4, 6, 3])`.
    public var description: String {
        "torchvision ResNet (\(kind.name) \(stages.map(\.count)))"
    }

    /// Every state_dict key the model has, with its shape, in the order `state_dict()` lists
    /// them (without `num_batches_tracked`).
    public var parameters: [(key: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        func batchNorm(_ module: String, _ channels: Int) {
            for name in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(module).\(name)", [channels])) }
        }
        out.append(("conv1.weight", [stemWidth, inputChannels, 7, 7]))
        batchNorm("bn1", stemWidth)
        for block in stages.joined() {
            let p = block.module
            switch kind {
            case .basic:
                out.append(("\(p).conv1.weight", [block.outChannels, block.inChannels, 3, 3]))
                batchNorm("\(p).bn1", block.outChannels)
                out.append(("\(p).conv2.weight", [block.outChannels, block.outChannels, 3, 3]))
                batchNorm("\(p).bn2", block.outChannels)
            case .bottleneck:
                out.append(("\(p).conv1.weight", [block.width, block.inChannels, 1, 1]))
                batchNorm("\(p).bn1", block.width)
                out.append(("\(p).conv2.weight", [block.width, block.width / block.groups, 3, 3]))
                batchNorm("\(p).bn2", block.width)
                out.append(("\(p).conv3.weight", [block.outChannels, block.width, 1, 1]))
                batchNorm("\(p).bn3", block.outChannels)
            }
            if block.downsample {
                out.append(("\(p).downsample.0.weight", [block.outChannels, block.inChannels, 1, 1]))
                batchNorm("\(p).downsample.1", block.outChannels)
            }
        }
        for linear in head {
            out.append(("\(linear.module).weight", [linear.outFeatures, linear.inFeatures]))
            out.append(("\(linear.module).bias", [linear.outFeatures]))
        }
        return out
    }
}

// MARK: - Reading the architecture from a state_dict

extension TorchvisionResNet {
    /// The architecture whose state_dict has exactly these keys and shapes.
    ///
    /// - Parameter datasets: the dataset path of each key, for errors (the key itself when absent).
    /// - Throws: `GraftError` listing the missing, unexpected and wrongly shaped keys, or naming
    ///   the dataset whose rank does not fit, or saying that the keys do not name a ResNet.
    public static func infer(from shapes: [String: [Int]], datasets: [String: String] = [:]) throws -> TorchvisionResNet {
        let keys = Set(shapes.keys)
        guard keys.contains(where: { $0.hasPrefix("conv1.") || $0.hasPrefix("layer") }) else {
            throw GraftError(.badInput, "unknown layout: the state_dict keys do not name a torchvision ResNet (no conv1.weight, no layer1.*); found \(list(keys.sorted()))")
        }
        let skeleton = Skeleton(keys: keys)
        // First the names alone: without them the shapes cannot be read.
        let expectedNames = Set(skeleton.keyNames)
        try checkNames(expected: expectedNames, present: keys, skeleton: skeleton)

        let reader = ShapeReader(shapes: shapes, datasets: datasets)
        let stem = try reader.dims("conv1.weight", rank: 4, role: "a convolution weight")
        var inChannels = stem[0]
        var stages: [[Block]] = []
        for (stageIndex, blockCount) in skeleton.blocksPerStage.enumerated() {
            var blocks: [Block] = []
            for b in 0..<blockCount {
                let module = "layer\(stageIndex + 1).\(b)"
                let stride = stageIndex > 0 && b == 0 ? 2 : 1
                let width = try reader.dims("\(module).conv1.weight", rank: 4, role: "a convolution weight")[0]
                var out = width, groups = 1
                if skeleton.kind == .bottleneck {
                    out = try reader.dims("\(module).conv3.weight", rank: 4, role: "a convolution weight")[0]
                    let perGroup = try reader.dims("\(module).conv2.weight", rank: 4, role: "a convolution weight")[1]
                    if perGroup > 0, width % perGroup == 0 { groups = width / perGroup }
                }
                blocks.append(Block(module: module, inChannels: inChannels, width: width, outChannels: out, stride: stride,
                                    groups: groups, downsample: stride != 1 || inChannels != out))
                inChannels = out
            }
            stages.append(blocks)
        }
        var head: [Linear] = []
        for (module, index) in skeleton.headModules {
            let out = try reader.dims("\(module).weight", rank: 2, role: "a Linear weight")[0]
            head.append(Linear(module: module, index: index, inFeatures: inChannels, outFeatures: out))
            inChannels = out
        }
        let model = TorchvisionResNet(inputChannels: stem[1], stemWidth: stem[0], kind: skeleton.kind, stages: stages, head: head)
        // torchvision gives a block a downsample exactly when it changes the stride or the width.
        let modelNames = Set(model.parameters.map(\.key))
        try checkNames(expected: modelNames, present: keys, skeleton: skeleton)
        let wrong = model.parameters.filter { shapes[$0.key] != $0.shape }
            .map { "\($0.key) \(shapes[$0.key]!) (expected \($0.shape))" }
        if !wrong.isEmpty {
            throw GraftError(.badInput, "the state_dict does not fit a \(model.description): wrong shape \(list(wrong))")
        }
        return model
    }

    private static func checkNames(expected: Set<String>, present: Set<String>, skeleton: Skeleton) throws {
        let missing = expected.subtracting(present).sorted(by: stateDictOrder)
        let extra = present.subtracting(expected).sorted(by: stateDictOrder)
        guard missing.isEmpty && extra.isEmpty else {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(list(missing))") }
            if !extra.isEmpty { parts.append("unexpected \(list(extra))") }
            throw GraftError(.badInput, "the state_dict does not match a \(skeleton.description): " + parts.joined(separator: "; "))
        }
    }

    /// Up to 12 names, then how many more.
    public static func list(_ names: [String]) -> String {
        let shown = names.prefix(12).joined(separator: ", ")
        return names.count > 12 ? "\(shown) and \(names.count - 12) more" : shown
    }

    /// Orders keys with their numbers compared as numbers (`layer1.2` before `layer1.10`).
    private static func stateDictOrder(_ a: String, _ b: String) -> Bool {
        a.compare(b, options: .numeric) == .orderedAscending
    }
}

/// The module structure the key names alone tell: block kind, blocks per stage, head layers.
private struct Skeleton {
    var kind: TorchvisionResNet.BlockKind
    var blocksPerStage: [Int]
    /// `[("fc", nil)]` or `[("fc.1", 1), ("fc.4", 4), ...]`.
    var headModules: [(String, Int?)]
    /// The blocks whose keys include a downsample, which fixes their names before the shapes are read.
    var downsampled: Set<String>

    init(keys: Set<String>) {
        kind = keys.contains { $0.hasPrefix("layer") && $0.contains(".conv3.") } ? .bottleneck : .basic
        var blocks = [Int](repeating: 1, count: TorchvisionResNet.stageCount)
        var downsampled = Set<String>()
        var headIndices = Set<Int>()
        for key in keys {
            let parts = key.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count >= 3, parts[0].hasPrefix("layer"), let stage = Int(parts[0].dropFirst(5)),
               (1...TorchvisionResNet.stageCount).contains(stage), let block = Int(parts[1]), block >= 0, block < 10_000 {
                blocks[stage - 1] = max(blocks[stage - 1], block + 1)
                if parts[2] == "downsample" { downsampled.insert("layer\(stage).\(block)") }
            }
            if parts.count == 3, parts[0] == "fc", let index = Int(parts[1]), index >= 0 { headIndices.insert(index) }
        }
        blocksPerStage = blocks
        self.downsampled = downsampled
        if keys.contains("fc.weight") || keys.contains("fc.bias") || headIndices.isEmpty {
            headModules = [("fc", nil)]
        } else {
            headModules = headIndices.sorted().map { ("fc.\($0)", $0) }
        }
    }

    var description: String { "torchvision ResNet (\(kind.name) \(blocksPerStage))" }

    /// The keys of this structure, with a downsample where the file has one.
    var keyNames: [String] {
        let placeholder = TorchvisionResNet(
            inputChannels: 0, stemWidth: 0, kind: kind,
            stages: blocksPerStage.enumerated().map { stage, count in
                (0..<count).map { b in
                    let module = "layer\(stage + 1).\(b)"
                    return .init(module: module, inChannels: 0, width: 0, outChannels: 0, stride: 1, groups: 1,
                                 downsample: downsampled.contains(module))
                }
            },
            head: headModules.map { .init(module: $0.0, index: $0.1, inFeatures: 0, outFeatures: 0) })
        return placeholder.parameters.map(\.key)
    }
}

/// Reads the dimensions the architecture is inferred from, refusing a dataset of the wrong rank.
private struct ShapeReader {
    let shapes: [String: [Int]]
    let datasets: [String: String]

    func dims(_ key: String, rank: Int, role: String) throws -> [Int] {
        guard let shape = shapes[key] else {
            throw GraftError(.internal, "state_dict key '\(key)' was checked but is missing")
        }
        guard shape.count == rank else {
            throw GraftError(.badInput, "dataset '\(datasets[key] ?? key)' has shape \(shape) (rank \(shape.count)); \(role) has rank \(rank)")
        }
        return shape
    }
}
