// swift-tools-version:6.0
// A libFuzzer harness over the readers of untrusted files (JPEG, PNG, HDF5 images, CIFAR
// batches). Not part of the main build or CI; see README.md beside this file.
import PackageDescription

let package = Package(
    name: "SSLFuzz",
    dependencies: [.package(name: "SwiftSSL", path: "../..")],
    targets: [
        .executableTarget(
            name: "ssl-fuzz",
            dependencies: [.product(name: "SSLCore", package: "SwiftSSL")],
            path: "Sources/ssl-fuzz"
        ),
    ]
)
