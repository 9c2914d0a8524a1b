import Foundation
import SwitchoverCore

/// Escapes text for HTML element content and attribute values (double or single quoted).
/// Every string that comes from the journal or the configuration goes through this: cluster
/// names, gate names and details are written by people and tools, and must never become markup.
func esc(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for character in text.unicodeScalars {
        switch character {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(character)
        }
    }
    return out
}

/// A number for SVG coordinates: one decimal, no exponent.
func num(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let rounded = (value * 10).rounded() / 10
    if rounded == rounded.rounded() { return String(Int(rounded)) }
    return String(format: "%.1f", rounded)
}

/// Relative time as a person reads it on an axis: `m:ss`, or `h:mm:ss` past an hour, or
/// `Nd hh:mm` past a day. Truncated like a stopwatch, not rounded, so that the header's
/// "at 0:10" and the event table's `0:10.538` name the same second.
func clock(_ seconds: Double) -> String {
    let negative = seconds < 0
    let total = Int((abs(seconds) + 1e-6).rounded(.down))
    let d = total / 86_400, h = (total % 86_400) / 3600, m = (total % 3600) / 60, s = total % 60
    let body: String
    if d > 0 {
        body = "\(d)d " + String(format: "%02d:%02d", h, m)
    } else if h > 0 {
        body = "\(h):" + String(format: "%02d:%02d", m, s)
    } else {
        body = "\(m):" + String(format: "%02d", s)
    }
    return (negative ? "-" : "") + body
}

/// `clock` with milliseconds (`0:11.370`) under an hour, for the event table: a rollback's
/// detection, intent, read-back and verification happen within milliseconds of one another and
/// would otherwise all read `0:11`. Past an hour, `clock` as it is.
func preciseClock(_ seconds: Double) -> String {
    guard abs(seconds) < 3600 else { return clock(seconds) }
    let ms = Int((abs(seconds) * 1000).rounded())
    return (seconds < 0 && ms > 0 ? "-" : "") + "\(ms / 60_000):" + String(format: "%02d.%03d", (ms / 1000) % 60, ms % 1000)
}

/// A duration in words: `850 ms`, `4.2 s`, `3 min 20 s`, `2 h 5 min`, `1 d 3 h`.
func spoken(_ duration: Duration) -> String {
    let ms = duration.milliseconds
    if ms == 0 { return "0 s" }
    if ms < 1000 { return "\(ms) ms" }
    let seconds = Double(ms) / 1000
    if seconds < 60 {
        if ms % 1000 == 0 || seconds >= 10 { return "\(Int(seconds.rounded())) s" }
        return String(format: "%.1f s", seconds)
    }
    let total = Int(seconds.rounded())
    if total < 3600 { return "\(total / 60) min" + (total % 60 > 0 ? " \(total % 60) s" : "") }
    if total < 86_400 { return "\(total / 3600) h" + ((total % 3600) / 60 > 0 ? " \((total % 3600) / 60) min" : "") }
    return "\(total / 86_400) d" + ((total % 86_400) / 3600 > 0 ? " \((total % 86_400) / 3600) h" : "")
}

/// An instant as UTC `YYYY-MM-DD HH:MM:SS`, for the table and the header.
func utc(_ instant: Instant) -> String {
    let date = Date(timeIntervalSince1970: instant.seconds)
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0,
                  c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
}

/// A value for an axis label: `1.2k`, `35`, `0.5`.
func axisValue(_ value: Double) -> String {
    if value >= 10_000 { return num(value / 1000) + "k" }
    if value >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
    if value >= 1 { return String(format: "%.1f", value) }
    return String(format: "%.2g", value)
}

/// A value axis: a tick spacing of 1, 2 or 5 × 10^n giving about five intervals, and the
/// maximum rounded up to a whole number of ticks, so every label is a round number (0, 50, 100,
/// 150, 200, 250 rather than quarters of 250).
func niceAxis(_ value: Double, intervals: Int = 5) -> (max: Double, step: Double) {
    guard value > 0, value.isFinite else { return (1, 0.2) }
    let raw = value / Double(intervals)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999_999 } ?? 10 * magnitude
    return (max(step, (value / step - 1e-9).rounded(.up) * step), step)
}

/// The top of a value axis for `value` (see `niceAxis`).
func niceCeiling(_ value: Double) -> Double { niceAxis(value).max }

/// A tick spacing in seconds that gives at most about `count` labels over `span` seconds.
func timeTickStep(span: Double, count: Int) -> Double {
    let steps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600,
                           43_200, 86_400, 172_800, 604_800]
    let wanted = span / Double(max(1, count))
    return steps.first { $0 >= wanted } ?? (ceil(wanted / 86_400) * 86_400)
}
