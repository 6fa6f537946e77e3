import GraftCore
import GraftRuntime
import GraftTestSupport
import XCTest

enum HDF5Fixtures {
    static func path(_ name: String) -> String { Fixtures.path("hdf5/\(name)") }

    static var input: Tensor {
        get throws { try NPY.read(path("input_b1.npy")) }
    }
}

/// The graph's only output for `input` fed to its only input.
func runGraph(_ graph: Graph, _ input: Tensor) throws -> Tensor {
    try Interpreter(graph: graph).run([graph.inputs[0].name: input])[graph.outputs[0].name]!
}
