import Foundation

/// A value that must never be printed: an AWS secret access key or session token. Every way
/// Swift turns a value into text (`description`, `debugDescription`, `dump`, a `Mirror`, string
/// interpolation, swift-log metadata, a Swift Testing failure message) shows `<redacted>`; only
/// the signer reads the value (`reveal`, internal to this module).
public struct AWSSecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) { self.value = value }

    /// The text itself: for signing, and for scrubbing it out of an error message a server echoed.
    var reveal: String { value }

    public var isEmpty: Bool { value.isEmpty }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// Credentials as every AWS tool resolves them, first match wins:
/// 1. the environment: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with `AWS_SESSION_TOKEN`
///    (or its older name `AWS_SECURITY_TOKEN`) when the keys are temporary;
/// 2. the profile `AWS_PROFILE` (default `default`) in the shared credentials file
///    `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`): `aws_access_key_id`,
///    `aws_secret_access_key`, `aws_session_token`.
///
/// Not read (yet): `~/.aws/config`, SSO, `credential_process`, assume-role profiles, the EC2/ECS
/// metadata services. A coordinator runs where someone put keys for it; the error for missing
/// credentials says where it looked, so an operator used to one of those sees what to export.
///
/// The secret key and the token are `AWSSecret`s: no description, error, log line, journal
/// entry or report can show them.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Not a secret (it names the key; AWS prints it in its own errors), but shown only in part.
    public let accessKeyId: String
    public let secretAccessKey: AWSSecret
    public let sessionToken: AWSSecret?
    /// Where they came from, for messages: `environment` or `profile default in /root/.aws/credentials`.
    public let source: String

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "given") {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = AWSSecret(secretAccessKey)
        self.sessionToken = sessionToken.flatMap { $0.isEmpty ? nil : AWSSecret($0) }
        self.source = source
    }

    /// `AKIA…WXYZ from environment (session token)`: enough to tell which key, never the secret.
    public var description: String {
        let shown = accessKeyId.count > 8 ? "\(accessKeyId.prefix(4))…\(accessKeyId.suffix(4))" : "…"
        return "\(shown) from \(source)\(sessionToken == nil ? "" : " (session token)")"
    }

    public var debugDescription: String { "AWSCredentials(\(description))" }

    /// Resolves credentials as described on the type. `environment` and `homeDirectory` are
    /// parameters so tests need not touch the process's own.
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment,
                               homeDirectory: String? = nil) throws(AWSError) -> AWSCredentials {
        func value(_ name: String) -> String? {
            guard let v = environment[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return v
        }
        let keyId = value("AWS_ACCESS_KEY_ID")
        let secret = value("AWS_SECRET_ACCESS_KEY")
        switch (keyId, secret) {
        case let (keyId?, secret?):
            return AWSCredentials(accessKeyId: keyId, secretAccessKey: secret,
                                  sessionToken: value("AWS_SESSION_TOKEN") ?? value("AWS_SECURITY_TOKEN"), source: "environment")
        case (_?, nil):
            throw AWSError(.credentials, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither to use a profile")
        case (nil, _?):
            throw AWSError(.credentials, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not: set both, or neither to use a profile")
        case (nil, nil):
            break
        }

        let profile = value("AWS_PROFILE") ?? "default"
        let home = homeDirectory ?? value("HOME") ?? FileManager.default.homeDirectoryForCurrentUser.path
        let path = expandingTilde(value("AWS_SHARED_CREDENTIALS_FILE") ?? "~/.aws/credentials", home: home)
        let notInEnvironment = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"
        guard let data = FileManager.default.contents(atPath: path) else {
            let why = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw AWSError(.credentials, "no AWS credentials: \(notInEnvironment), and the shared credentials file \(path) \(why) (profile '\(profile)')")
        }
        let sections = parseINI(String(decoding: data, as: UTF8.self))
        guard let section = sections[profile] else {
            let known = sections.keys.sorted()
            throw AWSError(.credentials, "no AWS credentials: \(notInEnvironment), and \(path) has no profile '\(profile)'"
                + (known.isEmpty ? "" : " (it has: \(known.joined(separator: ", ")))"))
        }
        guard let fileKeyId = section["aws_access_key_id"], !fileKeyId.isEmpty else {
            throw AWSError(.credentials, "profile '\(profile)' in \(path) has no aws_access_key_id")
        }
        guard let fileSecret = section["aws_secret_access_key"], !fileSecret.isEmpty else {
            throw AWSError(.credentials, "profile '\(profile)' in \(path) has no aws_secret_access_key")
        }
        return AWSCredentials(accessKeyId: fileKeyId, secretAccessKey: fileSecret,
                              sessionToken: section["aws_session_token"] ?? section["aws_security_token"],
                              source: "profile '\(profile)' in \(path)")
    }

    static func expandingTilde(_ path: String, home: String) -> String {
        if path == "~" { return home }
        if path.hasPrefix("~/") { return home + path.dropFirst() }
        return path
    }

    /// The shared credentials file's INI, as botocore's parser reads what matters here:
    /// `[section]` headers (surrounding blanks dropped), `key = value` or `key: value` lines,
    /// keys case-insensitive, comment lines starting with `#` or `;`. Indented continuation
    /// lines (nested settings in `~/.aws/config`) are skipped; a repeated key takes the last value.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let section = current, rawLine.first.map({ $0 != " " && $0 != "\t" }) ?? false else { continue }
            guard let separator = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            let key = line[..<separator].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: separator)...].trimmingCharacters(in: .whitespaces)
            sections[section, default: [:]][key] = value
        }
        return sections
    }
}
