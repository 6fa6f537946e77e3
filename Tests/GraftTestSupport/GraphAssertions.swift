import GraftCore
import XCTest

/// Asserts that two graphs have the same inputs, outputs, nodes (names, ops, values, scopes) and
/// constants (names, order and bytes); their names and metadata may differ.
public func assertSameModel(_ a: Graph, _ b: Graph, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.inputs, b.inputs, "inputs \(message)", file: file, line: line)
    XCTAssertEqual(a.outputs, b.outputs, "outputs \(message)", file: file, line: line)
    XCTAssertEqual(a.nodes.count, b.nodes.count, "node count \(message)", file: file, line: line)
    if let i = a.nodes.indices.first(where: { $0 < b.nodes.count && a.nodes[$0] != b.nodes[$0] }) {
        XCTFail("\(message): node \(i) differs:\n  \(a.nodes[i])\n  \(b.nodes[i])", file: file, line: line)
    }
    XCTAssertEqual(a.constantOrder, b.constantOrder, "constant order \(message)", file: file, line: line)
    for name in a.constantOrder where a.constants[name] != b.constants[name] {
        XCTFail("\(message): constant '\(name)' differs: \(a.constants[name].map { "\($0)" } ?? "absent") vs \(b.constants[name].map { "\($0)" } ?? "absent")",
                file: file, line: line)
    }
}

public func opCounts(_ graph: Graph) -> [String: Int] {
    graph.nodes.reduce(into: [:]) { $0[$1.op.name, default: 0] += 1 }
}
