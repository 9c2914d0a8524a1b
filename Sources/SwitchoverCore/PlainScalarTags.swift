import Yams

/// The YAML 1.1 types of untagged plain scalars (`5` is an int, `yes` a bool, `~` null), as
/// Yams's default resolver gives them, without it: its rules are `NSRegularExpression`s, which
/// load ICU into every command that reads a config file, and Swift's `Regex` costs as many pages
/// of its own parser. The same patterns (Yams's `Resolver.Rule.bool` ... `.value`, in its order)
/// are matched here by hand over the UTF-8 bytes: documents are composed with no rules
/// (`Resolver.basic`) and `typed` gives every untagged scalar the tag those rules would have. A
/// scalar with a tag of its own (`!!str 5`, or quoted: `"5"` is a string) keeps it.
/// `PlainScalarTagsTests` holds it to Yams's resolver, case by case and on random text.
///
/// Mapping keys stay strings: Yams resolves each key's tag while composing (its duplicate-key
/// check hashes them), before `typed` sees it. Switchover reads keys as text, so nothing reads
/// them differently; but a `<<` key is not a merge (Switchover refuses it as an unknown field
/// either way), and `5:` and `"5":` in one mapping are one key written twice.
enum PlainScalarTags {
    /// The tag Yams's default rules give an untagged scalar of this text.
    static func tag(of text: String) -> Tag.Name {
        let bytes = Array(text.utf8)
        if words.bool.contains(text) { return .bool }
        if isInt(bytes) { return .int }
        if isFloat(bytes) { return .float }
        if text == "<<" { return .merge }
        if words.null.contains(text) { return .null }
        if isTimestamp(bytes) { return .timestamp }
        if text == "=" { return .value }
        return .str
    }

    private static let words = (
        bool: Set(["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
                   "on", "On", "ON", "off", "Off", "OFF"]),
        null: Set(["~", "null", "Null", "NULL", ""])
    )

    /// A cursor over the bytes, each step a piece of one pattern.
    private struct Scan {
        let bytes: [UInt8]
        var at = 0
        var atEnd: Bool { at == bytes.count }
        var next: UInt8? { at < bytes.count ? bytes[at] : nil }

        /// One byte of `set`.
        mutating func one(_ set: (UInt8) -> Bool) -> Bool {
            guard let byte = next, set(byte) else { return false }
            at += 1
            return true
        }
        mutating func one(of characters: String) -> Bool { one { characters.utf8.contains($0) } }
        /// As many bytes of `set` as there are; how many.
        @discardableResult
        mutating func run(_ set: (UInt8) -> Bool) -> Int {
            let start = at
            while let byte = next, set(byte) { at += 1 }
            return at - start
        }
        mutating func word(_ text: String) -> Bool {
            let word = Array(text.utf8)
            guard bytes.count - at >= word.count, Array(bytes[at..<at + word.count]) == word else { return false }
            at += word.count
            return true
        }
        mutating func sign() { _ = one(of: "+-") }
        /// `(?::[0-5]?[0-9])+`: at least one `:` with one digit, or two whose first is 0–5.
        mutating func sexagesimal() -> Bool {
            var groups = 0
            while next == UInt8(ascii: ":") {
                let start = at
                at += 1
                let digits = run(isDigit)
                guard digits == 1 || (digits == 2 && bytes[at - 2] <= UInt8(ascii: "5")) else {
                    at = start
                    return false
                }
                groups += 1
            }
            return groups > 0
        }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    private static func digitOrUnderscore(_ byte: UInt8) -> Bool { isDigit(byte) || byte == 95 }

    /// Whether one of the alternatives, each from the start, matches the whole text.
    private static func any(_ bytes: [UInt8], _ alternatives: [(inout Scan) -> Bool]) -> Bool {
        alternatives.contains { alternative in
            var scan = Scan(bytes: bytes)
            return alternative(&scan) && scan.atEnd
        }
    }

    /// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(?:0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ |
    /// [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+`
    private static func isInt(_ bytes: [UInt8]) -> Bool {
        any(bytes, [
            { $0.sign(); return $0.word("0b") && $0.run { $0 == 48 || $0 == 49 || $0 == 95 } > 0 },
            { $0.sign(); return $0.word("0") && ($0.one(of: "o") || true) && $0.run { ($0 >= 48 && $0 <= 55) || $0 == 95 } > 0 },
            { $0.sign(); return $0.word("0") || ($0.one { $0 >= 49 && $0 <= 57 } && $0.run(digitOrUnderscore) >= 0) },
            { $0.sign(); return $0.word("0x") && $0.run { digitOrUnderscore($0) || "abcdefABCDEF".utf8.contains($0) } > 0 },
            { $0.sign(); return $0.one { $0 >= 49 && $0 <= 57 } && $0.run(digitOrUnderscore) >= 0 && $0.sexagesimal() },
        ])
    }

    /// `[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)? | \.[0-9_]+(?:[eE][-+][0-9]+)? |
    /// [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)`
    private static func isFloat(_ bytes: [UInt8]) -> Bool {
        any(bytes, [
            { scan in
                scan.sign()
                guard scan.one(isDigit) else { return false }
                scan.run(digitOrUnderscore)
                if scan.one(of: ".") { scan.run(digitOrUnderscore) }
                if scan.one(of: "eE") {
                    scan.sign()
                    return scan.run(isDigit) > 0
                }
                return true
            },
            { scan in
                guard scan.one(of: "."), scan.run(digitOrUnderscore) > 0 else { return false }
                if scan.one(of: "eE") { return scan.one(of: "+-") && scan.run(isDigit) > 0 }
                return true
            },
            { scan in
                scan.sign()
                guard scan.one(isDigit) else { return false }
                scan.run(digitOrUnderscore)
                guard scan.sexagesimal(), scan.one(of: ".") else { return false }
                scan.run(digitOrUnderscore)
                return true
            },
            { $0.sign(); return $0.word(".inf") || $0.word(".Inf") || $0.word(".INF") },
            { $0.word(".nan") || $0.word(".NaN") || $0.word(".NAN") },
        ])
    }

    /// `[0-9]{4}-[0-9]{2}-[0-9]{2} | [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}
    /// (?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?`
    private static func isTimestamp(_ bytes: [UInt8]) -> Bool {
        func digits(_ scan: inout Scan, _ range: ClosedRange<Int>) -> Bool { range.contains(scan.run(isDigit)) }
        func blank(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 }
        return any(bytes, [
            { digits(&$0, 4...4) && $0.one(of: "-") && digits(&$0, 2...2) && $0.one(of: "-") && digits(&$0, 2...2) },
            { scan in
                guard digits(&scan, 4...4), scan.one(of: "-"), digits(&scan, 1...2), scan.one(of: "-"), digits(&scan, 1...2),
                      scan.one(of: "Tt") || scan.run(blank) > 0,
                      digits(&scan, 1...2), scan.one(of: ":"), digits(&scan, 2...2), scan.one(of: ":"), digits(&scan, 2...2)
                else { return false }
                if scan.one(of: ".") { scan.run(isDigit) }
                guard !scan.atEnd else { return true }
                scan.run(blank)
                if scan.one(of: "Z") { return true }
                guard scan.one(of: "+-"), digits(&scan, 1...2) else { return false }
                if scan.one(of: ":") { return digits(&scan, 2...2) }
                return true
            },
        ])
    }

    /// `node` with every untagged scalar tagged (mappings and lists keep their tags, style,
    /// place in the file and anchor; keys are already strings, see above).
    static func typed(_ node: Node) -> Node {
        switch node {
        case .scalar(var scalar):
            if scalar.tag.rawValue == Tag.Name.implicit.rawValue {
                scalar.tag = Tag(tag(of: scalar.string), .basic, .default)
            }
            return .scalar(scalar)
        case .mapping(let mapping):
            return .mapping(Node.Mapping(mapping.map { (typed($0.key), typed($0.value)) },
                                         mapping.tag, mapping.style, mapping.mark, mapping.anchor))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(typed), sequence.tag, sequence.style, sequence.mark, sequence.anchor))
        case .alias:
            return node
        }
    }
}
