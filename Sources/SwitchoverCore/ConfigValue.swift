import Foundation
import Yams

/// A value in a configuration file being read, as a driver's decoder sees it
/// (`DriverDescription.decodeSection`): the loader's own typed reads, each reporting a problem
/// at the value's FILE:LINE:COL and returning nil, so that a driver's section gets the same
/// diagnostics as the rest of the file and its driver needs neither Yams nor the reader.
///
/// Not `Sendable`: it belongs to one file's read, which runs on one thread, start to end.
public struct ConfigValue {
    let reader: DocumentReader
    let node: Node
    /// The key this is the value of, as messages name it (`socket`, `haproxy`).
    public let key: String

    init(reader: DocumentReader, node: Node, key: String) {
        self.reader = reader
        self.node = node
        self.key = key
    }

    /// Where the value is written.
    public var location: SourceLocation { reader.location(node) }

    /// Reports a problem with this value, at its FILE:LINE:COL.
    public func error(_ message: String) { reader.error(node, message) }

    /// The value as a mapping whose keys must be among `known` (an unknown key is an error with
    /// a "did you mean"); `context` names it in messages (`spec.loadBalancer.haproxy`).
    public func mapping(context: String, known: [String]) -> ConfigMapping? {
        reader.fields(node, context: context, known: known).map(ConfigMapping.init)
    }

    /// Any single value, as written.
    public func string() -> String? { reader.string(node, key) }
    /// A single value that is not blank.
    public func nonEmptyString() -> String? { reader.nonEmptyString(node, key) }
    /// A file path, a relative one resolved against the folder of the file it is written in.
    public func path() -> String? { reader.path(node, key) }
    /// An absolute `http://` or `https://` URL with a host.
    public func httpURL() -> URL? { reader.httpURL(node, key) }

    /// The value as a list of at most `limit` entries (a longer one is one problem, `reason`
    /// saying why there is a limit).
    public func list(atMost limit: Int, because reason: String) -> [ConfigValue]? {
        reader.sequence(node, key, atMost: limit, because: reason)?.enumerated().map {
            ConfigValue(reader: reader, node: $0.element, key: "\(key)[\($0.offset)]")
        }
    }

    /// The value as a mapping whose keys are names chosen by the person (services), in the order
    /// written: each key as a value of its own (to report a problem with the name) and its value.
    public func entries(atMost limit: Int, because reason: String) -> [(name: ConfigValue, value: ConfigValue)]? {
        guard case .mapping(let mapping) = node else {
            error("'\(key)' must be a mapping, got \(describe(node))")
            return nil
        }
        if mapping.count > limit {
            error("'\(key)' has \(mapping.count) entries; at most \(limit) (\(reason))")
            return nil
        }
        return mapping.map { pair in
            (ConfigValue(reader: reader, node: pair.key, key: key),
             ConfigValue(reader: reader, node: pair.value, key: "\(key).\(pair.key.scalar?.string ?? "?")"))
        }
    }

    /// `path` resolved as `path()` resolves it, for a value that is a path only in some forms
    /// (HAProxy's socket: a path, or `tcp://host:port`).
    public func resolvePath(_ path: String) -> String { reader.resolve(path) }

    /// How messages quote a value read from a file: in single quotes, shortened, control
    /// characters escaped, so one problem stays one short line.
    public static func quoted(_ text: String) -> String { SwitchoverCore.quoted(text) }
}

/// A mapping in a configuration file being read, its unknown keys already reported (see
/// `ConfigValue.mapping`).
public struct ConfigMapping {
    let fields: DocumentReader.Fields

    /// Where the mapping is written.
    public var location: SourceLocation { fields.location }

    /// Reports a problem with the mapping as a whole, at its FILE:LINE:COL.
    public func error(_ message: String) { fields.reader.error(fields.node, message) }

    /// True when `key` is present.
    public func has(_ key: String) -> Bool { fields.has(key) }

    /// True when `key` is present or was written misspelt (already reported): checks that
    /// something is set use this, so that one typo gives one problem.
    public func mentions(_ key: String) -> Bool { fields.mentions(key) }

    /// The value of `key`, nil when absent.
    public func optional(_ key: String) -> ConfigValue? {
        fields.optional(key).map { ConfigValue(reader: fields.reader, node: $0, key: key) }
    }

    /// The value of `key`; when absent, a problem "missing required key" at the mapping, and nil.
    public func required(_ key: String) -> ConfigValue? {
        fields.required(key).map { ConfigValue(reader: fields.reader, node: $0, key: key) }
    }
}
