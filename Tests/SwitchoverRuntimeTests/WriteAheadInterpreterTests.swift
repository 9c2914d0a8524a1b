import Foundation
import Logging
import Synchronization
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverStore
import Testing
@testable import SwitchoverRuntime

/// A load balancer in memory, for the interpreter's own tests: it holds weights and drain states,
/// records every call, and checks at each write that the journal already has the intent for it
/// (write-ahead). Not a stand-in for HAProxy or Envoy: every path to a real one is tested
/// against the real one (SafetyGuardTests, CutoverIntegrationTests, the driver tests).
final class MemoryLoadBalancer: WeightRouter, TrafficObserver, Sendable {
    let driver = "memory"
    let address = "memory"
    let translation = WeightTranslation.haproxy
    let capabilities: RouterCapabilities = [.drain, .ready]
    let fromCluster = ClusterServers(cluster: "blue", servers: ["blue-1"])
    let toCluster = ClusterServers(cluster: "green", servers: ["green-1"])
    struct World {
        var weights = ["blue-1": 256, "green-1": 0]
        var inDrain: Set<String> = []
        var calls: [String] = []
        var failApply = false
        /// What a fleet router reports beside the weights: instances that did not answer, and
        /// instances that read back other weights than the first one.
        var unreachable: [String] = []
        var disagreements: [String] = []
        /// Journal intents seen unfinished when a write arrived (write-ahead holds when > 0).
        var intentsAtWrite: [Int] = []
    }
    let world = Mutex(World())
    let journal: any JournalStore
    let run: Int64

    init(journal: any JournalStore, run: Int64) {
        self.journal = journal
        self.run = run
    }

    func live() -> LiveWeights {
        world.withLock { world in
            let assignment = WeightAssignment(from: [ServerWeight(server: "blue-1", weight: world.weights["blue-1"]!)],
                                              to: [ServerWeight(server: "green-1", weight: world.weights["green-1"]!)])
            var live = LiveWeights(assignment: assignment, configured: nil, shares: [:],
                                   identity: LoadBalancerIdentity(instance: "memory", uptime: .seconds(1), generation: nil),
                                   drift: [], readAt: Date(), inDrain: world.inDrain)
            live.unreachable = world.unreachable
            live.disagreements = world.disagreements
            return live
        }
    }

    func currentWeights() async throws -> LiveWeights { live() }

    func apply(_ assignment: WeightAssignment) async throws -> LiveWeights {
        let unfinished = (try? journal.unfinishedIntents(run: run).count) ?? 0
        try world.withLock { world in
            world.calls.append("apply")
            world.intentsAtWrite.append(unfinished)
            if world.failApply {
                throw LoadBalancerError(.unreachable, driver: driver, address: address, message: "socket closed")
            }
            for server in assignment.all { world.weights[server.server] = server.weight }
        }
        return live()
    }

    func stats() async throws -> LoadBalancerStats {
        LoadBalancerStats(clusters: [:], identity: live().identity, takenAt: Date())
    }

    func setDrain(cluster: String) async throws {
        world.withLock { world in
            world.calls.append("setDrain \(cluster)")
            world.inDrain.insert("\(cluster)-1")
        }
    }

    func setReady(cluster: String) async throws {
        world.withLock { world in
            world.calls.append("setReady \(cluster)")
            world.inDrain.remove("\(cluster)-1")
        }
    }
}

/// The write-ahead interpreter on its own: intent before action, fencing, exactly-once resume,
/// the drain guard; against `MemoryJournal` and `MemoryLoadBalancer`.
@Suite struct WriteAheadInterpreterTests {
    static func rig(fence: Bool = true) throws -> (MemoryJournal, MemoryLoadBalancer, WriteAheadInterpreter, Int64, Int64?) {
        let journal = MemoryJournal()
        let run = try journal.startRun(RunRecord(from: "blue", to: "green", policy: "p", startedAt: .seconds(1), pid: 1))
        let token = fence ? try journal.takeLease(holder: "test", at: .seconds(1)) : nil
        let router = MemoryLoadBalancer(journal: journal, run: run)
        let interpreter = WriteAheadInterpreter(journal: journal, router: router, runID: run, fence: token,
                                                unfinishedIntents: [], logger: Logger(label: "test"), clock: { .seconds(2) })
        return (journal, router, interpreter, run, token)
    }

    static var shifting: CutoverState {
        var state = CutoverState.initial
        state.phase = .shifting
        state.step = 1
        return state
    }

    @Test("the intent and the state expecting it are journaled before the load balancer is asked; the result after")
    func intentBeforeAction() async throws {
        let (journal, router, interpreter, run, _) = try Self.rig()
        let result = try await interpreter.setWeights(intent: 1, percent: 10, step: 1, purpose: .step, expecting: Self.shifting)
        #expect(result == .verified(percentToTarget: WeightTranslation.haproxy.weights(percentToTarget: 10, from: ["blue-1"], to: ["green-1"]).effectivePercentToTarget))
        #expect(router.world.withLock { $0.intentsAtWrite } == [1], "the intent was in the journal, unfinished, when the weights were written")
        #expect(try journal.loadCutoverState(run: run) == Self.shifting)
        #expect(try journal.unfinishedIntents(run: run).isEmpty, "the result finished it")
        #expect(interpreter.touchedLoadBalancer)
    }

    @Test("fenced: once another holder took the lease, no intent is written and the load balancer is never asked")
    func fencedNeverActs() async throws {
        let (journal, router, interpreter, run, _) = try Self.rig()
        _ = try journal.takeLease(holder: "another coordinator", at: .seconds(3))
        do {
            _ = try await interpreter.setWeights(intent: 1, percent: 10, step: 1, purpose: .step, expecting: Self.shifting)
            Issue.record("a deposed coordinator wrote weights")
        } catch let error as StoreError {
            #expect(error.code == .fenced)
        }
        do {
            _ = try await interpreter.drain("blue")
            Issue.record("a deposed coordinator drained")
        } catch let error as StoreError {
            #expect(error.code == .fenced)
        }
        #expect(router.world.withLock { $0.calls }.isEmpty, "nothing reached the load balancer")
        #expect(try journal.events(run: run, afterSequence: 0, limit: 100).isEmpty, "nothing journaled")
        #expect(!interpreter.touchedLoadBalancer)
    }

    @Test("an unfinished intent from before a crash is re-applied once under its own journal id; an older one is superseded")
    func resumeExactlyOnce() async throws {
        let (journal, router, _, run, token) = try Self.rig()
        let old = try journal.beginIntent(run: run, at: .seconds(1), Action.setWeights(intent: 1, percentToTarget: 10, step: 1, purpose: .step))
        let open = try journal.beginIntent(run: run, at: .seconds(1), Action.setWeights(intent: 2, percentToTarget: 25, step: 2, purpose: .step))
        let interpreter = WriteAheadInterpreter(journal: journal, router: router, runID: run, fence: token,
                                                unfinishedIntents: try journal.unfinishedIntents(run: run),
                                                logger: Logger(label: "test"), clock: { .seconds(2) })
        _ = try await interpreter.setWeights(intent: 2, percent: 25, step: 2, purpose: .step, expecting: Self.shifting)
        let events = try journal.events(run: run, afterSequence: 0, limit: 100)
        #expect(events.filter { $0.kind == "intent" }.count == 2, "no new intent for the re-applied change")
        #expect(events.first { $0.kind == "result" && $0.intentID == open }?.ok == true)
        #expect(events.first { $0.kind == "result" && $0.intentID == old }?.ok == false, "the older one closed as superseded")
        #expect(events.contains { $0.kind == "intentReapplied" })
        #expect(router.world.withLock { $0.calls } == ["apply"], "applied once")
        #expect(try journal.unfinishedIntents(run: run).isEmpty)
    }

    @Test("a drain interrupted by a crash is closed as interrupted on resume, never left unfinished, and not replayed")
    func interruptedDrainClosed() async throws {
        let (journal, router, _, run, token) = try Self.rig()
        let drain = try journal.beginIntent(run: run, at: .seconds(1), action: "setDrain",
                                            detail: WriteAheadInterpreter.encode(["cluster": "blue"]), state: nil, fence: token)
        let interpreter = WriteAheadInterpreter(journal: journal, router: router, runID: run, fence: token,
                                                unfinishedIntents: try journal.unfinishedIntents(run: run),
                                                logger: Logger(label: "test"), clock: { .seconds(2) })
        try interpreter.closeInterrupted()
        let result = try journal.events(run: run, afterSequence: 0, limit: 100).first { $0.kind == "result" && $0.intentID == drain }
        #expect(result?.ok == false && result?.detail.contains("interrupted") == true, "\(String(describing: result))")
        #expect(try journal.unfinishedIntents(run: run).isEmpty)
        #expect(router.world.withLock { $0.calls }.isEmpty, "nothing replayed: the resumed run decides again")
    }

    @Test("the drain guard: FROM still weighted is never put in drain; the refusal is journaled; at weight 0 it is")
    func drainGuard() async throws {
        let (journal, router, interpreter, run, _) = try Self.rig()
        let refused = try await interpreter.drain("blue")
        guard case .refused(let why) = refused else { Issue.record("not refused: \(refused)"); return }
        #expect(why.contains("still carries traffic"), "\(why)")
        #expect(!router.world.withLock { $0.calls }.contains("setDrain blue"))
        let results = try journal.events(run: run, afterSequence: 0, limit: 100).filter { $0.kind == "result" }
        #expect(results.count == 1 && results[0].ok == false && results[0].detail.contains("refused"))

        router.world.withLock { $0.weights = ["blue-1": 0, "green-1": 256] }
        #expect(try await interpreter.drain("blue") == .done)
        #expect(router.world.withLock { $0.calls }.contains("setDrain blue"))
    }

    @Test("the drain guard with several instances: FROM at 0 on the one read is not enough while another did not answer or holds other weights")
    func drainGuardEveryInstance() async throws {
        let (_, router, interpreter, _, _) = try Self.rig()
        router.world.withLock {
            $0.weights = ["blue-1": 0, "green-1": 256]
            $0.unreachable = ["lb-b (/run/b.sock): connection refused"]
        }
        let silent = try await interpreter.drain("blue")
        guard case .refused(let why) = silent else { Issue.record("not refused: \(silent)"); return }
        #expect(why.contains("not every load-balancer instance answered") && why.contains("lb-b"), "\(why)")

        router.world.withLock {
            $0.unreachable = []
            $0.disagreements = ["lb-b holds blue-1 256, lb-a holds 0"]
        }
        let disagreeing = try await interpreter.drain("blue")
        guard case .refused(let other) = disagreeing else { Issue.record("not refused: \(disagreeing)"); return }
        #expect(other.contains("disagree") && other.contains("lb-b holds blue-1 256"), "\(other)")
        #expect(!router.world.withLock { $0.calls }.contains("setDrain blue"), "nothing drained")

        router.world.withLock { $0.disagreements = [] }
        #expect(try await interpreter.drain("blue") == .done)
    }

    @Test("a load balancer that fails the write gives a mismatch, and the intent is finished as failed")
    func failedApply() async throws {
        let (journal, router, interpreter, run, _) = try Self.rig()
        router.world.withLock { $0.failApply = true }
        let result = try await interpreter.setWeights(intent: 1, percent: 10, step: 1, purpose: .step, expecting: Self.shifting)
        guard case .mismatch(let detail) = result else { Issue.record("\(result)"); return }
        #expect(detail.contains("socket closed"))
        let result0 = try journal.events(run: run, afterSequence: 0, limit: 100).first { $0.kind == "result" }
        #expect(result0?.ok == false)
    }
}
