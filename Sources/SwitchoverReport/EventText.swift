import Foundation
import SwitchoverStore

/// The event table's detail of a journal row that is not an engine event: the runtime's notes
/// (`{"message": …}`), the write-ahead `intent` and `result` rows, and whatever JSON another
/// version writes, as a sentence a person reads rather than JSON to decode in their head.
/// Plain text: the caller escapes it. `intents` maps a journal intent id (the `intent` row's
/// sequence) to that row, so a `result` can name the engine's intent number it answers.
func eventSentence(_ event: JournalEvent, run: RunRecord, intents: [Int64: JournalEvent]) -> String? {
    let object = jsonObject(event.detail)
    switch event.kind {
    case "intent":
        guard let object else { return nil }
        return intentSentence(object, run: run)
    case "result":
        let intentNumber = event.intentID.flatMap { intents[$0] }.flatMap { jsonObject($0.detail) }.flatMap(engineIntentNumber)
        let suffix = intentNumber.map { " (intent \($0))" } ?? ""
        guard let object else {
            // A failed simple intent journals the error as text.
            return (event.ok == false ? "failed: " : "") + event.detail + suffix
        }
        return resultSentence(object, ok: event.ok, run: run) + suffix
    default:
        guard let object else { return nil }
        if object.count == 1, let message = object["message"] as? String { return message }
        return pairs(object)
    }
}

private func jsonObject(_ text: String) -> [String: Any]? {
    guard text.first == "{" else { return nil }
    return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
}

/// The engine's intent number of an `intent` row (`detail.setWeights.intent`), if it has one.
private func engineIntentNumber(_ intent: [String: Any]) -> Int? {
    guard let detail = intent["detail"] as? [String: Any], let name = intent["action"] as? String,
          let action = detail[name] as? [String: Any] else { return nil }
    return (action["intent"] as? NSNumber)?.intValue
}

/// `setWeights`: "set 25% to green for step 2 (intent 3)"; "set 0% to green: rollback (intent 4)".
/// Other actions: the action's name and its fields.
private func intentSentence(_ intent: [String: Any], run: RunRecord) -> String {
    let name = intent["action"] as? String ?? "action"
    let detail = intent["detail"]
    let fields = (detail as? [String: Any])?[name] as? [String: Any] ?? detail as? [String: Any]
    if name == "setWeights", let fields, let percent = (fields["percentToTarget"] as? NSNumber)?.doubleValue {
        var text = "set \(percentText(percent)) to \(run.to)"
        switch fields["purpose"] as? String {
        case "step"?: if let step = (fields["step"] as? NSNumber)?.intValue { text += " for step \(step)" }
        case let purpose?: text += ": \(purpose)"
        case nil: break
        }
        if let number = (fields["intent"] as? NSNumber)?.intValue { text += " (intent \(number))" }
        return text
    }
    if let fields, !fields.isEmpty {
        if fields.count == 1, let cluster = fields["cluster"] as? String { return "\(name) \(cluster)" }
        return "\(name): \(pairs(fields))"
    }
    if let text = detail as? String, !text.isEmpty { return "\(name): \(text)" }
    return name
}

/// A weights read-back: "read back: blue-1=192 · blue-2=192 · green-1=64 · green-2=64 → 25.0%
/// to green"; an error: "failed: …"; an empty object: "done".
private func resultSentence(_ result: [String: Any], ok: Bool?, run: RunRecord) -> String {
    if let error = result["error"] as? String { return "failed: \(error)" }
    if let servers = result["servers"] as? [String: Any] {
        let weights = servers.sorted { $0.key < $1.key }.map { "\($0.key)=\(scalar($0.value))" }.joined(separator: " · ")
        var text = (ok == false ? "read back (not what was asked): " : "read back: ") + (weights.isEmpty ? "no servers" : weights)
        if let percent = (result["percentToTarget"] as? NSNumber)?.doubleValue {
            text += " → \(String(format: "%.1f", percent))% to \(run.to)"
        }
        return text
    }
    if result.isEmpty { return ok == false ? "failed" : "done" }
    return (ok == false ? "failed: " : "") + pairs(result)
}

/// `key: value` pairs in key order, nested objects flattened with dots (`a.b: 1`), arrays as
/// comma-separated values.
func pairs(_ object: [String: Any], prefix: String = "") -> String {
    object.sorted { $0.key < $1.key }.map { key, value in
        if let nested = value as? [String: Any], !nested.isEmpty { return pairs(nested, prefix: prefix + key + ".") }
        return "\(prefix)\(key): \(scalar(value))"
    }.joined(separator: " · ")
}

private func scalar(_ value: Any) -> String {
    switch value {
    case let string as String: return string
    case let number as NSNumber:
        // JSONSerialization gives booleans as NSNumber too; their type code is `c` (char).
        if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
        return number.stringValue
    case let array as [Any]: return array.map(scalar).joined(separator: ", ")
    case let object as [String: Any]: return object.isEmpty ? "{}" : "{" + pairs(object) + "}"
    case is NSNull: return "null"
    default: return "\(value)"
    }
}

/// `5%`, `12.5%`.
private func percentText(_ percent: Double) -> String {
    percent == percent.rounded() ? "\(Int(percent))%" : String(format: "%.1f%%", percent)
}
