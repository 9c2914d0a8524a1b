// swift-tools-version:6.0
import PackageDescription

// Upcoming features on, as hummingbird does: `any` spelled out for existentials, and imports
// that must be visible where a member is used. Swift 6 language mode gives strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Release code is compiled against the static Swift runtime and Foundation, which every
    // release executable links in (`staticInRelease`).
    .unsafeFlags(["-static-stdlib"], .when(configuration: .release)),
]

/// The release binaries carry the Swift runtime and Foundation themselves, linked by the
/// toolchain's lld with packed relative relocations (RELR; glibc 2.36): nothing to install beside
/// them, and a coordinator that maps only the pages it uses (in the benchmark's cutover 31.7 MiB
/// resident instead of 38.3 with the shared libraries; see BENCHMARKS.md). Debug builds, which
/// the tests run, link them dynamically and link faster.
let staticInRelease: [LinkerSetting] = [.unsafeFlags(["-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                                                     .when(configuration: .release))]

let package = Package(
    name: "switchover",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "switchover", targets: ["switchover"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // The coordinator's loop as a Service: graceful shutdown on SIGTERM/SIGINT.
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The coordinator's /metrics (DESIGN.md section 6): swift-prometheus for the registry and
        // the text format, SwiftNIO for the HTTP endpoint (README "Metrics" says why not Hummingbird).
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        // C bridges. libcurl: its header, and the library loaded on first use (dlopen), not
        // linked. OpenSSL and SQLite: found through pkg-config; shim.h wraps what Swift cannot
        // import (function-like macros).
        .target(name: "CCurl"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // The domain, no I/O except reading configuration files.
        .target(name: "SwitchoverCore", dependencies: [.product(name: "Yams", package: "Yams")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverNet", dependencies: ["CCurl", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverTrust",
                dependencies: ["COpenSSL", "SwitchoverCore", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverDrivers",
                dependencies: ["SwitchoverCore", "SwitchoverNet", "SwitchoverAWS", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverSignals",
                dependencies: ["SwitchoverCore", "SwitchoverNet", "SwitchoverDrivers", "SwitchoverTrust",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverStore", dependencies: ["CSQLite", "SwitchoverCore", "SwitchoverNet", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "SwitchoverRuntime",
                dependencies: ["SwitchoverCore", "SwitchoverNet", "SwitchoverTrust", "SwitchoverDrivers",
                               "SwitchoverSignals", "SwitchoverStore", "SwitchoverKubernetes",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")],
                swiftSettings: swiftSettings),
        // A Kubernetes API client over libcurl: kubeconfig as kubectl reads it, client
        // certificates, tokens and exec credential plugins (issue 19; not wired into the cluster
        // documents yet).
        .target(name: "SwitchoverKubernetes",
                dependencies: ["SwitchoverNet", .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        // AWS APIs over libcurl (issue 15, foundation): SigV4 signing on OpenSSL, credentials as
        // every AWS tool resolves them, AWS's error answers as typed errors, throttling retried;
        // the Route53 and ELBv2 calls a DNS or ALB switchover needs. No router yet.
        .target(name: "SwitchoverAWS",
                dependencies: ["SwitchoverTrust", "SwitchoverNet", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        // The HTML report of a run: a pure renderer over what the journal holds.
        .target(name: "SwitchoverReport", dependencies: ["SwitchoverCore", "SwitchoverStore"],
                swiftSettings: swiftSettings),
        .executableTarget(name: "switchover",
                          dependencies: ["SwitchoverRuntime", "SwitchoverCore", "SwitchoverTrust",
                                         "SwitchoverDrivers", "SwitchoverStore", "SwitchoverReport",
                                         "SwitchoverSignals",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                         .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: swiftSettings, linkerSettings: staticInRelease),

        // Starts real servers (nginx, HAProxy, Envoy, Prometheus, openssl s_server) on loopback
        // and makes test PKI (TestPKI: the openssl command line; TrustPKI: the OpenSSL C API).
        .target(name: "SwitchoverTestKit", dependencies: ["SwitchoverCore", "COpenSSL"], swiftSettings: swiftSettings),
        // Benchmarks, one subcommand each (`trust`, `fleet`, `suite`), printing markdown tables;
        // built in release by bench/*.sh and bench/run.
        // Runs one command and reports its own peak RSS (see its main.c for why a process).
        .executableTarget(name: "BenchSpawn"),
        .executableTarget(name: "SwitchoverBench",
                          dependencies: ["SwitchoverTrust", "SwitchoverDrivers", "SwitchoverAWS", "SwitchoverSignals", "SwitchoverNet", "SwitchoverTestKit",
                                         "SwitchoverCore", "SwitchoverStore", "COpenSSL", .product(name: "Logging", package: "swift-log")],
                          swiftSettings: swiftSettings, linkerSettings: staticInRelease),

        // With the drivers: the loader's tests read HAProxy and Envoy sections (Core itself
        // knows no driver; the registry in SwitchoverDrivers describes them).
        .testTarget(name: "SwitchoverCoreTests", dependencies: ["SwitchoverCore", "SwitchoverDrivers", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverNetTests", dependencies: ["SwitchoverNet", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverTrustTests", dependencies: ["SwitchoverTrust", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverDriversTests", dependencies: ["SwitchoverDrivers", "SwitchoverTestKit", "SwitchoverAWS", "SwitchoverNet"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverSignalsTests", dependencies: ["SwitchoverSignals", "SwitchoverTestKit", "SwitchoverNet", "SwitchoverDrivers", "SwitchoverCore"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverStoreTests", dependencies: ["SwitchoverStore", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverRuntimeTests", dependencies: ["SwitchoverRuntime", "SwitchoverTestKit", "SwitchoverStore",
                                                             "SwitchoverDrivers", "SwitchoverCore"],
                    swiftSettings: swiftSettings),
        // Against a stand-in API server (nginx, TLS, client certificates or a token): see KubeAPIStandIn.
        .testTarget(name: "SwitchoverKubernetesTests", dependencies: ["SwitchoverKubernetes", "SwitchoverTestKit", "SwitchoverNet"],
                    swiftSettings: swiftSettings),
        // Against a real moto server (its IAM authentication on where a wrong secret is tested)
        // and botocore as the reference signer, both from the venv scripts/setup makes.
        .testTarget(name: "SwitchoverAWSTests", dependencies: ["SwitchoverAWS", "SwitchoverTestKit", "SwitchoverNet"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "SwitchoverReportTests", dependencies: ["SwitchoverReport", "SwitchoverStore", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        // What the benchmark reads to measure: hey's report, /proc, order statistics.
        .testTarget(name: "SwitchoverBenchTests", dependencies: ["SwitchoverBench", "SwitchoverTestKit"],
                    swiftSettings: swiftSettings),
        // Runs the built `switchover` binary and checks its output and exit code.
        .testTarget(name: "SwitchoverCLITests", dependencies: ["SwitchoverTestKit"], swiftSettings: swiftSettings),
    ]
)
