import Foundation

/// ISO 8601 in UTC by integer arithmetic (Howard Hinnant's days-to-civil). Foundation's
/// formatters, `ISO8601DateFormatter` and `Date.formatted(.iso8601)` alike, look up the current
/// time zone and calendar through ICU, which loads its data (4 MiB resident) into a coordinator
/// that only wanted a timestamp.
public enum UTCTimestamp {
    /// `2026-12-02T10:39:12Z`; with `fractional`, `2026-12-02T10:39:12.250Z`.
    public static func string(millisecondsSinceEpoch milliseconds: Int64, fractional: Bool = false) -> String {
        let (days, inDay) = floorDivision(milliseconds, 86_400_000)
        let (year, month, day) = civil(days: days)
        var text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + time(inDay)
        if fractional { text += "." + pad(Int(inDay % 1000), 3) }
        return text + "Z"
    }

    /// `2026-12-02T10:39:12Z` (whole seconds, rounded down).
    public static func string(_ date: Date, fractional: Bool = false) -> String {
        string(millisecondsSinceEpoch: milliseconds(date), fractional: fractional)
    }

    /// `10:39:12`, the time of day in UTC.
    public static func timeOfDay(millisecondsSinceEpoch milliseconds: Int64) -> String {
        time(floorDivision(milliseconds, 86_400_000).remainder)
    }

    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    private static func time(_ millisecondsInDay: Int64) -> String {
        let seconds = Int(millisecondsInDay / 1000)
        return pad(seconds / 3600, 2) + ":" + pad(seconds / 60 % 60, 2) + ":" + pad(seconds % 60, 2)
    }

    private static func floorDivision(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = a / b - (a % b < 0 ? 1 : 0)
        return (q, a - q * b)
    }

    /// Year, month and day of a count of days since 1970-01-01 (proleptic Gregorian).
    private static func civil(days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shifted = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shifted + 2) / 5 + 1
        let month = shifted < 10 ? shifted + 3 : shifted - 9
        return (Int(yearOfEra + era * 400 + (month <= 2 ? 1 : 0)), Int(month), Int(day))
    }

    private static func pad(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
