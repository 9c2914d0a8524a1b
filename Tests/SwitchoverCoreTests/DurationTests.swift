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
}
