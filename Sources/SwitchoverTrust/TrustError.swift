import COpenSSL

/// Every error SwitchoverTrust throws: bad input (exit 2 in the CLI) or OpenSSL failing in a way
/// that is not a verdict. A verdict ("the chain does not verify") is never an error: it is a
/// `fail` check in the ``TrustReport``.
///
/// One struct with a code, the file it is about and a detail, so that callers can match on the
/// code and people always see which file was wrong.
public struct TrustError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, without the context.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case missingFile, unreadableFile, emptyFile, garbage, derNotPEM, privateKey, truncatedPEM
            case malformedPEM, noCertificate, badProbeAddress, badProbeClient, openSSL
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file does not exist.
        public static let missingFile = Code(.missingFile)
        /// The file exists but cannot be read (permissions, a directory).
        public static let unreadableFile = Code(.unreadableFile)
        /// The file is empty or holds only white space.
        public static let emptyFile = Code(.emptyFile)
        /// Neither PEM nor DER: not a certificate at all.
        public static let garbage = Code(.garbage)
        /// A binary DER certificate where a PEM bundle is expected.
        public static let derNotPEM = Code(.derNotPEM)
        /// A private key where certificates are expected. The key is never echoed.
        public static let privateKey = Code(.privateKey)
        /// A PEM block that starts and never ends.
        public static let truncatedPEM = Code(.truncatedPEM)
        /// A complete PEM block whose content OpenSSL cannot parse (bad base64, bad DER).
        public static let malformedPEM = Code(.malformedPEM)
        /// PEM blocks, but none of them is a CERTIFICATE.
        public static let noCertificate = Code(.noCertificate)
        /// `spec.trust.probe` is not `host:port`.
        public static let badProbeAddress = Code(.badProbeAddress)
        /// A probe client certificate without its key, or the other way round.
        public static let badProbeClient = Code(.badProbeClient)
        /// OpenSSL failed where it should not (out of memory, an object it could not create).
        public static let openSSL = Code(.openSSL)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// The file (or, for a probe address, the cluster) the error is about.
    public var file: String?
    /// A sentence for people; never contains key material.
    public var detail: String
    /// OpenSSL's error queue at the time, when it had something to say.
    public var openSSLErrors: OpenSSLErrorStack?

    public init(_ code: Code, file: String?, detail: String, openSSLErrors: OpenSSLErrorStack? = nil) {
        self.code = code
        self.file = file
        self.detail = detail
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        var text = file.map { "\($0): \(detail)" } ?? detail
        if let openSSLErrors, !openSSLErrors.errors.isEmpty { text += " (OpenSSL: \(openSSLErrors))" }
        return text
    }
}

/// OpenSSL's thread-local error queue, drained into values: OpenSSL reports failures by pushing
/// onto this queue, and a stale entry left there would be blamed on the next, unrelated call.
public struct OpenSSLErrorStack: Sendable, Hashable, CustomStringConvertible {
    /// One entry: OpenSSL's packed code and its `ERR_error_string_n` text.
    public struct Entry: Sendable, Hashable {
        public var code: UInt
        public var text: String
        public var library: Int32 { switchover_ERR_GET_LIB(code) }
        public var reason: Int32 { switchover_ERR_GET_REASON(code) }
    }

    public var errors: [Entry]

    /// Takes every entry off the calling thread's queue, oldest first.
    public static func drain() -> OpenSSLErrorStack {
        var errors: [Entry] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            errors.append(Entry(code: code, text: text))
        }
        return OpenSSLErrorStack(errors: errors)
    }

    public var description: String { errors.map(\.text).joined(separator: "; ") }
}
