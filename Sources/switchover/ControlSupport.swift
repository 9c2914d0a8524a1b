import ArgumentParser
import Foundation
import SwitchoverCore
import SwitchoverRuntime

/// Prints a control command's answer (text: `pause: accepted: …`; json: one object) and exits
/// 0 when accepted, 1 otherwise. Warnings go to stderr.
func printControlAnswer(_ answer: ControlAnswer, global: GlobalOptions) throws {
    for warning in answer.warnings { printError("switchover \(answer.command): warning: \(warning)\n") }
    switch global.output {
    case .text:
        print("\(answer.command): \(answer.accepted ? "accepted" : "refused"): \(answer.detail)")
        if let evidence = answer.evidence {
            let sentence = evidenceSentence(evidence)
            if !sentence.isEmpty { print("evidence: \(sentence)") }
        }
    case .json:
        var object: [String: Any] = ["command": answer.command, "accepted": answer.accepted, "detail": answer.detail]
        if let id = answer.id { object["id"] = id }
        if let phase = answer.phase { object["phase"] = phase.rawValue }
        if let evidence = answer.evidence { object["evidence"] = evidence }
        printJSON(object)
    }
    if !answer.accepted { throw Exit.no }
}

/// `pause`, `resume`, `promote`, `abort`: ask the running coordinator.
func submitToCoordinator(_ command: ManualCommand, global: GlobalOptions) async throws {
    try await global.guardingJournal(command.name) {
        try printControlAnswer(try await Control.submit(command, state: try global.stateLocation()), global: global)
    }
}

/// `open sessions 1; last request seen 2026-…; live weight 0; hold 0s of 60s; drain draining`
func evidenceSentence(_ evidence: [String: String]) -> String {
    var parts: [String] = []
    if let active = evidence["activeSessions"] { parts.append("open sessions \(active)") }
    if let last = evidence["lastRequestSeenAt"] {
        parts.append("last request seen: "
                     + (Int64(last).map { iso(Instant(millisecondsSinceEpoch: $0)) } ?? "none since the drain began"))
    }
    if let weight = evidence["liveWeight"] { parts.append("live weight \(weight)") }
    if let hold = evidence["holdMilliseconds"] { parts.append("hold \(hold) ms") }
    if let status = evidence["drainStatus"] { parts.append("drain \(status)") }
    if evidence["drain"] == "not started" { parts.append("drain not started") }
    if let stale = evidence["stale"] { parts.append(stale) }
    return parts.joined(separator: "; ")
}

/// Flags every control command takes.
struct ReasonOption: ParsableArguments {
    @Option(help: "Why, for the journal.") var reason: String?
}

func iso(_ instant: Instant) -> String {
    UTCTimestamp.string(millisecondsSinceEpoch: instant.millisecondsSinceEpoch)
}
