import Foundation
import SwitchoverCore

/// How a manual command travels through the journal's `commands` table: its name, and its
/// arguments as a small JSON object (`reason`, `force`). The CLI writes it, the coordinator
/// reads it back; both use this one codec.
public enum CommandCodec {
    public static func encode(_ command: ManualCommand) -> (name: String, arguments: String) {
        var arguments: [String: Any] = [:]
        switch command {
        case .pause(let reason), .abort(let reason), .rollback(let reason):
            if let reason { arguments["reason"] = reason }
        case .decommission(let force, let reason):
            arguments["force"] = force
            if let reason { arguments["reason"] = reason }
        case .resume, .promote:
            break
        }
        let data = (try? JSONSerialization.data(withJSONObject: arguments, options: [.sortedKeys])) ?? Data("{}".utf8)
        return (command.name, String(decoding: data, as: UTF8.self))
    }

    /// The command a journal row holds, or nil for a name no coordinator knows.
    public static func decode(name: String, arguments: String) -> ManualCommand? {
        let object = (try? JSONSerialization.jsonObject(with: Data(arguments.utf8))) as? [String: Any] ?? [:]
        let reason = object["reason"] as? String
        switch name {
        case "pause": return .pause(reason: reason)
        case "resume": return .resume
        case "promote": return .promote
        case "abort": return .abort(reason: reason)
        case "rollback": return .rollback(reason: reason)
        case "decommission": return .decommission(force: object["force"] as? Bool ?? false, reason: reason)
        default: return nil
        }
    }
}
