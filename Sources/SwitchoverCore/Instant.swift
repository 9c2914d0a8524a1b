import Foundation

/// A point in time as an explicit value, so the engine has no clock of its own.
///
/// The runtime reads the wall clock once per input and passes it in; tests use a manual clock and
/// step it by hand. Milliseconds since the Unix epoch because that is what the journal stores
/// and what a person can read back from SQLite (`datetime(time/1000, 'unixepoch')`). Encoded as
/// a bare integer.
public struct Instant: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// The instant of a `Date`, to the millisecond.
    public init(_ date: Date) {
        self.init(millisecondsSinceEpoch: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    /// An instant `seconds` after the epoch; convenient in tests.
    public static func seconds(_ seconds: Double) -> Instant {
        Instant(millisecondsSinceEpoch: Int64((seconds * 1000).rounded()))
    }

    public init(from decoder: any Decoder) throws {
        millisecondsSinceEpoch = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(millisecondsSinceEpoch)
    }

    public static func < (lhs: Instant, rhs: Instant) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        Instant(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch + rhs.milliseconds)
    }

    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        Instant(millisecondsSinceEpoch: lhs.millisecondsSinceEpoch - rhs.milliseconds)
    }

    /// The time from `rhs` to `lhs` (negative when `lhs` is earlier).
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        .milliseconds(lhs.millisecondsSinceEpoch - rhs.millisecondsSinceEpoch)
    }

    /// `2026-12-02T10:39:12.250Z`: for messages people read.
    public var iso8601: String {
        UTCTimestamp.string(millisecondsSinceEpoch: millisecondsSinceEpoch, fractional: true)
    }

    /// Seconds since the epoch, for arithmetic in fits and ratios.
    public var seconds: Double { Double(millisecondsSinceEpoch) / 1000 }

    public var description: String { "\(seconds)s" }
}

extension Duration {
    /// Whole milliseconds, truncated toward zero: the resolution the journal keeps.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a `Double`, for display and arithmetic.
    public var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
