import Foundation
import GraftCore
import GraftTestSupport
import XCTest

final class NPYTests: XCTestCase {
    func testReadsWhatNumPyWroteAndRoundTrips() throws {
        let x = try NPY.read(Fixtures.tiny("input_b3.npy"))
        XCTAssertEqual(x.shape, [3, 3, 64, 64])
        XCTAssertEqual(x.dtype, .float32)
        let again = try NPY.decode(NPY.encode(x))
        XCTAssertEqual(again, x)
        // NumPy aligns the data to 64 bytes; so do we.
        XCTAssertEqual((NPY.encode(x).count - x.byteCount) % 64, 0)
    }

    func header(_ dict: String, version: UInt8 = 1) -> Data {
        var h = dict
        while (10 + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [version, 0])
        d.append(contentsOf: [UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)])
        d.append(contentsOf: Array(h.utf8))
        return d
    }

    func expect(_ data: Data, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try NPY.decode(data), file: file, line: line) { error in
            XCTAssertEqual((error as? GraftError)?.message, message, file: file, line: line)
        }
    }

    func testBadFilesAreRefusedWithTheReason() {
        expect(Data("hello".utf8), "not a NumPy .npy file (bad magic)")
        expect(header("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }") + Data(count: 4),
               "array type '<i2' is not supported (use float32 '<f4', float64, int64, int32 or bool)")
        expect(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }") + Data(count: 16),
               "the array is in Fortran order; save it in C order")
        expect(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + Data(count: 20),
               "the .npy data holds 20 bytes; shape (2, 3) of float32 needs 24")
        expect(header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"),
               "shape (4611686018427387904, 4) is too large")
        expect(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", version: 9), ".npy format version 9 is not supported")
    }
}
