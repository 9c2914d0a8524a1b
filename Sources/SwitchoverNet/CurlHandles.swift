import CCurl
import Foundation

/// libcurl is loaded on the first HTTP request, not at start (`switchover_curl_load`, which also
/// runs curl_global_init once): a command or a run that speaks no HTTP maps none of it.
/// nil when it is ready, else why not.
let curlLoadFailure: String? = {
    var message = [UInt8](repeating: 0, count: 512)
    let loaded = message.withUnsafeMutableBufferPointer { buffer in
        buffer.withMemoryRebound(to: CChar.self) { switchover_curl_load($0.baseAddress, $0.count) }
    }
    return loaded == 0 ? nil : String(decoding: message.prefix { $0 != 0 }, as: UTF8.self)
}()

/// Owns one curl easy handle and its error buffer; cleans both up in `deinit`.
///
/// `@unchecked Sendable`: a handle is used by one thread at a time. The client takes it out of
/// its idle list under a lock, runs one transfer with it on one Dispatch work item, and puts it
/// back under the lock; no two transfers ever share it.
final class CurlEasy: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    /// CURLOPT_ERRORBUFFER: curl writes its detailed message here; it must outlive each transfer.
    let errorBuffer: UnsafeMutablePointer<CChar>
    private let errorBufferSize = Int(switchover_curl_error_size())

    init() throws {
        if let curlLoadFailure {
            throw HTTPError(code: .other, curlCode: Int(CURLE_FAILED_INIT.rawValue), message: curlLoadFailure,
                            url: "", method: "")
        }
        guard let handle = switchover_curl_easy_init() else {
            throw HTTPError(code: .other, curlCode: Int(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init failed",
                            url: "", method: "")
        }
        pointer = handle
        errorBuffer = .allocate(capacity: errorBufferSize)
        errorBuffer.initialize(repeating: 0, count: errorBufferSize)
    }

    /// The message curl left in the error buffer, or "" when it left none.
    var errorMessage: String { String(cString: errorBuffer) }

    func clearError() { errorBuffer[0] = 0 }

    deinit {
        switchover_curl_easy_cleanup(pointer)
        errorBuffer.deallocate()
    }
}

/// Owns a `curl_slist` of request header lines; frees it with curl_slist_free_all in `deinit`.
/// It must stay alive until curl_easy_perform returns.
final class CurlHeaderList {
    private(set) var pointer: UnsafeMutablePointer<curl_slist>?

    init(lines: [String]) throws {
        for line in lines {
            guard let appended = switchover_curl_slist_append(pointer, line) else {
                throw HTTPError(code: .other, curlCode: Int(CURLE_OUT_OF_MEMORY.rawValue),
                                message: "curl_slist_append failed", url: "", method: "")
            }
            pointer = appended
        }
    }

    deinit {
        if let pointer { switchover_curl_slist_free_all(pointer) }
    }
}

/// A flag set from the task-cancellation handler and read by curl's progress callback on the
/// transfer thread.
///
/// `@unchecked Sendable`: the only state, `cancelled`, is read and written under `lock`.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    func cancel() { lock.withLock { cancelled = true } }
    var isCancelled: Bool { lock.withLock { cancelled } }
}

/// What curl's callbacks fill in during one transfer. Reached from C through an unretained
/// pointer that `HTTPClient.perform` keeps alive for the duration of curl_easy_perform.
final class TransferState {
    var body = Data()
    var headers: [HTTPHeader] = []
    var tooLarge = false
    let maxBytes: Int
    let cancellation: CancellationFlag

    init(maxBytes: Int, cancellation: CancellationFlag) {
        self.maxBytes = maxBytes
        self.cancellation = cancellation
    }

    /// One raw header line from curl ("Name: value\r\n", or a status line).
    func addHeaderLine(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new response begins (after a 100 Continue, or a redirect): keep only its headers.
            headers.removeAll()
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        let name = String(trimmed[..<colon]).trimmingCharacters(in: .whitespaces)
        let value = String(trimmed[trimmed.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        headers.append(HTTPHeader(name, value))
    }
}
