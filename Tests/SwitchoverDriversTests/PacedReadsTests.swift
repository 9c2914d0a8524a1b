import Foundation
@testable import SwitchoverDrivers
import SwitchoverTestKit
import Testing

/// `PacedReads` on its own, with reads the test holds back or makes fail: no AWS here, the
/// reads are closures (what the AWS routers pass is tested against moto in AWSRouterMotoTests).
@Suite struct PacedReadsTests {
    struct Refused: Error {}

    /// A read that waits until `open`, counting calls.
    final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var isOpen = false
        private var count = 0
        func open() { lock.withLock { isOpen = true } }
        var calls: Int { lock.withLock { count } }
        func read(_ value: Int) async throws -> Int {
            lock.withLock { count += 1 }
            while !lock.withLock({ isOpen }) { try await Task.sleep(for: .milliseconds(5)) }
            return value
        }
    }

    @Test("a read that began before a value was remembered is dropped when it ends: an older read never replaces a newer one")
    func olderReadDropped() async throws {
        let reads = PacedReads<Int>(every: .milliseconds(100))
        reads.remember(1)
        try await Task.sleep(for: .milliseconds(150))
        let gate = Gate()
        // Due: the held value at once, and the read (of 2) goes out in the background.
        #expect(try await reads.value(read: { try await gate.read(2) }, log: { _ in }).value == 1)
        _ = await Wait.until(timeout: 2) { gate.calls == 1 }
        reads.remember(3)
        gate.open()
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await reads.value(read: { 4 }, log: { _ in }).value == 3, "the read of 2 ended after 3 was remembered")
    }

    @Test("with nothing held, a failed read is not tried again before readEvery: the failure is thrown without asking")
    func firstReadPaced() async throws {
        let reads = PacedReads<Int>(every: .milliseconds(300))
        let calls = Locked(0)
        let failing: @Sendable () async throws -> Int = { calls.withLock { $0 += 1 }; throw Refused() }
        await #expect(throws: Refused.self) { try await reads.value(read: failing, log: { _ in }) }
        for _ in 0..<5 {
            await #expect(throws: Refused.self) { try await reads.value(read: failing, log: { _ in }) }
        }
        #expect(calls.withLock { $0 } == 1, "one attempt within readEvery")
        try await Task.sleep(for: .milliseconds(350))
        #expect(try await reads.value(read: { 7 }, log: { _ in }).value == 7, "due again: read, awaited")
    }

    @Test("failing reads: the held value is served, the failure logged once, and past the stale limit the failure is thrown")
    func staleLimit() async throws {
        let reads = PacedReads<Int>(every: .milliseconds(100))
        #expect(reads.staleLimit == .milliseconds(2200), "readEvery + a read's 2 s time limit + readEvery, above six readEvery")
        reads.remember(1)
        let logged = Locked<[String]>([])
        let started = ContinuousClock.now
        var served = 0
        while ContinuousClock.now - started < .milliseconds(1500) {
            if let value = try? await reads.value(read: { throw Refused() }, log: { line in logged.withLock { $0.append(line) } }).value {
                #expect(value == 1)
                served += 1
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(served > 10)
        #expect(logged.withLock { $0.count } == 1, "\(logged.withLock { $0 })")
        let thrown = await Wait.until(timeout: 3, every: .milliseconds(20)) {
            do { _ = try await reads.value(read: { throw Refused() }, log: { _ in }); return false } catch { return error is Refused }
        }
        #expect(thrown)
    }
}
