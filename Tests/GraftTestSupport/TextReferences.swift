import Foundation
import XCTest

/// Text references written by the real tools (print(model), torchinfo) under `fixtures/`.
public enum TextReference {
    public static func read(_ relative: String) throws -> String {
        try String(contentsOfFile: Fixtures.path(relative), encoding: .utf8)
    }

    /// torchinfo's table as it means it: under Python 3.11 its mult-adds unit prints as the enum
    /// member (`Units.GIGABYTES`), where it meant the unit's value (`G`).
    public static func torchinfo(_ relative: String) throws -> String {
        var text = try read(relative)
        for (member, unit) in [("Units.TERABYTES", "T"), ("Units.GIGABYTES", "G"), ("Units.MEGABYTES", "M")] {
            text = text.replacingOccurrences(of: "(\(member))", with: "(\(unit))")
        }
        return text
    }
}

/// Compares line by line (ignoring one trailing newline), so a failure names the first line that differs.
public func assertSameLines(_ actual: String, _ expected: String, _ label: String = "", file: StaticString = #filePath, line: UInt = #line) {
    let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
    var e = expected.split(separator: "\n", omittingEmptySubsequences: false)
    if e.last == "" && a.last != "" { e.removeLast() }
    let prefix = label.isEmpty ? "" : "\(label): "
    for (i, (x, y)) in zip(a, e).enumerated() where x != y {
        XCTFail("\(prefix)line \(i + 1) differs:\n  got      \(x)\n  expected \(y)", file: file, line: line)
        return
    }
    XCTAssertEqual(a.count, e.count, "\(prefix)line count", file: file, line: line)
}
