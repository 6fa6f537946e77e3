import Foundation
import GraftCore
import GraftTestSupport
import XCTest

/// Asserts two graphs are the same field by field, so that a failure says what differs.
func assertSameGraph(_ actual: Graph, _ expected: Graph, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.name, expected.name, "\(label): graph name", file: file, line: line)
    XCTAssertEqual(actual.metadata.opset, expected.metadata.opset, "\(label): opset", file: file, line: line)
    XCTAssertEqual(actual.metadata.otherOpsets, expected.metadata.otherOpsets, "\(label): other opsets", file: file, line: line)
    XCTAssertEqual(actual.metadata.properties, expected.metadata.properties, "\(label): metadata properties", file: file, line: line)
    XCTAssertEqual(actual.inputs, expected.inputs, "\(label): inputs", file: file, line: line)
    XCTAssertEqual(actual.outputs, expected.outputs, "\(label): outputs", file: file, line: line)
    XCTAssertEqual(actual.nodes.count, expected.nodes.count, "\(label): node count", file: file, line: line)
    for (a, e) in zip(actual.nodes, expected.nodes) {
        let where_ = "\(label): node '\(e.name)'"
        XCTAssertEqual(a.name, e.name, "\(where_): name", file: file, line: line)
        XCTAssertEqual(a.op, e.op, "\(where_): op and attributes", file: file, line: line)
        XCTAssertEqual(a.inputs, e.inputs, "\(where_): inputs", file: file, line: line)
        XCTAssertEqual(a.outputs, e.outputs, "\(where_): outputs", file: file, line: line)
        XCTAssertEqual(a.scope, e.scope, "\(where_): module scope", file: file, line: line)
    }
    XCTAssertEqual(actual.constantOrder, expected.constantOrder, "\(label): constant order", file: file, line: line)
    for name in expected.constantOrder {
        guard let a = actual.constants[name], let e = expected.constants[name] else {
            XCTFail("\(label): constant '\(name)' is missing", file: file, line: line)
            continue
        }
        XCTAssertEqual(a.dtype, e.dtype, "\(label): constant '\(name)' type", file: file, line: line)
        XCTAssertEqual(a.shape, e.shape, "\(label): constant '\(name)' shape", file: file, line: line)
        XCTAssertTrue(a == e, "\(label): constant '\(name)' bytes differ", file: file, line: line)
    }
}

/// The `GraftError` that `body` throws (nil, failing the test, for none or another error).
func thrownGraftError(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> GraftError? {
    do {
        try body()
        XCTFail("expected a GraftError", file: file, line: line)
    } catch let error as GraftError {
        XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a GraftError, got \(error)", file: file, line: line)
    }
    return nil
}
