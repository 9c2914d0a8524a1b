import Foundation

/// Nanoseconds per unit, longest unit first so `formatDuration` can walk the table.
private let durationUnits: [(suffix: String, nanoseconds: Int64)] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
]

/// Parses a configuration duration: `250ms`, `30s`, `5m`, `24h`, `30d`, compounds such as
/// `1m30s`, decimals such as `1.5s`, and a bare `0`.
///
/// A leading `-` is accepted and gives a negative duration, so that the loader can say
/// "must be greater than 0, got -5s" instead of the less helpful "not a duration".
/// Returns nil for anything else, including a number without a unit (`30` is ambiguous:
/// seconds? milliseconds?).
public func parseDuration(_ text: String) -> Duration? {
    var rest = Substring(text.trimmingCharacters(in: .whitespaces))
    var negative = false
    if rest.first == "-" {
        negative = true
        rest = rest.dropFirst()
    }
    if rest == "0" { return .zero }
    guard !rest.isEmpty else { return nil }
    var total: Double = 0
    while !rest.isEmpty {
        let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !number.isEmpty, let value = Double(number) else { return nil }
        rest = rest.dropFirst(number.count)
        let suffix = rest.prefix { $0.isASCII && $0.isLetter }
        guard let unit = durationUnits.first(where: { $0.suffix == suffix }) else { return nil }
        rest = rest.dropFirst(suffix.count)
        total += value * Double(unit.nanoseconds)
    }
    guard total <= Double(Int64.max) else { return nil }
    let nanoseconds = Int64(total.rounded())
    return .nanoseconds(negative ? -nanoseconds : nanoseconds)
}

/// The shortest spelling `parseDuration` reads back to the same value: `250ms`, `1m30s`, `0s`.
public func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    var nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    if nanoseconds == 0 { return "0s" }
    var text = ""
    if nanoseconds < 0 {
        text = "-"
        nanoseconds = -nanoseconds
    }
    for unit in durationUnits where nanoseconds >= unit.nanoseconds {
        text += "\(nanoseconds / unit.nanoseconds)\(unit.suffix)"
        nanoseconds %= unit.nanoseconds
    }
    return text
}

extension Duration {
    /// The duration in seconds as a `Double`, for arithmetic and JSON output.
    public var totalSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
