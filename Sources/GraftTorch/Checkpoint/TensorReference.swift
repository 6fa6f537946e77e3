/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes it: a strided
/// view of a storage, not yet checked against the storage's size.
struct TensorReference {
    var storage: StorageReference
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}
