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

/// The known name closest to `word` by edit distance, when it is close enough to be a likely typo
/// (at most a third of the word's length, and at least 2, edits). Case is ignored.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let limit = max(2, word.count / 3)
    var best: (name: String, distance: Int)?
    for candidate in candidates {
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
