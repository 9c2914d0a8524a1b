import ArgumentParser
import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverRuntime
import SwitchoverStore

/// How long a control command waits for the coordinator's acknowledgement. The coordinator
/// polls every sampling period (250 ms by default), so a few seconds is plenty.
let acknowledgementTimeout: Duration = .seconds(5)

/// Submits `command` to the journal and waits for the running coordinator to acknowledge it:
/// exit 0 accepted, 1 refused (with why) or no coordinator running (nothing is submitted then,
/// so nothing fires later by surprise).
func submitToCoordinator(_ command: ManualCommand, global: GlobalOptions) async throws {
    guard let journal = try global.existingJournal(), try global.latestRun(in: journal) != nil else {
        refuseControl(command, "no run journaled at \(global.state)", global: global)
    }
    guard CoordinatorLock.isHeld(statePath: global.state) else {
        refuseControl(command, "no coordinator is running for \(global.state); start one with `switchover run`", global: global)
    }
    let (name, arguments) = CommandCodec.encode(command)
    let id = try journal.submitCommand(name, arguments: arguments, at: now())
    let record = try await awaitAcknowledgement(of: id, in: journal)
    guard record.accepted == true else { refuseControl(command, record.outcome ?? "", id: id, global: global) }
    controlAnswer(command, accepted: true, detail: record.outcome ?? "", id: id, global: global)
}

/// What a control command reports when the coordinator never answered and the command was withdrawn.
let withdrawnOutcome = "no answer from the coordinator within \(acknowledgementTimeout.components.seconds) s; withdrawn"

/// Waits for the coordinator's answer to command `id`. When the wait runs out, the command is
/// withdrawn in the journal with one conditional update, so a command this CLI reports as
/// refused can never be carried out later by a coordinator that was merely slow. If the
/// coordinator answered between the last look and the withdrawal, the update changes nothing
/// and its answer (accepted or refused) is the one returned.
func awaitAcknowledgement(of id: Int64, in journal: some JournalStore) async throws -> CommandRecord {
    let deadline = ContinuousClock.now + acknowledgementTimeout
    while ContinuousClock.now < deadline {
        if let record = try journal.command(id), record.acknowledgedAt != nil { return record }
        try await Task.sleep(for: .milliseconds(50))
    }
    _ = try journal.withdrawCommand(id, at: now(), outcome: withdrawnOutcome)
    // Either our withdrawal or the coordinator's answer, whichever the journal holds.
    guard let record = try journal.command(id), record.acknowledgedAt != nil else {
        throw StoreError(.corrupt, "command \(id) vanished from the journal while it was being withdrawn")
    }
    return record
}

func controlAnswer(_ command: ManualCommand, accepted: Bool, detail: String, id: Int64?, global: GlobalOptions) {
    switch global.output {
    case .text:
        print("\(command.name): \(accepted ? "accepted" : "refused"): \(detail)")
    case .json:
        var object: [String: Any] = ["command": command.name, "accepted": accepted, "detail": detail]
        if let id { object["id"] = id }
        printJSON(object)
    }
}

func refuseControl(_ command: ManualCommand, _ why: String, id: Int64? = nil, global: GlobalOptions) -> Never {
    controlAnswer(command, accepted: false, detail: why, id: id, global: global)
    Rollback.exit(withError: Exit.no)
}

/// Flags every control command takes.
struct ReasonOption: ParsableArguments {
    @Option(help: "Why, for the journal.") var reason: String?
}
