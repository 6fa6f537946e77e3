import GraftCore

/// A JSON value as a safetensors header holds it: objects keep their members in the file's order
/// (the order of the state_dict) and numbers keep their text, so that a fraction, a negative or a
/// number past `Int` is told apart from an integer instead of being rounded.
indirect enum HeaderJSON: CustomStringConvertible {
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// Deeper nesting than this is refused: a header needs three levels, and recursion on a
    /// hostile `[[[[…` must not overflow the stack.
    static let maxDepth = 32

    /// Parses one JSON value from UTF-8 `bytes`, allowing whitespace around it.
    ///
    /// - Throws: `GraftError` saying what is wrong at which byte of the header.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> HeaderJSON {
        var parser = Parser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        if parser.position < bytes.count { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    /// The member `key` of an object.
    subscript(key: String) -> HeaderJSON? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The value as an `Int` when it is a non-negative integer that fits.
    var nonNegativeInteger: Int? {
        guard case .number(let text) = self, let value = Int(text), value >= 0 else { return nil }
        return value
    }

    /// Compact JSON text on one line, for error messages.
    var description: String {
        switch self {
        case .object(let members): return "{" + members.map { "\(Safetensors.quoted($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .string(let text): return Safetensors.quoted(text)
        case .number(let text): return text
        case .bool(let value): return String(value)
        case .null: return "null"
        }
    }
}

extension HeaderJSON {
    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
        }

        func error(_ message: String) -> GraftError {
            GraftError(.badInput, "the header is not valid JSON: \(message) at byte \(position)")
        }

        /// `'x'` for a printable ASCII byte, `byte 0xNN` for any other.
        func describe(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "'\(Unicode.Scalar(byte))'" : "byte 0x" + String(byte, radix: 16, uppercase: true)
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func value(depth: Int) throws -> HeaderJSON {
            guard depth < HeaderJSON.maxDepth else { throw error("nested deeper than \(HeaderJSON.maxDepth) levels") }
            skipWhitespace()
            guard position < bytes.count else { throw error("the text ends where a value should be") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
            default: throw error("unexpected \(describe(bytes[position]))")
            }
        }

        private mutating func object(depth: Int) throws -> HeaderJSON {
            position += 1
            var members: [(key: String, value: HeaderJSON)] = []
            skipWhitespace()
            if consume("}") { return .object(members) }
            repeat {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a quoted member name") }
                let key = try string()
                skipWhitespace()
                guard consume(":") else { throw error("expected ':' after a member name") }
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
            } while consume(",")
            guard consume("}") else { throw error("expected ',' or '}' in an object") }
            return .object(members)
        }

        private mutating func array(depth: Int) throws -> HeaderJSON {
            position += 1
            var values: [HeaderJSON] = []
            skipWhitespace()
            if consume("]") { return .array(values) }
            repeat {
                values.append(try value(depth: depth + 1))
                skipWhitespace()
            } while consume(",")
            guard consume("]") else { throw error("expected ',' or ']' in an array") }
            return .array(values)
        }

        private mutating func string() throws -> String {
            position += 1
            var utf8: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("a string is not closed") }
                let byte = bytes[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: utf8, as: UTF8.self) else { throw error("a string is not UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    try escape(into: &utf8)
                case 0..<0x20:
                    throw error("a control character in a string")
                default:
                    utf8.append(byte)
                }
            }
        }

        private mutating func escape(into utf8: inout [UInt8]) throws {
            guard position < bytes.count else { throw error("a string is not closed") }
            let byte = bytes[position]
            position += 1
            let simple: [UInt8: UInt8] = [
                UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
                UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
            ]
            if let replacement = simple[byte] {
                utf8.append(replacement)
                return
            }
            guard byte == UInt8(ascii: "u") else { throw error("an unknown escape '\\\(Unicode.Scalar(byte))'") }
            var scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard consume("\\"), consume("u") else { throw error("a lone surrogate escape") }
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("a lone surrogate escape") }
                scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
            }
            guard let character = Unicode.Scalar(scalar) else { throw error("a lone surrogate escape") }
            utf8.append(contentsOf: Array(String(Character(character)).utf8))
        }

        private mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count,
                  let value = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) else {
                throw error("a \\u escape without four hex digits")
            }
            position += 4
            return value
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as text.
        private mutating func number() throws -> HeaderJSON {
            let start = position
            func digits() -> Int {
                let first = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                return position - first
            }
            func wellFormed() -> Bool {
                _ = consume("-")
                let whole = position
                guard digits() > 0, bytes[whole] != UInt8(ascii: "0") || position - whole == 1 else { return false }
                if consume("."), digits() == 0 { return false }
                if consume("e") || consume("E") {
                    if !consume("+") { _ = consume("-") }
                    if digits() == 0 { return false }
                }
                return true
            }
            guard wellFormed() else {
                position = start
                throw error("a malformed number")
            }
            return .number(String(decoding: bytes[start..<position], as: UTF8.self))
        }

        private mutating func literal(_ word: String, _ value: HeaderJSON) throws -> HeaderJSON {
            let utf8 = Array(word.utf8)
            guard position + utf8.count <= bytes.count, bytes[position..<(position + utf8.count)].elementsEqual(utf8) else {
                throw error("unexpected \(describe(bytes[position]))")
            }
            position += utf8.count
            return value
        }

        /// Moves past `character` when it is next.
        private mutating func consume(_ character: Unicode.Scalar) -> Bool {
            guard position < bytes.count, bytes[position] == UInt8(ascii: character) else { return false }
            position += 1
            return true
        }
    }
}
