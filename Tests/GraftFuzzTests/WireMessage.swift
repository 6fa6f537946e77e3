/// A protobuf message read without its schema: each field's number and payload, with
/// length-delimited payloads that parse as messages kept as nested messages. A mutation deep
/// inside (a `dims` varint of an initializer, an external-data location) is written back with
/// every enclosing length corrected, so it reaches the importer's checks instead of failing
/// protobuf parsing.
struct WireMessage {
    enum Payload {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
        case message(WireMessage)
    }

    struct Field {
        var number: UInt64
        var payload: Payload
    }

    var fields: [Field]

    /// Parses `bytes` as a message; nil when they are not one. Payloads are read as messages
    /// down to `depth` levels.
    init?(_ bytes: ArraySlice<UInt8>, depth: Int = 12) {
        var fields: [Field] = []
        var i = bytes.startIndex
        func varint() -> UInt64? {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 64, by: 7) {
                guard i < bytes.endIndex else { return nil }
                let byte = bytes[i]
                i += 1
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte & 0x80 == 0 { return value }
            }
            return nil
        }
        while i < bytes.endIndex {
            guard let key = varint(), key >> 3 > 0 else { return nil }
            let payload: Payload
            switch key & 7 {
            case 0:
                guard let v = varint() else { return nil }
                payload = .varint(v)
            case 1:
                guard bytes.endIndex - i >= 8 else { return nil }
                payload = .fixed64(bytes[i..<(i + 8)].reversed().reduce(0) { $0 << 8 | UInt64($1) })
                i += 8
            case 5:
                guard bytes.endIndex - i >= 4 else { return nil }
                payload = .fixed32(bytes[i..<(i + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) })
                i += 4
            case 2:
                guard let n = varint(), n <= UInt64(bytes.endIndex - i) else { return nil }
                let body = bytes[i..<(i + Int(n))]
                i += Int(n)
                // Bytes that parse as a message but would not be written back the same (a
                // weight's bytes that happen to parse) stay bytes.
                if depth > 0, !body.isEmpty, let nested = WireMessage(body, depth: depth - 1),
                   nested.serialized().elementsEqual(body) {
                    payload = .message(nested)
                } else {
                    payload = .bytes(Array(body))
                }
            default:
                return nil
            }
            fields.append(Field(number: key >> 3, payload: payload))
        }
        self.fields = fields
    }

    /// The wire bytes.
    func serialized() -> [UInt8] {
        var out: [UInt8] = []
        write(into: &out)
        return out
    }

    private func write(into out: inout [UInt8]) {
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        for field in fields {
            switch field.payload {
            case .varint(let v):
                varint(field.number << 3)
                varint(v)
            case .fixed64(let v):
                varint(field.number << 3 | 1)
                for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) }
            case .fixed32(let v):
                varint(field.number << 3 | 5)
                for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) }
            case .bytes(let b):
                varint(field.number << 3 | 2)
                varint(UInt64(b.count))
                out += b
            case .message(let m):
                varint(field.number << 3 | 2)
                let body = m.serialized()
                varint(UInt64(body.count))
                out += body
            }
        }
    }

    /// The index paths of every field, nested ones included (a path walks `fields` indices).
    func paths(prefix: [Int] = []) -> [[Int]] {
        var out: [[Int]] = []
        for (i, field) in fields.enumerated() {
            out.append(prefix + [i])
            if case .message(let m) = field.payload { out += m.paths(prefix: prefix + [i]) }
        }
        return out
    }

    subscript(path: ArraySlice<Int>) -> Field {
        get {
            let field = fields[path.first!]
            guard path.count > 1, case .message(let m) = field.payload else { return field }
            return m[path.dropFirst()]
        }
        set {
            let i = path.first!
            guard path.count > 1, case .message(var m) = fields[i].payload else {
                fields[i] = newValue
                return
            }
            m[path.dropFirst()] = newValue
            fields[i].payload = .message(m)
        }
    }

    /// Removes the field at `path`.
    mutating func remove(at path: ArraySlice<Int>) {
        let i = path.first!
        if path.count == 1 {
            fields.remove(at: i)
        } else if case .message(var m) = fields[i].payload {
            m.remove(at: path.dropFirst())
            fields[i].payload = .message(m)
        }
    }

    /// Inserts a copy of the field at `path` right after it (a repeated node, initializer, dim).
    mutating func duplicate(at path: ArraySlice<Int>) {
        let i = path.first!
        if path.count == 1 {
            fields.insert(fields[i], at: i + 1)
        } else if case .message(var m) = fields[i].payload {
            m.duplicate(at: path.dropFirst())
            fields[i].payload = .message(m)
        }
    }
}
