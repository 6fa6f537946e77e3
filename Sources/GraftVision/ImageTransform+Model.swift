import GraftCore

extension ImageTransform {
    /// torchvision's evaluation transform scaled to the model's input: a model taking 224×224
    /// gets Resize(256) + CenterCrop(224); one taking 64×64 gets Resize(73) + CenterCrop(64).
    public static func matching(_ graph: Graph) -> ImageTransform {
        guard let dims = graph.inputs.first?.shape.dims, dims.count == 4, let h = dims[2].value, dims[3].value == h, h != 224 else {
            return ImageTransform()
        }
        return ImageTransform(resize: Int((Double(h) * 256 / 224).rounded()), crop: h)
    }
}
