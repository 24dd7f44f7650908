// swift-tools-version:6.1
// Relais runs on Linux only: it uses Glibc, inotify and syncfs directly.
import PackageDescription

let package = Package(
    name: "Relais",
    products: [
        .executable(name: "relais", targets: ["relais"]),
        .library(name: "SMTPCore", targets: ["SMTPCore"]),
        .library(name: "Relais", targets: ["Relais"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "CSystemShims"),
        .target(name: "CLuaBridge", dependencies: ["CLua"]),
        .target(
            name: "RelaisTLS",
            dependencies: ["COpenSSL", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "RelaisLua",
            dependencies: ["CLuaBridge", "CLua"]
        ),
        .target(
            name: "RelaisDNS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "SMTPCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "Relais",
            dependencies: [
                "SMTPCore",
                "RelaisDNS",
                "RelaisLua",
                "RelaisTLS",
                "CSystemShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Policy/Modules")]
        ),
        .executableTarget(
            name: "relais",
            dependencies: [
                "Relais",
                "RelaisTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "SMTPCoreTests", dependencies: ["SMTPCore"]),
        .testTarget(name: "RelaisLuaTests", dependencies: ["RelaisLua"]),
        .testTarget(name: "RelaisDNSTests", dependencies: ["RelaisDNS", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "RelaisTests", dependencies: ["Relais", "SMTPCore", "CLua", "COpenSSL"]),
        .testTarget(
            name: "RelaisTLSTests",
            dependencies: ["RelaisTLS", .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
