import Foundation

/// The one way the CLI writes JSON: Codable values, keys sorted, pretty-printed, slashes as they
/// are (`"demo/data"`, not `"demo\/data"`).
enum JSONOutput {
    static func string(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
