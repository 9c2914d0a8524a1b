import Foundation

/// One problem found in the configuration or the command line, printed as
/// `FILE:LINE:COL: message` so editors and terminals can jump to it.
///
/// A problem that belongs to no line (a missing folder, a name given on the command line) has
/// line 0 and prints as `FILE: message`; `validate --output json` still gives line and column
/// as 0 there.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible, Comparable {
    public var location: SourceLocation
    public var message: String
    /// How many further problems this line stands for: a file's problems are shown up to a
    /// limit, and one line `… and N more problems in this file` says the rest. 0 for a problem
    /// of its own. Counts (`N problems in M files`) add it.
    public var omitted: Int = 0

    public init(location: SourceLocation, message: String) {
        self.location = location
        self.message = message
    }

    public init(file: String, line: Int, column: Int, message: String) {
        self.init(location: SourceLocation(file: file, line: line, column: column), message: message)
    }

    /// Where problems about the command line's arguments (FROM, TO, --policy) are reported.
    public static let commandLine = "<command line>"

    public var description: String {
        if location.line == 0 { return "\(location.file): \(message)" }
        return "\(location): \(message)"
    }

    /// By file, then line, then column, then message: the order `validate` prints them in.
    public static func < (lhs: Diagnostic, rhs: Diagnostic) -> Bool {
        (lhs.location.file, lhs.location.line, lhs.location.column, lhs.message)
            < (rhs.location.file, rhs.location.line, rhs.location.column, rhs.message)
    }
}

/// How a value read from a file appears in a message: in single quotes, at most 60 characters
/// of it, control characters and line breaks escaped so one problem stays one line.
///
/// A file may hold a 100 KB scalar and refer to it 10,000 times through a YAML alias; quoting it
/// whole in every diagnostic once made `validate` write a gigabyte. What is cut is counted, so
/// the message still says how long the value was.
func quoted(_ text: String, limit: Int = 60) -> String {
    var shown = ""
    var count = 0
    var truncated = false
    for character in text {
        if count == limit {
            truncated = true
            break
        }
        count += 1
        for scalar in character.unicodeScalars {
            switch scalar {
            case "\n": shown += "\\n"
            case "\r": shown += "\\r"
            case "\t": shown += "\\t"
            default:
                if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
                    shown += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    shown.unicodeScalars.append(scalar)
                }
            }
        }
    }
    guard truncated else { return "'\(shown)'" }
    return "'\(shown)…' (\(text.utf8.count) bytes)"
}

/// Names in a message, each quoted: at most `limit` of them, then how many more.
func list(_ names: [String], limit: Int = 10) -> String {
    let shown = names.prefix(limit).map { quoted($0) }.joined(separator: ", ")
    return names.count > limit ? "\(shown) and \(names.count - limit) more" : shown
}

/// The known name closest to `word` by edit distance, when it is close enough to be a likely typo
/// (at most a third of the word's length, and at least 2, edits). Case is ignored.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let length = word.count
    let limit = max(2, length / 3)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        // The distance is at least the difference in length: a long word (a pasted blob as a
        // key) is never near a key name, and is not run through the quadratic table.
        guard abs(candidate.count - length) <= limit else { continue }
        let distance = editDistance(word.lowercased(), candidate.lowercased())
        guard distance <= limit else { continue }
        if best == nil || distance < best!.distance { best = (candidate, distance) }
    }
    return best?.name
}

/// Levenshtein distance, with a transposition of two neighbours counted as one edit.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { table[i][0] = i }
    for j in 0...b.count { table[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
            }
        }
    }
    return table[a.count][b.count]
}
