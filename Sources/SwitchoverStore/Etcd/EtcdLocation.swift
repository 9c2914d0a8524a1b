import Foundation
import SwitchoverNet

/// `--state etcd://HOST:PORT[,HOST:PORT...]/PREFIX` (or `etcds://` for TLS), parsed and checked:
/// every endpoint a host and a port, a prefix of printable ASCII. A malformed one is refused
/// with what is wrong in it, before anything is asked of any server.
public struct EtcdLocation: Sendable, Hashable, CustomStringConvertible {
    public var secure: Bool
    /// `host:port` (`[v6]:port`), in the order given: the order they are tried in.
    public var endpoints: [String]
    /// Starts with `/`, never ends with one: `/switchover/prod`.
    public var prefix: String

    public static func isEtcd(_ argument: String) -> Bool {
        argument.hasPrefix("etcd://") || argument.hasPrefix("etcds://")
    }

    public init(parsing argument: String) throws {
        func refuse(_ why: String) -> StoreError {
            StoreError(.open, "--state \(argument): \(why); the form is etcd://HOST:PORT[,HOST:PORT...]/PREFIX (etcds:// for TLS)")
        }
        if argument.hasPrefix("etcds://") {
            secure = true
        } else if argument.hasPrefix("etcd://") {
            secure = false
        } else {
            throw refuse("not an etcd:// URL")
        }
        let rest = argument.dropFirst(secure ? 8 : 7)
        guard let slash = rest.firstIndex(of: "/") else { throw refuse("no /PREFIX after the endpoints") }
        let hosts = rest[..<slash]
        var path = String(rest[slash...])
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        guard path.count > 1 else { throw refuse("the prefix is empty: name one, such as /switchover/prod") }
        guard path.allSatisfy({ $0.isASCII && ($0.asciiValue ?? 0) > 0x20 && $0 != "\u{7F}" }) else {
            throw refuse("the prefix '\(path)' has a space, a control character or non-ASCII")
        }
        guard !path.contains("//") else { throw refuse("the prefix '\(path)' has an empty segment (//)") }
        guard !path.contains("?"), !path.contains("#") else { throw refuse("a query or fragment is not part of the form") }
        guard !hosts.isEmpty else { throw refuse("no endpoint") }
        var endpoints: [String] = []
        for item in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            let endpoint = String(item)
            guard !endpoint.isEmpty else { throw refuse("an empty endpoint between commas") }
            guard !endpoint.contains("@") else { throw refuse("credentials in the URL are not supported; use --etcd-cert and --etcd-key") }
            let host: Substring, port: Substring
            if endpoint.hasPrefix("[") {
                guard let close = endpoint.firstIndex(of: "]"), endpoint[endpoint.index(after: close)...].hasPrefix(":") else {
                    throw refuse("endpoint '\(endpoint)': an IPv6 address is written [ADDRESS]:PORT")
                }
                host = endpoint[endpoint.index(after: endpoint.startIndex)..<close]
                port = endpoint[endpoint.index(close, offsetBy: 2)...]
            } else {
                let parts = endpoint.split(separator: ":", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw refuse("endpoint '\(endpoint)' is not HOST:PORT") }
                host = parts[0]
                port = parts[1]
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_".contains($0) }) else {
                throw refuse("endpoint '\(endpoint)': '\(host)' is not a host name or address")
            }
            guard let number = Int(port), (1...65535).contains(number) else {
                throw refuse("endpoint '\(endpoint)': the port '\(port)' is not a number from 1 to 65535")
            }
            endpoints.append(endpoint)
        }
        self.endpoints = endpoints
        self.prefix = path
    }

    public var urls: [String] { endpoints.map { (secure ? "https://" : "http://") + $0 } }

    public var description: String { (secure ? "etcds://" : "etcd://") + endpoints.joined(separator: ",") + prefix }
}

/// How to reach etcd and how long a coordinator's lease lasts: `--etcd-cacert`, `--etcd-cert`,
/// `--etcd-key`, `--lease-ttl`.
public struct EtcdOptions: Sendable, Hashable {
    public var caFile: String?
    public var certificateFile: String?
    public var keyFile: String?
    /// The leader lease's TTL (whole seconds; etcd's unit).
    public var leaseTTL: Duration
    public static let defaultLeaseTTL: Duration = .seconds(5)

    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, leaseTTL: Duration = defaultLeaseTTL) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.leaseTTL = leaseTTL
    }

    /// The client for `location`, or why not (a certificate without its key, files that cannot be read).
    public func client(for location: EtcdLocation) throws -> EtcdClient {
        if (certificateFile == nil) != (keyFile == nil) {
            throw StoreError(.open, "--etcd-cert and --etcd-key go together: a client certificate needs its key")
        }
        if !location.secure, caFile != nil || certificateFile != nil {
            throw StoreError(.open, "--etcd-cacert, --etcd-cert and --etcd-key need etcds:// (TLS); \(location) is plain etcd://")
        }
        for (flag, file) in [("--etcd-cacert", caFile), ("--etcd-cert", certificateFile), ("--etcd-key", keyFile)] {
            if let file, !FileManager.default.isReadableFile(atPath: file) {
                throw StoreError(.open, "\(flag) \(file): no such readable file")
            }
        }
        return EtcdClient(endpoints: location.urls,
                          tls: TLSConfiguration(caFile: caFile, clientCertificateFile: certificateFile, clientKeyFile: keyFile))
    }
}
