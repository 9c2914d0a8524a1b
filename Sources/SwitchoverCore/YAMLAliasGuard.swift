/// Refuses, before Yams composes a file, the YAML aliases that could make composing it explode.
///
/// How Yams (6.2, over libyaml) treats aliases: libyaml only reports an alias event; Yams'
/// composer resolves it at once by returning the node it registered for the anchor. The tree
/// shares that node (Swift arrays and strings are copy-on-write), so building it costs the size
/// of the file, however often a node is referred to. What does not share is anything that walks
/// the tree: Yams itself hashes every mapping key to find duplicates, and a key that is an alias
/// of a list of aliases of lists... (the "billion laughs") is hashed node by expanded node. An
/// 805-byte file with such a key kept `validate` busy for minutes. So this guard runs on the
/// text, before Yams:
///
/// - An anchor on a list or mapping, in a file that uses any alias, is refused: only a
///   collection can contain aliases, so with anchors on single values only, nothing expands
///   beyond one value per alias.
/// - At most `maxAliases` aliases per file: each may stand for a value up to the file's size, and
///   Yams hashes each one used as a key.
///
/// The scan is lexical and errs on the side of seeing too much: it takes every `&name` and
/// `*name` that could start a YAML token (after a blank, a line start, a flow indicator, `:`,
/// `?`, `-` or a quote), also inside comments and quoted text. Switchover's own files need
/// neither anchors nor aliases, and real files are far from these limits, so a false alarm
/// needs a contrived file. An anchor followed by the end of its line counts as an anchor on a
/// collection (its value starts on the next line): put an anchored single value on its line.
enum YAMLAliasGuard {
    /// The most aliases (`*name`) one file may hold.
    static let maxAliases = ConfigurationLimits.aliases

    struct Problem: Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    static func check(_ text: String) -> Problem? {
        let bytes = Array(text.utf8)
        var aliases = 0
        var firstAlias: (line: Int, column: Int)?
        var collectionAnchor: (line: Int, column: Int, name: String)?
        var line = 1, column = 1
        var previous: UInt8 = UInt8(ascii: "\n")
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "&") || byte == UInt8(ascii: "*"), startsToken(after: previous),
               index + 1 < bytes.count, isAnchorCharacter(bytes[index + 1]) {
                var end = index + 1
                while end < bytes.count, isAnchorCharacter(bytes[end]) { end += 1 }
                let name = String(decoding: bytes[(index + 1)..<end], as: UTF8.self)
                if byte == UInt8(ascii: "*") {
                    aliases += 1
                    if firstAlias == nil { firstAlias = (line, column) }
                    if aliases > maxAliases {
                        return Problem(line: line, column: column,
                                       message: "more than \(maxAliases) YAML aliases (*name) in one file; Switchover reads at most \(maxAliases): each may stand for a value as large as the file")
                    }
                } else if collectionAnchor == nil, anchorsCollection(bytes, after: end) {
                    collectionAnchor = (line, column, name)
                }
            }
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                // Columns count characters (Unicode scalars), as libyaml's marks do.
                column += 1
            }
            previous = byte
            index += 1
        }
        if let anchor = collectionAnchor, let alias = firstAlias {
            return Problem(line: anchor.line, column: anchor.column,
                           message: "YAML anchor '&\(anchor.name)' is on a list or mapping (or its value does not start on its line) in a file with aliases (first at \(alias.line):\(alias.column)); Switchover reads anchors on single values only: an alias of a list or mapping can expand beyond any size, so repeat the list or mapping instead")
        }
        return nil
    }

    /// Where a YAML token can begin: libyaml starts one after blanks and indicators, never in
    /// the middle of a word.
    private static func startsToken(after byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"),
             UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ","),
             UInt8(ascii: ":"), UInt8(ascii: "?"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"):
            return true
        default:
            return false
        }
    }

    /// libyaml's anchor names: ASCII letters, digits, `_` and `-`.
    private static func isAnchorCharacter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
    }

    /// Whether the node an anchor ending at `index` names may be a list or mapping: a flow
    /// collection, a block entry or key indicator, or nothing more on the line (the value is
    /// below it). A tag between anchor and value is skipped.
    private static func anchorsCollection(_ bytes: [UInt8], after index: Int) -> Bool {
        func isBlank(_ i: Int) -> Bool { i >= bytes.count || [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(bytes[i]) }
        func skipSpaces(_ i: Int) -> Int {
            var i = i
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\t") { i += 1 }
            return i
        }
        var i = skipSpaces(index)
        if i < bytes.count, bytes[i] == UInt8(ascii: "!") {
            while !isBlank(i) { i += 1 }
            i = skipSpaces(i)
        }
        guard i < bytes.count else { return true }
        switch bytes[i] {
        case UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "?"):
            return isBlank(i + 1)
        default:
            return false
        }
    }
}
