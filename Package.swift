// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Graft",
    products: [
        // MARK: - Public API
        .executable(name: "graft", targets: ["graft"]),
        .library(name: "GraftCore", targets: ["GraftCore"]),
        .library(name: "GraftONNX", targets: ["GraftONNX"]),
        .library(name: "GraftHDF5", targets: ["GraftHDF5"]),
        .library(name: "GraftTorch", targets: ["GraftTorch"]),
        .library(name: "GraftPasses", targets: ["GraftPasses"]),
        .library(name: "GraftRuntime", targets: ["GraftRuntime"]),
        .library(name: "GraftTrain", targets: ["GraftTrain"]),
        .library(name: "GraftVision", targets: ["GraftVision"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: - System libraries and generated code
        .target(
            name: "COnnxProto",
            path: "Sources/COnnxProto",
            linkerSettings: [.linkedLibrary("protobuf-c")]
        ),
        // The micro-kernels and transforms in C, one set per instruction set, each function
        // compiled for its set by its own target attribute (tools/gen_kernels.py writes them);
        // GraftRuntime picks one at run time.
        .target(name: "CKernels"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),

        // MARK: - Implementation
        .target(name: "GraftCore"),
        .target(name: "GraftONNX", dependencies: ["GraftCore", "COnnxProto"]),
        // PyTorch's own files (.pth, safetensors) and the state_dict -> torchvision ResNet graph
        // builder every state_dict container shares.
        .target(name: "GraftTorch", dependencies: ["GraftCore"]),
        .target(name: "GraftHDF5", dependencies: ["GraftCore", "GraftTorch", "CHDF5"]),
        .target(name: "GraftPasses", dependencies: ["GraftCore"]),
        .target(name: "GraftRuntime", dependencies: ["GraftCore", "COpenBLAS", "CKernels"]),
        .target(name: "GraftVision", dependencies: ["GraftCore", "CTurboJPEG", "CPNG"]),
        .target(name: "GraftTrain", dependencies: ["GraftCore", "GraftRuntime", "GraftPasses", "GraftVision", "COpenBLAS"]),
        .target(
            name: "GraftCLI",
            dependencies: [
                "GraftCore", "GraftONNX", "GraftHDF5", "GraftTorch", "GraftPasses", "GraftRuntime", "GraftVision", "GraftTrain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "graft", dependencies: ["GraftCLI"]),

        // MARK: - Tests
        .target(name: "GraftTestSupport", dependencies: ["GraftCore"], path: "Tests/GraftTestSupport"),
        .testTarget(name: "GraftCoreTests", dependencies: ["GraftCore", "GraftTestSupport"]),
        .testTarget(name: "GraftONNXTests", dependencies: ["GraftONNX", "GraftRuntime", "GraftTestSupport"],
                    exclude: ["conformance-manifest.txt"]),
        .testTarget(name: "GraftPassesTests", dependencies: ["GraftPasses", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftHDF5Tests", dependencies: ["GraftHDF5", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftTorchTests", dependencies: ["GraftTorch", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftRuntimeTests", dependencies: ["GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftCLITests", dependencies: ["GraftTestSupport"]),
        .testTarget(name: "GraftFuzzTests", dependencies: ["GraftONNX", "GraftHDF5", "GraftRuntime", "GraftPasses", "GraftTestSupport"]),
        .testTarget(name: "GraftVisionTests", dependencies: ["GraftVision", "GraftTestSupport"]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain", "GraftVision", "GraftONNX", "GraftHDF5", "GraftTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
