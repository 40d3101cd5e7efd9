// swift-tools-version:6.0
import Foundation
import PackageDescription

// This example depends on the framework by path. SwiftPM names a local package after its
// folder, so the dependency's name is read from the checkout's folder.
let frameworkPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../..").standardizedFileURL
let framework = frameworkPath.lastPathComponent

let package = Package(
    name: "SimSiamPlugin",
    dependencies: [
        .package(path: frameworkPath.path),
    ],
    targets: [
        .target(
            name: "SimSiamTask",
            dependencies: [.product(name: "SSLCore", package: framework)]
        ),
        .executableTarget(
            name: "simsiam-run",
            dependencies: [
                "SimSiamTask",
                .product(name: "SSLPlugins", package: framework),
                .product(name: "SSLCommandLine", package: framework),
            ]
        ),
    ]
)
