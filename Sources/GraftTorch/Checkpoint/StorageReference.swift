/// A storage as a persistent id names it: a zip entry `data/<key>` or a legacy storage record.
struct StorageReference {
    var key: String
    var type: TorchStorageType
    /// The storage's element count as the persistent id declares it.
    var count: Int
    /// Where a legacy storage view starts in its root storage (0 otherwise).
    var viewOffset: Int = 0
}
