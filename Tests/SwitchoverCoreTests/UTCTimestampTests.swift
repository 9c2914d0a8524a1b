import Foundation
import Testing
import SwitchoverCore
import SwitchoverTestKit

/// The hand-written UTC timestamps (no ICU in the coordinator), held to what Foundation writes
/// for the same values.
@Suite struct UTCTimestampTests {
    @Test("the same text as ISO8601DateFormatter, with and without milliseconds, from 1900 to 2400, leap days and the epoch included")
    func sameAsFoundation() {
        let plain = ISO8601DateFormatter()
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var generator = SeededGenerator(seed: 8601)
        let fixed: [Int64] = [0, -1, 999, 1000, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, -2_208_988_800_000,
                              1_796_208_752_250, 13_569_465_600_000]
        let random = (0..<5_000).map { _ in Int64.random(in: -2_208_988_800_000...13_569_465_600_000, using: &generator) }
        for milliseconds in fixed + random {
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            #expect(UTCTimestamp.string(millisecondsSinceEpoch: milliseconds) == plain.string(from: date), "\(milliseconds)")
            #expect(UTCTimestamp.string(millisecondsSinceEpoch: milliseconds, fractional: true) == fractional.string(from: date),
                    "\(milliseconds)")
            #expect(Instant(millisecondsSinceEpoch: milliseconds).iso8601 == fractional.string(from: date))
        }
        #expect(UTCTimestamp.string(millisecondsSinceEpoch: 1_796_208_752_250, fractional: true) == "2026-12-02T10:52:32.250Z")
        #expect(UTCTimestamp.timeOfDay(millisecondsSinceEpoch: 1_796_208_752_900) == "10:52:32")
        #expect(UTCTimestamp.timeOfDay(millisecondsSinceEpoch: -1) == "23:59:59", "before the epoch, the day before")
    }
}
