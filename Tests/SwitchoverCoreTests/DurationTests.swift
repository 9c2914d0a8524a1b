import SwitchoverCore
import Testing

@Suite struct DurationTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("24h", .seconds(86_400)),
        ("30d", .seconds(30 * 86_400)),
        ("1m30s", .seconds(90)),
        ("1h0m5s", .seconds(3605)),
        ("1.5s", .milliseconds(1500)),
        ("0", .zero),
        ("0s", .zero),
        ("-5s", .seconds(-5)),
        ("100us", .microseconds(100)),
        (" 2s ", .seconds(2)),
    ])
    func parses(_ text: String, _ expected: Duration) {
        #expect(parseDuration(text) == expected)
    }

    @Test(arguments: ["", "30", "s", "5 m", "5x", "1.2.3s", "ms5", "--5s", "1m30", "thirty seconds"])
    func rejects(_ text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test(arguments: [
        (Duration.milliseconds(250), "250ms"),
        (.seconds(90), "1m30s"),
        (.seconds(86_400 + 3600), "1d1h"),
        (.zero, "0s"),
        (.seconds(-30), "-30s"),
        (.milliseconds(1500), "1s500ms"),
    ])
    func formats(_ duration: Duration, _ expected: String) {
        #expect(formatDuration(duration) == expected)
    }

    @Test func formattingReadsBackToTheSameValue() {
        for milliseconds in stride(from: 0, to: 200_000_000, by: 7_919_999) {
            let duration = Duration.milliseconds(milliseconds)
            #expect(parseDuration(formatDuration(duration)) == duration)
        }
    }

    /// `Double(Int64.max)` is 2^63: a bound of `<=` let exactly 2^63 nanoseconds through to a
    /// trapping `Int64(_:)`. Anything that does not fit is not a `Duration`, never a crash.
    @Test(arguments: ["9223372036854775807ns", "9223372036854775808ns", "9223372036854775807s",
                      "-9223372036854775807s", "106752d", "1\(String(repeating: "0", count: 400))s"])
    func valuesBeyondInt64NanosecondsAreNotDurations(_ text: String) {
        #expect(parseDuration(text) == nil)
    }

    @Test func theLongestRepresentableDurationStillParses() {
        // 106751 days is the last whole day inside Int64 nanoseconds.
        #expect(parseDuration("106751d") == .seconds(106_751 * 86_400))
    }

    /// `plan` sums a bake per step; 30000d times 7 steps overflowed the nanoseconds
    /// `formatDuration` multiplied out. It works on seconds and subseconds apart now.
    @Test(arguments: [
        (Duration.seconds(30_000 * 86_400) * 7, "210000d"),
        (.seconds(Int64.max), "106751991167300d15h30m7s"),
        (.seconds(-Int64.max), "-106751991167300d15h30m7s"),
        (.seconds(1) + .nanoseconds(1), "1s1ns"),
        (.zero - .milliseconds(1500), "-1s500ms"),
    ])
    func formatsDurationsBeyondInt64Nanoseconds(_ duration: Duration, _ expected: String) {
        #expect(formatDuration(duration) == expected)
    }
}
