import GraftCore

/// Recovers each node's PyTorch module from what the exporters record: Graft's own
/// `graft.module_path` / `graft.module_classes` metadata (written by `ONNXExporter`), the dynamo
/// exporter's `pkg.torch.onnx.name_scopes` / `class_hierarchy` metadata, the TorchScript
/// exporter's node names (`/layer1/layer1.0/conv1/Conv`), or a state_dict-style weight name (`fc.weight`).
enum ModuleScopes {
    /// Node metadata key of the module path Graft writes (`layer1.0.conv1`, empty for the root).
    static let pathKey = "graft.module_path"
    /// Node metadata key of the module classes, root first, as a Python list repr.
    static let classesKey = "graft.module_classes"

    /// Whether a node's scope comes from its TorchScript name (no module metadata recorded).
    static func scopeIsFromName(_ nodeName: String, metadata: [String: String]) -> Bool {
        nodeName.hasPrefix("/") && metadata[pathKey] == nil && metadata["pkg.torch.onnx.name_scopes"] == nil
    }

    static func scope(nodeName: String, metadata: [String: String], weightName: String?, op: Op) -> ModuleScope? {
        // A model Graft wrote carries the scope as it was first recovered; trust it over the rest.
        if let path = metadata[pathKey] {
            return ModuleScope(path: path, classNames: metadata[classesKey].flatMap(pythonStrings) ?? [])
        }
        if let raw = metadata["pkg.torch.onnx.name_scopes"], let scopes = pythonStrings(raw), scopes.count >= 2 {
            let classes = metadata["pkg.torch.onnx.class_hierarchy"].flatMap(pythonStrings) ?? []
            // The last entry is the aten op; the one before it is the innermost module.
            let path = scopes[scopes.count - 2]
            let levels = classes.count == scopes.count ? Array(classes.dropLast()) : []
            // Exporter rewrites (batch-norm fused into conv) keep the metadata of the node they
            // removed; a weight named after its module tells the truth.
            if let module = weightModule(weightName, op: op), module != path {
                let parent = module.split(separator: ".").dropLast().joined(separator: ".")
                let depth = parent.isEmpty ? 1 : parent.split(separator: ".").count + 1
                let prefixOK = levels.count >= depth && (parent.isEmpty || path.hasPrefix(parent + "."))
                return ModuleScope(path: module, classNames: prefixOK ? Array(levels.prefix(depth)) : [])
            }
            return ModuleScope(path: path, classNames: levels)
        }
        if nodeName.hasPrefix("/") {
            var components = nodeName.split(separator: "/").map(String.init)
            if !components.isEmpty { components.removeLast() }
            var locals: [String] = []
            var previous: String?
            for c in components {
                if let p = previous, c.hasPrefix(p + ".") {
                    locals.append(String(c.dropFirst(p.count + 1)))
                } else {
                    locals.append(c)
                }
                previous = c
            }
            return ModuleScope(path: locals.joined(separator: "."))
        }
        if let module = weightModule(weightName, op: op) {
            return ModuleScope(path: module)
        }
        return nil
    }

    /// `layer1.0.conv1` for a weight named `layer1.0.conv1.weight` of a Conv or Gemm.
    private static func weightModule(_ weightName: String?, op: Op) -> String? {
        guard let weightName, weightName.hasSuffix(".weight") else { return nil }
        switch op {
        case .conv, .gemm, .batchNorm: return String(weightName.dropLast(".weight".count))
        default: return nil
        }
    }

    /// Folds TorchScript's repeated-call scopes (`layer1.0.relu_1`, the second call of
    /// `layer1.0.relu`) into the module they call, when that module exists.
    /// Only the nodes at `indices` (those whose scope came from a TorchScript node name) are folded.
    static func foldRepeatedCalls(_ nodes: inout [Node], at indices: Set<Int>) {
        let paths = Set(nodes.compactMap { $0.scope?.path })
        for i in nodes.indices where indices.contains(i) {
            guard let scope = nodes[i].scope, let underscore = scope.path.lastIndex(of: "_") else { continue }
            let suffix = scope.path[scope.path.index(after: underscore)...]
            guard !suffix.isEmpty, suffix.allSatisfy(\.isNumber) else { continue }
            let base = String(scope.path[..<underscore])
            if paths.contains(base) { nodes[i].scope?.path = base }
        }
    }

    /// Parses a Python list of strings as `repr` writes it: `['', 'layer1', "it's"]`.
    static func pythonStrings(_ text: String) -> [String]? {
        var out: [String] = []
        var chars = Array(text.trimmingCharacters(in: .whitespaces))
        guard chars.first == "[", chars.last == "]" else { return nil }
        chars = Array(chars.dropFirst().dropLast())
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == " " || c == "," { i += 1; continue }
            guard c == "'" || c == "\"" else { return nil }
            var value = ""
            i += 1
            while i < chars.count && chars[i] != c {
                if chars[i] == "\\" && i + 1 < chars.count { i += 1 }
                value.append(chars[i])
                i += 1
            }
            guard i < chars.count else { return nil }
            out.append(value)
            i += 1
        }
        return out
    }
}

import Foundation
