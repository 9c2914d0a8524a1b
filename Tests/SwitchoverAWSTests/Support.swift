import Foundation
import Logging
import SwitchoverAWS
import SwitchoverNet
import SwitchoverTestKit
import Synchronization

/// Collects every log line, so a test can prove what was NOT logged (secrets).
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

struct CapturingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    func log(event: LogEvent) {
        lines.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

func capturingLogger() -> (Logger, LogLines) {
    let lines = LogLines()
    return (Logger(label: "test.aws") { _ in CapturingLogHandler(lines: lines) }, lines)
}

/// A client for moto (or a stand-in in front of it): small timeouts, and backoff short enough
/// for a test (`retries` throttled retries, 10 ms doubling).
func awsClient(_ credentials: AWSCredentials = AWSCredentials(accessKeyId: "testing", secretAccessKey: "testing"),
               retries: Int = 3, logger: Logger = Logger(label: "test.aws")) -> AWSClient {
    let http = HTTPClient(configuration: .init(connectTimeout: .seconds(2), timeout: .seconds(20)), logger: logger)
    return AWSClient(credentials: credentials, http: http,
                     retry: .init(maxRetries: retries, baseDelay: .milliseconds(10), maxDelay: .milliseconds(80)), logger: logger)
}

/// Parses what a boto3 script printed as JSON.
func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}
