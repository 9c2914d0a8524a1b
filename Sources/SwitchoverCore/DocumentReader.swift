import Foundation
import Yams

/// Reads one YAML document node by node and collects every problem instead of stopping at the
/// first, each pinned to the node it is about (Yams' `Node.mark` gives line and column).
///
/// The getters return nil after reporting, so callers simply skip what could not be read and
/// carry on: one run reports all problems of a file.
final class DocumentReader {
    /// The file as it is shown in diagnostics (as given, relative when it was).
    let file: String
    /// The absolute folder of the file, against which relative paths resolve.
    let directory: URL
    /// Problems in the order they were found; at most `keptPerFile` of them.
    private var collected: [Diagnostic] = []
    /// Every problem found, kept or not.
    private(set) var problemCount = 0

    /// At most this many problems of one file are shown, the first by line; one more line says
    /// how many there are besides. A file with thousands of mistakes (a generated list gone
    /// wrong, an alias repeated 10,000 times) is not helped by thousands of lines, and they once
    /// came to a gigabyte.
    static let shownPerFile = 50
    /// Problems beyond this many are only counted, so memory stays bounded whatever the file.
    static let keptPerFile = 1_000

    init(file: String, directory: URL) {
        self.file = file
        self.directory = directory
    }

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    func error(at location: SourceLocation, _ message: String) {
        problemCount += 1
        if collected.count < Self.keptPerFile {
            collected.append(Diagnostic(location: location, message: message))
        }
    }

    /// False once this file's problems are only counted: work that only makes a message
    /// better can be skipped.
    var keepsMore: Bool { collected.count < Self.keptPerFile }

    /// The file's problems as `validate` shows them: sorted, the first `shownPerFile`, then one
    /// line `… and N more problems in this file` (at the first problem not shown) when there are more.
    var diagnostics: [Diagnostic] {
        let sorted = collected.sorted()
        guard problemCount > Self.shownPerFile else { return sorted }
        let more = problemCount - Self.shownPerFile
        var summary = Diagnostic(location: sorted[Self.shownPerFile].location,
                                 message: "… and \(more) more problem\(more == 1 ? "" : "s") in this file")
        summary.omitted = more
        return Array(sorted.prefix(Self.shownPerFile)) + [summary]
    }

    func error(_ node: Node, _ message: String) {
        error(at: location(node), message)
    }

    // MARK: Mappings

    /// A mapping the reader is walking. Unknown keys are reported when it is opened, so a
    /// misspelt key can never be silently ignored.
    struct Fields {
        let reader: DocumentReader
        let node: Node
        let context: String
        private let pairs: [(key: String, keyNode: Node, value: Node)]
        /// Known keys that an unknown key was taken for ("did you mean"): they are not reported
        /// missing as well, so one typo gives one diagnostic.
        private let misspelt: Set<String>

        /// Nil (with a diagnostic) when `node` is not a mapping.
        init?(_ node: Node, context: String, known: [String], reader: DocumentReader) {
            guard case .mapping(let mapping) = node else {
                reader.error(node, "\(context) must be a mapping of keys to values, got \(describe(node))")
                return nil
            }
            self.reader = reader
            self.node = node
            self.context = context
            var pairs: [(String, Node, Node)] = []
            var misspelt: Set<String> = []
            for (key, value) in mapping {
                guard case .scalar(let scalar) = key else {
                    reader.error(key, "keys in \(context) must be plain words, got \(describe(key))")
                    continue
                }
                let name = scalar.string
                if !known.contains(name) {
                    // A suggestion costs an edit distance per known key; past the problems a
                    // file keeps, the line is only counted, so it is not worth computing.
                    if reader.keepsMore, let suggestion = nearest(name, in: known) {
                        misspelt.insert(suggestion)
                        reader.error(key, "unknown key \(quoted(name)) in \(context); did you mean '\(suggestion)'?")
                    } else {
                        reader.error(key, "unknown key \(quoted(name)) in \(context); known keys: \(known.joined(separator: ", "))")
                    }
                    continue
                }
                pairs.append((name, key, value))
            }
            self.pairs = pairs
            self.misspelt = misspelt
        }

        var location: SourceLocation { reader.location(node) }

        func has(_ key: String) -> Bool { pairs.contains { $0.key == key } }

        /// Present, or written misspelt (already reported): checks that something is set use
        /// this, so a typo is not reported twice.
        func mentions(_ key: String) -> Bool { has(key) || misspelt.contains(key) }

        /// The value of `key`, or nil when absent. A key written with no value (`bake:`) is
        /// present with a null value; the typed getters report that.
        func optional(_ key: String) -> Node? {
            pairs.first { $0.key == key }?.value
        }

        /// The node of the key itself, for problems about the key rather than its value.
        func keyNode(_ key: String) -> Node? {
            pairs.first { $0.key == key }?.keyNode
        }

        /// The value of `key`, reporting it as missing (at the mapping) when absent.
        func required(_ key: String) -> Node? {
            if let value = optional(key) { return value }
            if misspelt.contains(key) { return nil }
            reader.error(node, "missing required key '\(key)' in \(context)")
            return nil
        }
    }

    func fields(_ node: Node?, context: String, known: [String]) -> Fields? {
        guard let node else { return nil }
        return Fields(node, context: context, known: known, reader: self)
    }

    // MARK: Scalars

    private func isNull(_ node: Node) -> Bool {
        if case .scalar(let scalar) = node, scalar.style == .plain, node.tag.rawValue == Tag.Name.null.rawValue {
            return true
        }
        return false
    }

    private func tagIs(_ node: Node, _ name: Tag.Name) -> Bool {
        node.tag.rawValue == name.rawValue
    }

    /// Any non-null scalar, as written (`version: 1.28` is the text "1.28", not a number).
    func string(_ node: Node, _ key: String) -> String? {
        guard case .scalar(let scalar) = node else {
            error(node, "'\(key)' must be a single value, got \(describe(node))")
            return nil
        }
        if isNull(node) {
            error(node, "'\(key)' has no value")
            return nil
        }
        return scalar.string
    }

    func nonEmptyString(_ node: Node, _ key: String) -> String? {
        guard let text = string(node, key) else { return nil }
        if text.trimmingCharacters(in: .whitespaces).isEmpty {
            error(node, "'\(key)' must not be empty")
            return nil
        }
        return text
    }

    func int(_ node: Node, _ key: String) -> Int? {
        guard case .scalar(let scalar) = node, tagIs(node, .int), let value = Int(scalar.string) ?? node.int else {
            error(node, "'\(key)' must be a whole number, got \(describe(node))")
            return nil
        }
        return value
    }

    /// A whole number of at least `minimum`.
    func count(_ node: Node, _ key: String, minimum: Int) -> Int? {
        guard let value = int(node, key) else { return nil }
        if value < minimum {
            error(node, minimum == 0
                ? "'\(key)' must not be negative, got \(value)"
                : "'\(key)' must be at least \(minimum), got \(value)")
            return nil
        }
        return value
    }

    func number(_ node: Node, _ key: String) -> Double? {
        guard case .scalar = node, tagIs(node, .int) || tagIs(node, .float), let value = node.float, value.isFinite else {
            error(node, "'\(key)' must be a number, got \(describe(node))")
            return nil
        }
        return value
    }

    /// A fraction between 0 and 1 inclusive; says so when someone wrote a percentage.
    func ratio(_ node: Node, _ key: String) -> Double? {
        guard let value = number(node, key) else { return nil }
        if !(0...1).contains(value) {
            let hint = value > 1 && value <= 100 ? " (a ratio: write \(value / 100) for \(formatNumber(value))%)" : ""
            error(node, "'\(key)' must be between 0 and 1, got \(formatNumber(value))\(hint)")
            return nil
        }
        return value
    }

    func bool(_ node: Node, _ key: String) -> Bool? {
        guard case .scalar = node, tagIs(node, .bool), let value = node.bool else {
            error(node, "'\(key)' must be true or false, got \(describe(node))")
            return nil
        }
        return value
    }

    /// A duration of at most `longest`, and greater than zero unless `zeroAllowed`.
    ///
    /// The bound is checked on the value as written, before it becomes a `Duration`: a value
    /// such as `9223372036854775807s` must be an error at its line, not a trap, and every
    /// value that passes is small enough for the arithmetic that follows (a step's end, the
    /// plan's elapsed time, bake times steps) to stay far inside `Int64` nanoseconds.
    private func boundedDuration(_ node: Node, _ key: String, zeroAllowed: Bool, atMost longest: Duration) -> Duration? {
        guard let text = string(node, key) else { return nil }
        guard let nanoseconds = durationNanoseconds(text) else {
            let hint = Double(text) != nil ? " (a unit is required)" : ""
            error(node, "'\(key)' must be a duration such as 250ms, 30s, 5m, 24h or 30d, got \(quoted(text))\(hint)")
            return nil
        }
        let value = durationFromNanoseconds(nanoseconds)
        if nanoseconds < 0 || (!zeroAllowed && value == .zero) {
            let shown = value.map(formatDuration) ?? quoted(text)
            error(node, zeroAllowed ? "'\(key)' must not be negative, got \(shown)" : "'\(key)' must be greater than 0, got \(shown)")
            return nil
        }
        guard let value, value <= longest else {
            error(node, "'\(key)' must be at most \(formatDuration(longest)), got \(quoted(text))")
            return nil
        }
        return value
    }

    /// A duration that must be longer than zero (a zero bake or interval would spin), and at
    /// most `longest`.
    func positiveDuration(_ node: Node, _ key: String, atMost longest: Duration) -> Duration? {
        boundedDuration(node, key, zeroAllowed: false, atMost: longest)
    }

    /// A duration that may be zero but not negative (a DNS TTL of 0 is real), and at most `longest`.
    func nonNegativeDuration(_ node: Node, _ key: String, atMost longest: Duration) -> Duration? {
        boundedDuration(node, key, zeroAllowed: true, atMost: longest)
    }

    /// An absolute `http://` or `https://` URL with a host.
    func httpURL(_ node: Node, _ key: String) -> URL? {
        guard let text = nonEmptyString(node, key) else { return nil }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            error(node, "'\(key)' must be an http:// or https:// URL, got \(quoted(text))")
            return nil
        }
        return url
    }

    /// A file path; a relative one is resolved against the folder of the file it is written in.
    func path(_ node: Node, _ key: String) -> String? {
        guard let text = nonEmptyString(node, key) else { return nil }
        return resolve(text)
    }

    /// A path to a file that must exist now (certificates): a wrong path is caught by
    /// `validate`, not halfway through a preflight.
    func existingFile(_ node: Node, _ key: String) -> String? {
        guard let path = path(node, key) else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            error(node, "'\(key)': no such file \(quoted(path, limit: 200))")
            return nil
        }
        if isDirectory.boolValue {
            error(node, "'\(key)': \(quoted(path, limit: 200)) is a folder, not a file")
            return nil
        }
        return path
    }

    func resolve(_ path: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardized.path }
        return directory.appendingPathComponent(expanded).standardized.path
    }

    /// `host:port` with a port between 1 and 65535.
    func hostPort(_ node: Node, _ key: String) -> String? {
        guard let text = nonEmptyString(node, key) else { return nil }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port), colon != text.startIndex else {
            error(node, "'\(key)' must be host:port, such as 127.0.0.1:15443, got \(quoted(text))")
            return nil
        }
        return text
    }

    /// A list of at most `limit` entries. A longer list is reported as a whole, at the list,
    /// and none of its entries is read: a list of a million steps gives one line, not a million.
    func sequence(_ node: Node, _ key: String, atMost limit: Int, because reason: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            error(node, "'\(key)' must be a list, got \(describe(node))")
            return nil
        }
        if sequence.count > limit {
            error(node, "'\(key)' has \(sequence.count) entries; at most \(limit) (\(reason))")
            return nil
        }
        return Array(sequence)
    }
}

/// How a node reads in a message: the scalar quoted, or what kind of node it is.
func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
        if scalar.style == .plain && node.tag.rawValue == Tag.Name.null.rawValue { return "nothing" }
        return quoted(scalar.string)
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}


