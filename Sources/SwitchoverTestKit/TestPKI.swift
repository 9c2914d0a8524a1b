import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A certificate and its private key as PEM files, made by `TestPKI`.
public struct TestCertificate: Sendable, Hashable {
    /// The name it was made with (also its CN unless a subject was given).
    public let name: String
    public let certificateFile: URL
    public let keyFile: URL
    public let isCA: Bool

    /// The certificate in PEM.
    public func certificatePEM() throws -> String { try String(contentsOf: certificateFile, encoding: .utf8) }
}

/// Makes throw-away PKI for tests with the `openssl` command line: roots, intermediates and
/// leaves, EC P-256 or RSA. Nothing it makes is ever committed; every test makes its own.
///
/// Shelling out to `openssl` rather than using the project's OpenSSL bindings keeps the tests
/// independent of the code under test: a bug in SwitchoverTrust cannot hide itself by also
/// producing the certificates it checks.
///
/// Meant to be extended (trust tests need more shapes: other validity windows, SPIFFE URIs,
/// name constraints); `extraExtensions` takes raw openssl extension lines for one-offs.
public struct TestPKI: Sendable {
    public enum KeyType: Sendable, Hashable {
        case ecP256
        case rsa(bits: Int)
        public static let rsa2048 = KeyType.rsa(bits: 2048)
    }

    /// What a leaf may be used for (extendedKeyUsage).
    public enum Usage: Sendable, Hashable {
        case server, client, serverAndClient
    }

    public let directory: URL

    /// Files go to `directory` (created if missing).
    public init(directory: URL) throws {
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
    }

    /// A self-signed CA.
    @available(*, noasync, message: "runs openssl on its thread: `try await` the async form")
    public func makeRoot(name: String, keyType: KeyType = .ecP256, days: Int = 30, subject: String? = nil,
                         extraExtensions: [String] = []) throws -> TestCertificate {
        let key = try makeKey(name: name, keyType: keyType)
        let cert = file(name, "cert.pem")
        let ext = try writeExtensions(name: name, lines: [
            "basicConstraints = critical, CA:TRUE",
            "keyUsage = critical, keyCertSign, cRLSign",
            "subjectKeyIdentifier = hash",
        ] + extraExtensions)
        try openssl(["req", "-new", "-x509", "-key", key.path, "-subj", subject ?? "/CN=\(name)",
                     "-days", String(days), "-sha256", "-set_serial", randomSerial(),
                     "-config", ext.path, "-extensions", "ext", "-out", cert.path])
        return TestCertificate(name: name, certificateFile: cert, keyFile: key, isCA: true)
    }

    /// A CA signed by `issuer`. `pathLength` nil leaves the path length unconstrained.
    @available(*, noasync, message: "runs openssl on its thread: `try await` the async form")
    public func makeIntermediate(name: String, issuer: TestCertificate, keyType: KeyType = .ecP256,
                                 pathLength: Int? = 0, days: Int = 30, subject: String? = nil,
                                 extraExtensions: [String] = []) throws -> TestCertificate {
        let basic = "basicConstraints = critical, CA:TRUE" + (pathLength.map { ", pathlen:\($0)" } ?? "")
        return try sign(name: name, issuer: issuer, keyType: keyType, days: days, subject: subject, isCA: true,
                        extensions: [basic, "keyUsage = critical, keyCertSign, cRLSign"] + extraExtensions)
    }

    /// An end-entity certificate signed by `issuer`. `sans` are openssl subjectAltName entries;
    /// a bare value is taken as `IP:` when it parses as an IPv4/IPv6 address, `DNS:` otherwise,
    /// and typed values (`URI:spiffe://cluster.local/ns/a/sa/b`, `email:...`) pass unchanged.
    @available(*, noasync, message: "runs openssl on its thread: `try await` the async form")
    public func makeLeaf(name: String, sans: [String], issuer: TestCertificate, keyType: KeyType = .ecP256,
                         usage: Usage = .serverAndClient, days: Int = 30, subject: String? = nil,
                         extraExtensions: [String] = []) throws -> TestCertificate {
        var lines = ["basicConstraints = critical, CA:FALSE"]
        switch keyType {
        case .ecP256: lines.append("keyUsage = critical, digitalSignature")
        case .rsa: lines.append("keyUsage = critical, digitalSignature, keyEncipherment")
        }
        switch usage {
        case .server: lines.append("extendedKeyUsage = serverAuth")
        case .client: lines.append("extendedKeyUsage = clientAuth")
        case .serverAndClient: lines.append("extendedKeyUsage = serverAuth, clientAuth")
        }
        if !sans.isEmpty { lines.append("subjectAltName = " + sans.map(Self.typedSAN).joined(separator: ", ")) }
        return try sign(name: name, issuer: issuer, keyType: keyType, days: days, subject: subject, isCA: false,
                        extensions: lines + extraExtensions)
    }

    // MARK: - Async forms
    //
    // Each certificate is two or three runs of the openssl command line, which the forms above
    // wait for on the calling thread; these make them on a thread of their own (`OwnThread`), so
    // tests on the cooperative pool do not block it.

    /// `makeRoot` off the cooperative pool.
    public func makeRoot(name: String, keyType: KeyType = .ecP256, days: Int = 30, subject: String? = nil,
                         extraExtensions: [String] = []) async throws -> TestCertificate {
        try await OwnThread.run("openssl") {
            try self.makeRoot(name: name, keyType: keyType, days: days, subject: subject, extraExtensions: extraExtensions)
        }
    }

    /// `makeIntermediate` off the cooperative pool.
    public func makeIntermediate(name: String, issuer: TestCertificate, keyType: KeyType = .ecP256,
                                 pathLength: Int? = 0, days: Int = 30, subject: String? = nil,
                                 extraExtensions: [String] = []) async throws -> TestCertificate {
        try await OwnThread.run("openssl") {
            try self.makeIntermediate(name: name, issuer: issuer, keyType: keyType, pathLength: pathLength, days: days,
                                      subject: subject, extraExtensions: extraExtensions)
        }
    }

    /// `makeLeaf` off the cooperative pool.
    public func makeLeaf(name: String, sans: [String], issuer: TestCertificate, keyType: KeyType = .ecP256,
                         usage: Usage = .serverAndClient, days: Int = 30, subject: String? = nil,
                         extraExtensions: [String] = []) async throws -> TestCertificate {
        try await OwnThread.run("openssl") {
            try self.makeLeaf(name: name, sans: sans, issuer: issuer, keyType: keyType, usage: usage, days: days,
                              subject: subject, extraExtensions: extraExtensions)
        }
    }

    /// Concatenates the certificates' PEM into one file (a chain or a CA bundle), in order.
    public func bundle(_ certificates: [TestCertificate], named fileName: String) throws -> URL {
        let url = directory.appendingPathComponent(fileName)
        let pem = try certificates.map { try $0.certificatePEM() }.joined()
        try pem.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    // MARK: - Internals

    private func sign(name: String, issuer: TestCertificate, keyType: KeyType, days: Int, subject: String?,
                      isCA: Bool, extensions: [String]) throws -> TestCertificate {
        guard issuer.isCA else { throw TestKitError("TestPKI: \(issuer.name) is not a CA and cannot sign \(name)") }
        let key = try makeKey(name: name, keyType: keyType)
        let csr = file(name, "csr.pem")
        let cert = file(name, "cert.pem")
        let ext = try writeExtensions(name: name, lines: extensions + [
            "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid:always",
        ])
        try openssl(["req", "-new", "-key", key.path, "-subj", subject ?? "/CN=\(name)", "-config", ext.path,
                     "-out", csr.path])
        try openssl(["x509", "-req", "-in", csr.path, "-CA", issuer.certificateFile.path, "-CAkey", issuer.keyFile.path,
                     "-set_serial", randomSerial(), "-days", String(days), "-sha256",
                     "-extfile", ext.path, "-extensions", "ext", "-out", cert.path])
        try? FileManager.default.removeItem(at: csr)
        return TestCertificate(name: name, certificateFile: cert, keyFile: key, isCA: isCA)
    }

    private func makeKey(name: String, keyType: KeyType) throws -> URL {
        let key = file(name, "key.pem")
        switch keyType {
        case .ecP256:
            try openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.path])
        case .rsa(let bits):
            try openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)", "-out", key.path])
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
        return key
    }

    /// A config usable both by `req` (it needs a [req] section) and as an `-extfile`.
    private func writeExtensions(name: String, lines: [String]) throws -> URL {
        let url = file(name, "ext.cnf")
        let text = "[req]\ndistinguished_name = dn\n[dn]\n[ext]\n" + lines.joined(separator: "\n") + "\n"
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    private func file(_ name: String, _ suffix: String) -> URL {
        let safe = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        return directory.appendingPathComponent("\(safe).\(suffix)")
    }

    /// A positive random 63-bit serial: certificates from one test must not share serials.
    private func randomSerial() -> String {
        "0x" + String(UInt64.random(in: 1...UInt64(Int64.max)), radix: 16)
    }

    static func typedSAN(_ entry: String) -> String {
        if entry.contains(":") && entry.split(separator: ":", maxSplits: 1)[0].allSatisfy(\.isLetter)
            && !isIPAddress(entry) {
            return entry  // already typed: DNS:, IP:, URI:, email:
        }
        return isIPAddress(entry) ? "IP:\(entry)" : "DNS:\(entry)"
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try Command.runBlocking(try Tools.require("openssl"), arguments, input: nil)
        guard result.status == 0 else {
            throw TestKitError("openssl \(arguments.prefix(2).joined(separator: " ")) failed (\(result.status)): \(result.output)")
        }
    }
}

/// Runs a short command to completion and collects its output (stdout and stderr together).
public enum Command {
    public struct Result: Sendable {
        public let status: Int32
        public let output: String
    }

    /// Runs `executable` to its end; `input`, when given, is written to its standard input. The
    /// pipe read and the wait for its exit block, so they happen on a thread of their own.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil) async throws -> Result {
        try await OwnThread.run((executable as NSString).lastPathComponent) {
            try runBlocking(executable, arguments, input: input)
        }
    }

    /// `run` on the calling thread, which it blocks until the command ends: for the benchmark's
    /// figures and the kit's own blocking forms.
    @available(*, noasync, message: "blocks its thread: `try await Command.run(...)`")
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> Result {
        try runBlocking(executable, arguments, input: input)
    }

    static func runBlocking(_ executable: String, _ arguments: [String], input: String?) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = input.map { _ in Pipe() }
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()
        if let stdin, let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
