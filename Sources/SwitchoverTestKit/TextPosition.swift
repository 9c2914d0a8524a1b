import Foundation

/// Line and column (1-based, as diagnostics count) of the first occurrence of `marker` in
/// `text`: where a `FILE:LINE:COL` diagnostic about that text must point. Columns count Unicode
/// scalars, as libyaml's marks do.
public func position(of marker: String, in text: String) -> (line: Int, column: Int)? {
    guard let range = text.range(of: marker) else { return nil }
    let before = text[..<range.lowerBound]
    let line = before.filter { $0 == "\n" }.count + 1
    let lineStart = before.lastIndex(of: "\n").map { before.index(after: $0) } ?? before.startIndex
    return (line, before[lineStart...].unicodeScalars.count + 1)
}
