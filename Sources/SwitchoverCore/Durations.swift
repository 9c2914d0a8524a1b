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
/// seconds? milliseconds?), and for a value whose nanoseconds do not fit in an `Int64` (about
/// 292 years): the configuration loader bounds every field far below that and says so.
public func parseDuration(_ text: String) -> Duration? {
    guard let nanoseconds = durationNanoseconds(text) else { return nil }
    return durationFromNanoseconds(nanoseconds)
}

/// The signed length of a duration as written, in nanoseconds, as a `Double`: never traps, so
/// the loader can tell "not a duration" (nil) from "a duration far too long" (a huge number).
/// Infinite when the digits are beyond `Double`.
func durationNanoseconds(_ text: String) -> Double? {
    var rest = Substring(text.trimmingCharacters(in: .whitespaces))
    var negative = false
    if rest.first == "-" {
        negative = true
        rest = rest.dropFirst()
    }
    if rest == "0" { return 0 }
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
    return negative ? -total : total
}

/// `nanoseconds` rounded to a `Duration`, or nil when it does not fit in an `Int64`.
///
/// `Double(Int64.max)` is 2^63, one more than `Int64.max`, so the bound is strict: `<=` let
/// exactly 2^63 through and `Int64(_:)` trapped on it (`9223372036854775807ns` killed `validate`).
func durationFromNanoseconds(_ nanoseconds: Double) -> Duration? {
    let rounded = nanoseconds.rounded()
    guard rounded.isFinite, rounded > -0x1p63, rounded < 0x1p63 else { return nil }
    return .nanoseconds(Int64(rounded))
}

/// The shortest spelling `parseDuration` reads back to the same value: `250ms`, `1m30s`, `0s`.
///
/// Total for every `Duration`: it works on whole seconds and the nanoseconds below one apart,
/// never on one product that could overflow (`30000d` times seven steps did, in `plan`).
public func formatDuration(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    // Both parts carry the sign (the split truncates toward zero).
    var wholeSeconds = seconds.magnitude
    var subsecond = (attoseconds / 1_000_000_000).magnitude
    if wholeSeconds == 0 && subsecond == 0 { return "0s" }
    var text = seconds < 0 || attoseconds < 0 ? "-" : ""
    for unit in durationUnits {
        if unit.nanoseconds >= 1_000_000_000 {
            let perUnit = UInt64(unit.nanoseconds / 1_000_000_000)
            if wholeSeconds >= perUnit {
                text += "\(wholeSeconds / perUnit)\(unit.suffix)"
                wholeSeconds %= perUnit
            }
        } else if subsecond >= UInt64(unit.nanoseconds) {
            text += "\(subsecond / UInt64(unit.nanoseconds))\(unit.suffix)"
            subsecond %= UInt64(unit.nanoseconds)
        }
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
