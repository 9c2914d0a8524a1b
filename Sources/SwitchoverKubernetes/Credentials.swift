import Foundation
import Synchronization

/// The credential a request carries: a bearer token, or a client certificate and key, from the
/// kubeconfig's user or from its exec plugin (cached until its `expirationTimestamp`).
public struct KubeCredential: Sendable {
    public var token: String?
    public var clientCertificatePEM: Data?
    public var clientKeyPEM: Data?
    public var expiresAt: Date?
}

/// Runs a kubeconfig user's exec credential plugin (`client.authentication.k8s.io/v1` or
/// `v1beta1` `ExecCredential`) as kubectl does: the command with its args, the process's
/// environment plus the plugin's `env`, and `KUBERNETES_EXEC_INFO` describing the request; its
/// stdout is the credential. What it prints is never logged.
public final class ExecCredentialPlugin: Sendable {
    public static let versions = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
    let config: Kubeconfig.ExecConfig
    let context: String
    let timeout: TimeInterval
    private let cached = Mutex<KubeCredential?>(nil)
    /// Held while the plugin runs: callers at the same time (the roots and the chain read at
    /// once) wait for its credential instead of running it again.
    private let running = NSLock()

    public init(config: Kubeconfig.ExecConfig, context: String, timeout: TimeInterval = 30) {
        self.config = config
        self.context = context
        self.timeout = timeout
    }

    /// The cached credential while it has not expired (with 10 s to spare), else a new one.
    /// Blocks while the plugin runs: call it off Swift's cooperative pool (`KubernetesClient` runs
    /// it on a thread of its own).
    public func credential(now: Date = Date()) throws(KubeError) -> KubeCredential {
        running.lock()
        defer { running.unlock() }
        if let credential = cached.withLock({ $0 }), credential.expiresAt.map({ $0.timeIntervalSince(now) > 10 }) ?? true {
            return credential
        }
        let fresh = try run(now: now)
        cached.withLock { $0 = fresh }
        return fresh
    }

    /// Forgets the cached credential (the API server refused it: kubectl asks the plugin again once).
    public func invalidate() { cached.withLock { $0 = nil } }

    func run(now: Date) throws(KubeError) -> KubeCredential {
        let who = "context '\(context)': exec plugin \(config.command)"
        guard Self.versions.contains(config.apiVersion) else {
            throw KubeError(.credential, "\(who): apiVersion \(config.apiVersion) is not supported (\(Self.versions.joined(separator: ", ")))")
        }
        var environment = ProcessInfo.processInfo.environment
        for (name, value) in config.env { environment[name] = value }
        environment["KUBERNETES_EXEC_INFO"] = #"{"apiVersion":"\#(config.apiVersion)","kind":"ExecCredential","spec":{"interactive":false}}"#
        var process = Process()
        var out = Pipe(), err = Pipe()
        // ETXTBSY ("text file busy") means the plugin's file is still open for writing somewhere,
        // often only for an instant (it is being replaced, or another thread's fork inherited the
        // descriptor that wrote it): asked again a few times, as Go's os/exec does.
        for attempt in 1...5 {
            process = Process()
            if config.command.contains("/") {
                process.executableURL = URL(fileURLWithPath: config.command)
                process.arguments = config.args
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [config.command] + config.args
            }
            process.environment = environment
            out = Pipe()
            err = Pipe()
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            do {
                try process.run()
                break
            } catch {
                let busy = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError).map { $0.domain == NSPOSIXErrorDomain && $0.code == Int(ETXTBSY) } ?? false
                guard busy, attempt < 5 else { throw KubeError(.credential, "\(who) could not be started: \(error)") }
                Thread.sleep(forTimeInterval: 0.02 * Double(attempt))
            }
        }
        // Read both pipes to their ends on threads of their own (a plugin writing much to stderr
        // must not block on a full pipe), with a deadline.
        let read = Mutex<[Int: Data]>([:])
        let group = DispatchGroup()
        for (index, pipe) in [out, err].enumerated() {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                read.withLock { $0[index] = data }
                group.leave()
            }
        }
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw KubeError(.credential, "\(who) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            // Its stderr says why (a login needed, say); the first line only, as the plugin wrote it.
            let said = String(decoding: read.withLock { $0[1] ?? Data() }, as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            throw KubeError(.credential, "\(who) exited \(process.terminationStatus)" + (said.isEmpty ? "" : ": \(said.prefix(200))"))
        }
        guard let object = try? JSONSerialization.jsonObject(with: read.withLock { $0[0] ?? Data() }) as? [String: Any] else {
            throw KubeError(.credential, "\(who) did not print an ExecCredential (JSON)")
        }
        guard object["kind"] as? String == "ExecCredential", let apiVersion = object["apiVersion"] as? String else {
            throw KubeError(.credential, "\(who) printed something other than an ExecCredential")
        }
        guard apiVersion == config.apiVersion else {
            throw KubeError(.credential, "\(who) answered \(apiVersion), not the \(config.apiVersion) the kubeconfig asks for")
        }
        let status = object["status"] as? [String: Any] ?? [:]
        var credential = KubeCredential(token: status["token"] as? String,
                                        clientCertificatePEM: (status["clientCertificateData"] as? String).map { Data($0.utf8) },
                                        clientKeyPEM: (status["clientKeyData"] as? String).map { Data($0.utf8) })
        guard credential.token != nil || (credential.clientCertificatePEM != nil && credential.clientKeyPEM != nil) else {
            throw KubeError(.credential, "\(who): its ExecCredential has neither status.token nor clientCertificateData and clientKeyData")
        }
        if let text = status["expirationTimestamp"] as? String {
            guard let expires = RFC3339.date(text) else {
                throw KubeError(.credential, "\(who): expirationTimestamp \(text) is not an RFC 3339 time")
            }
            guard expires > now else {
                throw KubeError(.expiredCredential, "\(who) returned a credential that expired at \(text); "
                                + "log in again with the cluster's tool (the plugin's own login), then retry")
            }
            credential.expiresAt = expires
        }
        return credential
    }
}

/// RFC 3339 times as Kubernetes writes them (`2026-12-03T10:00:00Z`, fractions and offsets
/// allowed), by integer arithmetic: no formatter, no locale.
enum RFC3339 {
    static func date(_ text: String) -> Date? {
        let b = Array(text.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var value = 0
            for byte in b[from..<(from + count)] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84 || b[10] == 116, b[13] == 58, b[16] == 58,
              let year = number(0, 4), let month = number(5, 2), let day = number(8, 2),
              let hour = number(11, 2), let minute = number(14, 2), let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var index = 19
        var fraction = 0.0
        if index < b.count, b[index] == 46 {
            index += 1
            var scale = 0.1
            let start = index
            while index < b.count, (48...57).contains(b[index]) {
                fraction += Double(b[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        guard index < b.count else { return nil }
        var offset = 0
        if b[index] == 90 || b[index] == 122 {
            index += 1
        } else if b[index] == 43 || b[index] == 45, let h = number(index + 1, 2), b.count > index + 3, b[index + 3] == 58,
                  let m = number(index + 4, 2) {
            offset = (h * 60 + m) * 60 * (b[index] == 43 ? 1 : -1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }
}
