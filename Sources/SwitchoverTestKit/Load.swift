import Foundation

/// Load generators for tests: `hey` against a load balancer's frontend.
public enum Load {
    /// What `hey` reported.
    public struct Result: Sendable {
        /// Responses by HTTP status (`[200]` lines of hey's status code distribution).
        public var statusCounts: [Int: Int]
        public var output: String
        public var responses: Int { statusCounts.values.reduce(0, +) }
    }

    /// Runs `hey -n requests -c concurrency url` to the end and returns its status counts.
    /// Throws when hey is missing or fails.
    @discardableResult
    public static func hey(_ url: String, requests: Int, concurrency: Int = 20) throws -> Result {
        let hey = try Tools.require("hey")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: hey)
        process.arguments = ["-n", String(requests), "-c", String(concurrency), url]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestKitError("hey exited \(process.terminationStatus):\n\(output)")
        }
        var counts: [Int: Int] = [:]
        // Lines like "  [200]\t2000 responses".
        for line in output.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("["), let close = trimmed.firstIndex(of: "]"),
                  let code = Int(trimmed[trimmed.index(after: trimmed.startIndex)..<close]) else { continue }
            let rest = trimmed[trimmed.index(after: close)...].trimmingCharacters(in: .whitespaces)
            if let count = Int(rest.split(separator: " ").first ?? "") { counts[code, default: 0] += count }
        }
        return Result(statusCounts: counts, output: output)
    }
}
