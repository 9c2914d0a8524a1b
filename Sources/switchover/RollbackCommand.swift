import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore

/// `rollback` is the one control command that also works with no coordinator running: it is
/// the emergency exit, and a crashed coordinator must not lock people out of it. Then this
/// process takes the coordinator lock (so no coordinator starts meanwhile), journals the
/// command, and carries it out through the driver exactly as the coordinator would: intent,
/// apply, read-back, result, the new state. With a coordinator running it asks that one.
struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send all traffic back to FROM now.",
        discussion: """
            With a coordinator running, asks it and waits for its acknowledgement. With none \
            running, performs the rollback itself through the load balancer, journaled (needs \
            --clusters and --policies of the run). Exit 0 accepted (and verified), 1 refused.
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: ReasonOption

    func run() async throws {
        try await global.guardingJournal("rollback") { try await execute() }
    }

    func execute() async throws {
        let command = ManualCommand.rollback(reason: options.reason)
        guard let journal = try global.existingJournal(), let (run, state) = try global.latestRun(in: journal) else {
            refuseControl(command, "no run journaled at \(global.state)", global: global)
        }
        if CoordinatorLock.isHeld(statePath: global.state) {
            return try await submitToCoordinator(command, global: global)
        }
        let lock: CoordinatorLock
        do {
            lock = try CoordinatorLock(statePath: global.state)
        } catch let error as StoreError where error.code == .lockHeld {
            // A coordinator started between the two looks: ask it.
            return try await submitToCoordinator(command, global: global)
        }
        defer { lock.release() }

        let logger = bootstrapLogging()
        let (_, fromCluster, toCluster, policy) = try global.requirePair(from: run.from, to: run.to, policy: run.policy)
        let router: any WeightRouter, observer: any TrafficObserver
        do {
            (router, observer) = try DriverRegistry.standard.make(policy: policy, from: fromCluster, to: toCluster, logger: logger)
        } catch {
            refuseControl(command, "cannot reach the load balancer: \(error)", global: global)
        }
        // The emergency exit must not depend on the journal: when it cannot be written (a full
        // disk), the rollback is done anyway, through the driver and read back, and the person
        // is told the journal is behind.
        let id: Int64
        let final: CutoverState
        do {
            let (name, arguments) = CommandCodec.encode(command)
            id = try journal.submitCommand(name, arguments: arguments, at: now())
            let unfinished = try journal.unfinishedIntents(run: run.id)
            let coordinator = Coordinator(engine: CutoverEngine(policy: policy, from: run.from, to: run.to), runID: run.id,
                                          journal: journal, router: router, observer: observer, sources: [:], state: state,
                                          unfinishedIntents: unfinished, reporter: LogReporter(logger: logger), logger: logger)
            final = try await coordinator.runOffline(command, id: id)
        } catch let error as StoreError {
            await rollBackWithoutJournal(command, journalError: error, run: run, state: state, router: router)
        }
        guard let reader = try global.existingJournal(), let record = try reader.command(id) else {
            refuseControl(command, "the command was not journaled", id: id, global: global)
        }
        // The exit code says whether all traffic is back on FROM, verified: finishing an
        // unfinished rollback first (see `runOffline`) can leave the command itself refused as
        // "already rolled back", which is what was asked for. A run that was already rolled
        // back before this command is refused as before.
        let wasVerified = state.phase == .rolledBack && state.rollbackVerified
        if final.phase == .rolledBack, final.rollbackVerified, !wasVerified {
            let how = record.accepted == true ? "rolled back by this process" : "the unfinished rollback was finished by this process"
            controlAnswer(command, accepted: true,
                          detail: "no coordinator was running; \(how): all traffic on \(run.from), read back from the load balancer",
                          id: id, global: global)
            return
        }
        guard record.accepted == true else {
            refuseControl(command, record.outcome ?? "refused", id: id, global: global)
        }
        refuseControl(command, "rollback started but not verified: \(final.reason ?? "read-back failed"); run `switchover rollback` again",
                      id: id, global: global)
    }

    /// The rollback when the journal cannot be written: the same refusals as the engine's (never
    /// after decommission, nothing to do before any traffic moved or once verified), then FROM
    /// made ready when its drain had begun, 0% to TO written and read back. Exit 0 when all
    /// traffic reads back on FROM, 1 otherwise; either way the message says the journal is behind.
    func rollBackWithoutJournal(_ command: ManualCommand, journalError: StoreError, run: RunRecord, state: CutoverState,
                                router: any WeightRouter) async -> Never {
        let behind = "the journal at \(global.state) could not be written (\(journalError.context)), so it is behind: "
            + "it still says phase \(state.phase.rawValue), step \(state.step), \(formatPlain(state.percentToTarget))% to \(run.to); "
            + "once it can be written, `switchover rollback` again records the rollback"
        switch state.phase {
        case .decommissioned:
            refuseControl(command, "\(run.from) was decommissioned and may be gone; not rolled back; \(behind)", global: global)
        case .pending, .preflight:
            refuseControl(command, "no traffic has moved yet; \(behind)", global: global)
        case .rolledBack where state.rollbackVerified:
            refuseControl(command, "already rolled back", global: global)
        default:
            break
        }
        let result = await UnjournaledRollback.perform(router: router, fromWasDrained: state.drain != nil)
        switch result {
        case .success(let live):
            let servers = live.assignment.all.map { "\($0.server)=\($0.weight)" }.joined(separator: " ")
            printError("switchover rollback: warning: \(behind)\n")
            controlAnswer(command, accepted: true,
                          detail: "no coordinator was running; rolled back by this process WITHOUT the journal: all traffic on \(run.from), "
                            + "read back from the load balancer (\(servers)); \(behind)",
                          id: nil, global: global)
            Rollback.exit(withError: Exit.ok)
        case .failure(let error):
            refuseControl(command, "rollback through the load balancer failed: \(error); \(behind)", global: global)
        }
    }
}
