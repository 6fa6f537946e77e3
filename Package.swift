// swift-tools-version:6.0
import PackageDescription

// Swift 6 language mode (complete concurrency checking) for the targets that pass it; the rest
// (the HDF5 C globals, the runtime's and the trainer's global settings) stay in Swift 5 mode.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Graft",
    products: [
        // MARK: - Public API
        .executable(name: "graft", targets: ["graft"]),
        .library(name: "Graft", targets: ["Graft"]),
        .library(name: "GraftCore", targets: ["GraftCore"]),
        .library(name: "GraftSummary", targets: ["GraftSummary"]),
        .library(name: "GraftONNX", targets: ["GraftONNX"]),
        .library(name: "GraftHDF5", targets: ["GraftHDF5"]),
        .library(name: "GraftTorch", targets: ["GraftTorch"]),
        .library(name: "GraftPasses", targets: ["GraftPasses"]),
        .library(name: "GraftRuntime", targets: ["GraftRuntime"]),
        .library(name: "GraftTrain", targets: ["GraftTrain"]),
        .library(name: "GraftVision", targets: ["GraftVision"]),
        .library(name: "GraftQuantization", targets: ["GraftQuantization"]),
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
        .target(name: "GraftCore", swiftSettings: swift6),
        // What PyTorch's print(model) and torchinfo print, from a graph's module scopes.
        .target(name: "GraftSummary", dependencies: ["GraftCore"], swiftSettings: swift6),
        .target(name: "GraftONNX", dependencies: ["GraftCore", "COnnxProto"], swiftSettings: swift6),
        // PyTorch's own files (.pth, safetensors) and the state_dict -> torchvision ResNet graph
        // builder every state_dict container shares.
        .target(name: "GraftTorch", dependencies: ["GraftCore"], swiftSettings: swift6),
        .target(name: "GraftHDF5", dependencies: ["GraftCore", "GraftTorch", "CHDF5"]),
        .target(name: "GraftPasses", dependencies: ["GraftCore"], swiftSettings: swift6),
        .target(name: "GraftRuntime", dependencies: ["GraftCore", "GraftPasses", "COpenBLAS", "CKernels"]),
        .target(name: "GraftVision", dependencies: ["GraftCore", "CTurboJPEG", "CPNG"]),
        // Post-training static quantization: calibration on the runtime, the QDQ graph out.
        .target(name: "GraftQuantization", dependencies: ["GraftCore", "GraftRuntime"], swiftSettings: swift6),
        .target(name: "GraftTrain", dependencies: ["GraftCore", "GraftRuntime", "GraftPasses", "GraftVision", "COpenBLAS"],
                resources: [.copy("Resources/imagenet_classes.txt")]),
        // The public facade: a model from any file, summarized, run and classified.
        .target(name: "Graft", dependencies: ["GraftCore", "GraftONNX", "GraftHDF5", "GraftTorch", "GraftPasses",
                                              "GraftRuntime", "GraftVision", "GraftTrain", "GraftSummary"]),
        .target(
            name: "GraftCLI",
            dependencies: [
                "Graft", "GraftCore", "GraftSummary", "GraftONNX", "GraftHDF5", "GraftTorch", "GraftPasses", "GraftRuntime", "GraftVision", "GraftTrain",
                "GraftQuantization",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "graft", dependencies: ["GraftCLI"]),

        // MARK: - Tests
        .target(name: "GraftTestSupport", dependencies: ["GraftCore"], path: "Tests/GraftTestSupport"),
        .testTarget(name: "GraftCoreTests", dependencies: ["GraftCore", "GraftSummary", "GraftTestSupport"]),
        .testTarget(name: "GraftONNXTests", dependencies: ["GraftONNX", "GraftSummary", "GraftRuntime", "GraftTestSupport"],
                    exclude: ["conformance-manifest.txt"]),
        .testTarget(name: "GraftPassesTests", dependencies: ["GraftPasses", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftHDF5Tests", dependencies: ["GraftHDF5", "GraftTorch", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftTorchTests", dependencies: ["GraftTorch", "GraftONNX", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftRuntimeTests", dependencies: ["GraftRuntime", "GraftONNX", "GraftPasses", "GraftTestSupport"]),
        .testTarget(name: "GraftQuantizationTests", dependencies: ["GraftQuantization", "GraftRuntime", "GraftONNX", "GraftTestSupport"]),
        .testTarget(name: "GraftTests", dependencies: ["Graft", "GraftONNX", "GraftQuantization", "GraftRuntime", "GraftTestSupport"]),
        .testTarget(name: "GraftCLITests", dependencies: ["GraftTestSupport"]),
        .testTarget(name: "GraftFuzzTests", dependencies: ["GraftONNX", "GraftSummary", "GraftHDF5", "GraftRuntime", "GraftPasses", "GraftTestSupport"]),
        .testTarget(name: "GraftVisionTests", dependencies: ["GraftVision", "GraftTestSupport"]),
        .testTarget(name: "GraftTrainTests", dependencies: ["GraftTrain", "GraftSummary", "GraftRuntime", "GraftVision", "GraftONNX", "GraftHDF5", "GraftTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
