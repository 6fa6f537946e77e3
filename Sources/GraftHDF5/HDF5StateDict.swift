import GraftCore

/// The datasets of a file by name: for a PyTorch state_dict as h5py writes it, one dataset per
/// key, flat at the root (`layer1.0.conv1.weight`) or in nested groups (`layer1/0/conv1/weight`),
/// keyed here by the dotted name; for a file Graft wrote, by their path.
struct HDF5StateDict {
    struct Entry {
        let dataset: HDF5Dataset
        let shape: [Int]
        let type: HDF5ElementType
    }

    private(set) var entries: [String: Entry] = [:]

    var keys: Set<String> { Set(entries.keys) }

    /// The state_dict under `root`. `num_batches_tracked` counters are left out (inference does
    /// not read them), and a `module.` prefix on every key (a model saved from `nn.DataParallel`)
    /// is dropped.
    init(root: HDF5Group) throws {
        for (path, dataset) in try root.datasets() {
            let key = path.replacingOccurrences(of: "/", with: ".")
            if key == "num_batches_tracked" || key.hasSuffix(".num_batches_tracked") { continue }
            guard entries[key] == nil else {
                throw GraftError(.badInput, "dataset '\(dataset.path)' repeats the key '\(key)' of another dataset")
            }
            entries[key] = try Entry(dataset)
        }
        let prefix = "module."
        if !entries.isEmpty, entries.keys.allSatisfy({ $0.hasPrefix(prefix) }) {
            entries = Dictionary(uniqueKeysWithValues: entries.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
        }
    }

    /// Every dataset under `root` by its path, as Graft's own layout names them.
    init(datasetsOf root: HDF5Group) throws {
        for (path, dataset) in try root.datasets() { entries[path] = try Entry(dataset) }
    }

    /// The entry of `key`, checked to hold floating-point values.
    func weight(_ key: String) throws -> Entry {
        guard let entry = entries[key] else {
            throw GraftError(.internal, "state_dict key '\(key)' was checked but is missing")
        }
        guard case .float = entry.type else {
            throw GraftError(.badInput, "dataset '\(entry.dataset.path)' holds \(entry.type); weights must be float16, float32 or float64")
        }
        return entry
    }

    /// The dataset of `key` as float32, checking that it holds floating-point values of `shape`.
    func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        let entry = try weight(key)
        guard entry.shape == shape else {
            throw GraftError(.badInput, "dataset '\(entry.dataset.path)' has shape \(entry.shape), expected \(shape)")
        }
        return try entry.dataset.read(as: .float32, shape: shape)
    }
}

extension HDF5StateDict.Entry {
    init(_ dataset: HDF5Dataset) throws {
        self.init(dataset: dataset, shape: try dataset.shape(), type: try dataset.elementType())
    }
}
