// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftSSL",
    products: [
        .library(name: "SSLCore", targets: ["SSLCore"]),
        .library(name: "SSLPlugins", targets: ["SSLPlugins"]),
        .library(name: "SSLCommandLine", targets: ["SSLCommandLine"]),
        .library(name: "SSLDistributed", targets: ["SSLDistributed"]),
        .executable(name: "ssl-run", targets: ["SSLRunner"]),
        .executable(name: "ssl-bench", targets: ["SSLBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: - Public API

        .target(
            name: "SSLCore",
            dependencies: ["COpenBLAS", "COneDNN", "CHDF5", "CKernels", "CTurboJPEG", "CPNG", "CZlib"],
            path: "Sources/Core"
        ),

        .target(
            name: "SSLPlugins",
            dependencies: ["SSLCore"],
            path: "Sources/Plugins"
        ),

        // MARK: - Executables

        .target(
            name: "SSLDistributed",
            dependencies: ["SSLCore", "CMPI"],
            path: "Sources/Distributed"
        ),
        .target(
            name: "SSLCommandLine",
            dependencies: [
                "SSLCore",
                "SSLPlugins",
                "SSLDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Runner/CommandLine"
        ),
        .executableTarget(
            name: "SSLRunner",
            dependencies: ["SSLCommandLine", "SSLPlugins"],
            path: "Sources/Runner/Executable"
        ),
        .executableTarget(
            name: "SSLBenchmark",
            dependencies: [
                "SSLCore",
                "SSLPlugins",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Benchmark"
        ),

        // MARK: - Implementation details

        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "COneDNN",
            providers: [.apt(["libdnnl-dev"])]
        ),
        .systemLibrary(
            name: "CHDF5",
            pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]
        ),
        .systemLibrary(
            name: "CTurboJPEG",
            pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev"])]
        ),
        .target(name: "CKernels", path: "Sources/CKernels"),

        // MARK: - Tests

        .target(
            name: "SSLTestSupport",
            dependencies: ["SSLCore"],
            path: "Tests/SSLTestSupport"
        ),
        .testTarget(
            name: "SSLCoreTests",
            dependencies: ["SSLCore", "SSLTestSupport"],
            path: "Tests/SSLCoreTests"
        ),
        .testTarget(
            name: "SSLRunnerTests",
            dependencies: ["SSLCore", "SSLPlugins", "SSLCommandLine", "SSLTestSupport"],
            path: "Tests/SSLRunnerTests"
        ),
        .testTarget(
            name: "SSLPluginsTests",
            dependencies: ["SSLCore", "SSLPlugins", "SSLTestSupport"],
            path: "Tests/SSLPluginsTests"
        ),
    ]
)
