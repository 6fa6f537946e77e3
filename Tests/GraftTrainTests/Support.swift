import GraftCore

/// A model that is only a classifier: `fc` (a `Gemm`) over `features` inputs, so the trunk is
/// the identity and its "features" are the model's input `x`.
func linearModel(features: Int, classes: Int) -> Graph {
    Graph(name: "features", inputs: [ValueInfo(name: "x", dtype: .float32, shape: Shape([.symbol("N"), .value(features)]))],
          outputs: [ValueInfo(name: "y", dtype: .float32, shape: Shape([.symbol("N"), .value(classes)]))],
          nodes: [Node(name: "fc", op: .gemm(GemmAttributes(transB: true)), inputs: ["x", "w", "b"], outputs: ["y"],
                       scope: ModuleScope(path: "fc"))],
          constants: ["w": Tensor(zeros: [classes, features]), "b": Tensor(zeros: [classes])])
}
