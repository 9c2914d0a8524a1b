/// 1 not 1.0, 0.5 as 0.5, 33.33 with `decimals: 2`: numbers in messages as a person writes
/// them. The one number formatter of every message, line and table (JSON has `JSONNumber`).
public func formatNumber(_ value: Double, decimals: Int? = nil) -> String {
    var value = value
    if let decimals, value.isFinite {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        value = (value * scale).rounded() / scale
    }
    if value == value.rounded() && abs(value) < 1e15 { return String(Int(value)) }
    return String(value)
}

/// Numbers for JSON output: whole numbers as integers (30, not 30.0), others as they are.
public enum JSONNumber {
    public static func of(_ value: Double) -> Any {
        if value == value.rounded() && abs(value) < 1e15 { return Int(value) }
        return value
    }
}
