import GraftCore

/// A pickle reader that only builds values: the opcodes `torch.save` writes (protocols 0 to 5),
/// globals limited to `PickleGlobal`, and every structure bounded.
///
/// Nothing is executed, because nothing can be: REDUCE calls only the allowed PyTorch functions,
/// whose effect is to describe a tensor, and any other name is refused at the GLOBAL that names
/// it. The stack, the memo, how deep containers nest and how many values are made are bounded,
/// and no opcode recurses, so no file can drive the reader past a bound.
struct Unpickler {
    static let maxStack = 65_536
    /// Checkpoints nest containers under 10 levels; releasing a nested tuple recurses in Swift,
    /// and 200 levels of it fit any thread's stack.
    static let maxDepth = 200
    static let maxMemo = 1_000_000
    static let maxValues = 5_000_000

    /// What the error messages call the pickle (`archive/data.pkl`).
    let source: String

    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var lists: [[PickleValue]] = []
    private var listDepths: [Int] = []
    private var dicts: [[(key: PickleValue, value: PickleValue)]] = []
    private var dictDepths: [Int] = []
    private var values = 0

    /// A reason to refuse the pickle; `load` adds where it happened.
    struct Refusal: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    init(source: String) {
        self.source = source
    }

    /// Reads one pickle from the cursor up to its STOP, leaving the cursor after it.
    /// - Parameter persistentLoad: what a persistent id (BINPERSID) stands for; it throws
    ///   `Refusal` for an id it does not know.
    /// - Throws: `GraftError` (`.badInput`) naming the source, the opcode's byte and what is wrong.
    mutating func load(from cursor: inout ByteCursor,
                       persistentLoad: (PickleValue) throws -> PickleValue) throws -> Pickle {
        let start = cursor.position
        while true {
            let at = cursor.position - start
            do {
                let opcode = try cursor.uint8()
                if opcode == UInt8(ascii: ".") {
                    let root = try pop()
                    return Pickle(root: root, lists: lists, dicts: dicts)
                }
                try execute(opcode, &cursor, persistentLoad)
            } catch let refusal as Refusal {
                throw GraftError(.badInput, "\(source), byte \(at): \(refusal.message)")
            } catch is ByteCursor.EndOfData {
                throw GraftError(.badInput, "\(source), byte \(at): the pickle ends early")
            }
        }
    }

    // MARK: - Opcodes

    private mutating func execute(_ opcode: UInt8, _ cursor: inout ByteCursor,
                                  _ persistentLoad: (PickleValue) throws -> PickleValue) throws {
        switch opcode {
        case 0x80:   // PROTO
            let protocolVersion = try cursor.uint8()
            guard protocolVersion <= 5 else { throw Refusal("pickle protocol \(protocolVersion) is not read (at most 5)") }
        case 0x95:   // FRAME: a length hint only
            _ = try cursor.uint64()
        case UInt8(ascii: "("):   // MARK
            guard marks.count < Self.maxDepth else { throw Refusal("containers nest deeper than \(Self.maxDepth) levels") }
            marks.append(stack.count)
        case UInt8(ascii: "0"):   // POP
            _ = try pop()
        case UInt8(ascii: "1"):   // POP_MARK
            _ = try popToMark()

        // Scalars.
        case UInt8(ascii: "N"): try push(.none)
        case 0x88: try push(.bool(true))
        case 0x89: try push(.bool(false))
        case UInt8(ascii: "K"): try push(.int(Int(try cursor.uint8())))
        case UInt8(ascii: "M"): try push(.int(Int(try cursor.uint16())))
        case UInt8(ascii: "J"): try push(.int(Int(Int32(bitPattern: try cursor.uint32()))))
        case 0x8a: try push(try Self.long(try cursor.bytes(Int(try cursor.uint8()))))   // LONG1
        case 0x8b:   // LONG4
            let count = Int(Int32(bitPattern: try cursor.uint32()))
            guard count >= 0, count <= 32 else { throw Refusal("an integer of \(count) bytes (at most 32 are read)") }
            try push(try Self.long(try cursor.bytes(count)))
        case UInt8(ascii: "I"): try push(try Self.textInt(try Self.text(try cursor.line())))   // INT
        case UInt8(ascii: "L"): try push(try Self.textInt(try Self.text(try cursor.line()), long: true))   // LONG
        case UInt8(ascii: "G"):   // BINFLOAT, big-endian
            let raw = try cursor.bytes(8)
            try push(.float(Double(bitPattern: raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
        case UInt8(ascii: "F"):   // FLOAT
            let text = try Self.text(try cursor.line())
            guard let value = Double(text) else { throw Refusal("FLOAT '\(text)' is not a number") }
            try push(.float(value))
        case UInt8(ascii: "X"): try push(.string(try Self.text(try cursor.bytes(Int(try cursor.uint32())))))
        case 0x8c: try push(.string(try Self.text(try cursor.bytes(Int(try cursor.uint8())))))
        case 0x8d: try push(.string(try Self.text(try cursor.bytes(try Self.length(try cursor.uint64())))))
        case UInt8(ascii: "V"): try push(.string(try Self.text(try cursor.line(limit: 1 << 20))))   // UNICODE
        case UInt8(ascii: "B"): try push(.bytes(Array(try cursor.bytes(Int(try cursor.uint32())))))
        case UInt8(ascii: "C"): try push(.bytes(Array(try cursor.bytes(Int(try cursor.uint8())))))
        case 0x8e: try push(.bytes(Array(try cursor.bytes(try Self.length(try cursor.uint64())))))

        // Containers.
        case UInt8(ascii: ")"): try push(.tuple(PickleTuple(items: [], depth: 1)))
        case 0x85: try push(try tuple(try pop(1)))
        case 0x86: try push(try tuple(try pop(2)))
        case 0x87: try push(try tuple(try pop(3)))
        case UInt8(ascii: "t"): try push(try tuple(try popToMark()))
        case UInt8(ascii: "]"): try push(newList([]))
        case UInt8(ascii: "l"): try push(newList(try popToMark()))
        case UInt8(ascii: "}"): try push(newDict())
        case UInt8(ascii: "d"):   // DICT
            let items = try popToMark()
            let dict = newDict()
            try setItems(items, in: dict)
            try push(dict)
        case UInt8(ascii: "a"): try append([try pop()])
        case UInt8(ascii: "e"): try append(try popToMark())
        case UInt8(ascii: "s"): try setItems(try pop(2), in: try top())
        case UInt8(ascii: "u"):
            let items = try popToMark()
            try setItems(items, in: try top())

        // Memo.
        case UInt8(ascii: "q"): try put(Int(try cursor.uint8()))
        case UInt8(ascii: "r"): try put(Int(try cursor.uint32()))
        case 0x94: try put(memo.count)   // MEMOIZE
        case UInt8(ascii: "p"): try put(try Self.textIndex(try cursor.line()))
        case UInt8(ascii: "h"): try push(try get(Int(try cursor.uint8())))
        case UInt8(ascii: "j"): try push(try get(Int(try cursor.uint32())))
        case UInt8(ascii: "g"): try push(try get(try Self.textIndex(try cursor.line())))

        // Names, calls, persistent ids.
        case UInt8(ascii: "c"):   // GLOBAL
            let module = try Self.text(try cursor.line()), name = try Self.text(try cursor.line())
            try push(.global(try Self.global(module, name)))
        case 0x93:   // STACK_GLOBAL
            guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                throw Refusal("STACK_GLOBAL takes two strings")
            }
            try push(.global(try Self.global(module, name)))
        case UInt8(ascii: "R"), 0x81:   // REDUCE, NEWOBJ
            let arguments = try pop()
            guard case let .tuple(tuple) = arguments else { throw Refusal("calls with \(arguments.phrase) of arguments, not a tuple") }
            try push(try call(try pop(), tuple.items))
        case 0x92:   // NEWOBJ_EX
            let keywords = try pop(), arguments = try pop()
            guard case let .tuple(tuple) = arguments, let named = dictItems(keywords), named.isEmpty else {
                throw Refusal("NEWOBJ_EX takes a tuple of arguments and no keywords")
            }
            try push(try call(try pop(), tuple.items))
        case UInt8(ascii: "b"):   // BUILD: a state_dict's `_metadata`, a parameter's attributes
            let state = try pop()
            switch try top() {
            case .dict, .tensor: break
            case let object: throw Refusal("BUILD sets the state of \(object.phrase) (given \(state.phrase))")
            }
        case UInt8(ascii: "Q"): try push(try persistentLoad(try pop()))   // BINPERSID
        case UInt8(ascii: "P"): try push(try persistentLoad(.string(try Self.text(try cursor.line()))))   // PERSID
        default:
            throw Refusal("opcode 0x\(opcode < 0x10 ? "0" : "")\(String(opcode, radix: 16)) is not read")
        }
    }

    // MARK: - The stack

    private mutating func push(_ value: PickleValue) throws {
        guard stack.count < Self.maxStack else { throw Refusal("the stack grows past \(Self.maxStack) values") }
        values += 1
        guard values <= Self.maxValues else { throw Refusal("the pickle makes more than \(Self.maxValues) values") }
        stack.append(value)
    }

    private mutating func pop() throws -> PickleValue {
        guard stack.count > (marks.last ?? 0) else { throw Refusal("an opcode takes a value from an empty stack") }
        return stack.removeLast()
    }

    private mutating func pop(_ count: Int) throws -> [PickleValue] {
        guard stack.count - (marks.last ?? 0) >= count else { throw Refusal("an opcode takes a value from an empty stack") }
        defer { stack.removeLast(count) }
        return Array(stack.suffix(count))
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast() else { throw Refusal("an opcode looks for a MARK that is not there") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last, stack.count > (marks.last ?? 0) else {
            throw Refusal("an opcode takes a value from an empty stack")
        }
        return value
    }

    // MARK: - Containers

    private func depth(of value: PickleValue) -> Int {
        switch value {
        case let .tuple(tuple): return tuple.depth
        case let .list(number): return listDepths[number]
        case let .dict(number): return dictDepths[number]
        default: return 0
        }
    }

    /// The depth of a container holding `items` (one more than the deepest item), checked
    /// against the bound.
    private func depth(containing items: [PickleValue], atLeast current: Int = 1) throws -> Int {
        let nesting = items.reduce(current) { max($0, depth(of: $1) + 1) }
        guard nesting <= Self.maxDepth else { throw Refusal("containers nest deeper than \(Self.maxDepth) levels") }
        return nesting
    }

    private func tuple(_ items: [PickleValue]) throws -> PickleValue {
        .tuple(PickleTuple(items: items, depth: try depth(containing: items)))
    }

    private mutating func newList(_ items: [PickleValue]) throws -> PickleValue {
        lists.append(items)
        listDepths.append(try depth(containing: items))
        return .list(lists.count - 1)
    }

    private mutating func newDict() -> PickleValue {
        dicts.append([])
        dictDepths.append(1)
        return .dict(dicts.count - 1)
    }

    private func dictItems(_ value: PickleValue) -> [(key: PickleValue, value: PickleValue)]? {
        if case let .dict(number) = value { return dicts[number] }
        return nil
    }

    private mutating func append(_ items: [PickleValue]) throws {
        guard case let .list(number) = try top() else {
            throw Refusal("APPEND adds to \(try top().phrase), not a list")
        }
        listDepths[number] = try depth(containing: items, atLeast: listDepths[number])
        lists[number].append(contentsOf: items)
    }

    private mutating func setItems(_ items: [PickleValue], in target: PickleValue) throws {
        guard case let .dict(number) = target else { throw Refusal("SETITEM sets items of \(target.phrase), not a dict") }
        guard items.count % 2 == 0 else { throw Refusal("SETITEMS has a key without a value") }
        dictDepths[number] = try depth(containing: items, atLeast: dictDepths[number])
        for i in stride(from: 0, to: items.count, by: 2) {
            dicts[number].append((key: items[i], value: items[i + 1]))
        }
    }

    // MARK: - Memo

    private mutating func put(_ index: Int) throws {
        guard memo[index] != nil || memo.count < Self.maxMemo else {
            throw Refusal("the memo grows past \(Self.maxMemo) values")
        }
        memo[index] = try top()
    }

    private func get(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw Refusal("memo slot \(index) is read but was never written") }
        return value
    }

    // MARK: - Globals and calls

    private static func global(_ module: String, _ name: String) throws -> PickleGlobal {
        guard let global = PickleGlobal(module: module, name: name) else {
            if module == "torch", name.hasSuffix("Storage") {
                throw Refusal("tensors of 'torch.\(name)' are not read (only float, half, bfloat16, double, integer and bool ones)")
            }
            throw Refusal("refuses the global '\(module).\(name)': only tensors, containers and numbers are read")
        }
        return global
    }

    /// What an allowed function returns: the value it describes, built without running anything.
    private mutating func call(_ callee: PickleValue, _ arguments: [PickleValue]) throws -> PickleValue {
        guard case let .global(function) = callee else { throw Refusal("calls \(callee.phrase), which is not a function") }
        switch function {
        case .orderedDict where arguments.isEmpty:
            return newDict()
        case .rebuildTensor where arguments.count == 6 || arguments.count == 7:
            guard case let .storage(storage) = arguments[0], case let .int(offset) = arguments[1],
                  let shape = Self.ints(arguments[2]), let strides = Self.ints(arguments[3]) else { break }
            return .tensor(TensorReference(storage: storage, offset: offset, shape: shape, strides: strides))
        case .rebuildParameter where arguments.count == 3, .rebuildParameterWithState where arguments.count == 4:
            guard case .tensor = arguments[0] else { break }
            return arguments[0]
        case .size where arguments.count == 1:
            guard case .tuple = arguments[0] else { break }
            return arguments[0]
        case .device where arguments.count == 1 || arguments.count == 2:
            guard case .string = arguments[0] else { break }
            return arguments[0]
        default:
            break
        }
        throw Refusal("refuses to call '\(function.name)' with (\(arguments.map(\.kind).joined(separator: ", "))): "
            + "only tensors, containers and numbers are read")
    }

    private static func ints(_ value: PickleValue) -> [Int]? {
        guard case let .tuple(tuple) = value else { return nil }
        var out: [Int] = []
        for item in tuple.items {
            guard case let .int(n) = item else { return nil }
            out.append(n)
        }
        return out
    }

    // MARK: - Decoding

    private static func text(_ bytes: UnsafeRawBufferPointer) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Refusal("a string that is not UTF-8") }
        return text
    }

    private static func length(_ count: UInt64) throws -> Int {
        guard count <= UInt64(Int.max) else { throw ByteCursor.EndOfData() }
        return Int(count)
    }

    /// A two's-complement little-endian integer (LONG1, LONG4): an `Int` when it fits, else its
    /// decimal digits (up to 32 bytes).
    private static func long(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        guard bytes.count <= 32 else { throw Refusal("an integer of \(bytes.count) bytes (at most 32 are read)") }
        let negative = bytes.last.map { $0 & 0x80 != 0 } ?? false
        if bytes.count <= 8 {
            var value: UInt64 = negative ? ~0 : 0
            for byte in bytes.reversed() { value = value << 8 | UInt64(byte) }
            return .int(Int(Int64(bitPattern: value)))
        }
        // The magnitude, little-endian, divided by ten until nothing is left.
        var magnitude = Array(bytes)
        if negative {
            var carry = 1
            for i in magnitude.indices {
                let sum = Int(~magnitude[i]) + carry
                magnitude[i] = UInt8(sum & 0xFF)
                carry = sum >> 8
            }
        }
        var digits: [Character] = []
        while magnitude.contains(where: { $0 != 0 }) {
            var remainder = 0
            for i in magnitude.indices.reversed() {
                let value = remainder << 8 | Int(magnitude[i])
                magnitude[i] = UInt8(value / 10)
                remainder = value % 10
            }
            digits.append(Character(String(remainder)))
        }
        return .bigInteger((negative ? "-" : "") + String(digits.reversed()))
    }

    /// INT and LONG text: `I01`/`I00` are protocol 0 and 1's booleans.
    private static func textInt(_ text: String, long: Bool = false) throws -> PickleValue {
        if !long, text == "01" { return .bool(true) }
        if !long, text == "00" { return .bool(false) }
        let digits = long && text.hasSuffix("L") ? String(text.dropLast()) : text
        if let value = Int(digits) { return .int(value) }
        let magnitude = digits.hasPrefix("-") ? digits.dropFirst() : Substring(digits)
        guard long, (1...80).contains(magnitude.count), magnitude.allSatisfy(\.isASCII), magnitude.allSatisfy(\.isNumber) else {
            throw Refusal("'\(text)' is not an integer Graft reads")
        }
        return .bigInteger(digits)
    }

    private static func textIndex(_ line: UnsafeRawBufferPointer) throws -> Int {
        let text = try text(line)
        guard let index = Int(text), index >= 0 else { throw Refusal("'\(text)' is not a memo index") }
        return index
    }
}
