import GraftCore
extension ModelSummary {
    /// The module tree as `print(model)` prints it in PyTorch: `ResNet(\n  (conv1): Conv2d(3, 64, ...)\n ...)`.
    ///
    /// `ReLU` prints `inplace=True` in a torchvision ResNet-family model (recognized by the
    /// recorded class names or the layout) and nothing otherwise: the graph does not record
    /// `inplace`, and torchvision builds those ReLUs in place. Modules the graph never ran do not
    /// appear, and what the export folded (batch norm into convolution) shows as the graph has it.
    public func renderTorch() -> String {
        repr(ModuleTree.root)
    }

    /// `nn.Module.__repr__`: the extra repr and one `(name): repr` line per child, indented by two.
    private func repr(_ m: Int) -> String {
        let module = tree.modules[m]
        let extraLines = module.extraRepr.isEmpty ? [] : module.extraRepr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let childLines = module.children.map { child in
            let nested = repr(child).split(separator: "\n", omittingEmptySubsequences: false)
            let indented = [String(nested[0])] + nested.dropFirst().map { $0.isEmpty ? "" : "  " + $0 }
            return "(\(tree.modules[child].name)): " + indented.joined(separator: "\n")
        }
        let lines = extraLines + childLines
        var text = module.className + "("
        if extraLines.count == 1 && childLines.isEmpty {
            text += extraLines[0]
        } else if !lines.isEmpty {
            text += "\n  " + lines.joined(separator: "\n  ") + "\n"
        }
        return text + ")"
    }
}
