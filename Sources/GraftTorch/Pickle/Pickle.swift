/// The result of unpickling: the top-level value and the containers it refers to.
struct Pickle {
    var root: PickleValue
    var lists: [[PickleValue]]
    var dicts: [[(key: PickleValue, value: PickleValue)]]

    /// The items of a dict value, in insertion order; nil for any other value.
    func items(of value: PickleValue) -> [(key: PickleValue, value: PickleValue)]? {
        if case let .dict(number) = value { return dicts[number] }
        return nil
    }
}
