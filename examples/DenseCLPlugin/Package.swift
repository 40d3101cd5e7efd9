// swift-tools-version:6.0
import Foundation
import PackageDescription

// This example depends on the framework by path. SwiftPM names a local package after its
// folder, so the dependency's name is read from the checkout's folder.
let frameworkPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../..").standardizedFileURL
let framework = frameworkPath.lastPathComponent

let package = Package(
    name: "DenseCLPlugin",
    dependencies: [
        .package(path: frameworkPath.path),
    ],
    targets: [
        .target(
            name: "DenseCLTask",
            dependencies: [.product(name: "SSLCore", package: framework)]
        ),
        // `ssl-run` with the task registered.
        .executableTarget(
            name: "densecl-run",
            dependencies: [
                "DenseCLTask",
                .product(name: "SSLPlugins", package: framework),
                .product(name: "SSLCommandLine", package: framework),
            ]
        ),
        // The library used from code: compose tasks, train, reload and probe.
        .executableTarget(
            name: "densecl-compose",
            dependencies: [
                "DenseCLTask",
                .product(name: "SSLCore", package: framework),
                .product(name: "SSLPlugins", package: framework),
            ]
        ),
    ]
)
