import COpenSSL
import Foundation

/// The outcome of one `X509_verify_cert` call.
struct ChainVerification {
    var verified: Bool
    /// `X509_verify_cert_error_string` of the failure, with the depth and subject it happened at.
    var reason: String?
    /// The trust anchor the path ended at, when it verified.
    var anchor: Certificate?
    var depth: Int = 0
}

/// OpenSSL's verifier, configured once for Switchover: strict X.509 (RFC 5280 rules that default
/// OpenSSL lets slide, such as a CA without keyUsage or a non-critical basicConstraints) and an
/// explicit verification time, so that a check is reproducible and "expires within the horizon"
/// can never disagree with "is expired".
enum ChainVerifier {
    static let flags = UInt(X509_V_FLAG_X509_STRICT)

    /// Verifies `chain[0]` with `chain[1...]` as untrusted intermediates, ending at one of `roots`.
    static func verify(_ chain: [Certificate], against roots: [Certificate], at time: Date) throws -> ChainVerification {
        guard let target = chain.first else { return ChainVerification(verified: false, reason: "empty chain") }
        let store = try X509Store(trusting: roots, flags: flags)
        let untrusted = try X509Stack(Array(chain.dropFirst()))
        let context = try X509StoreContext()
        guard X509_STORE_CTX_init(context.pointer, store.pointer, target.pointer, untrusted.pointer) == 1 else {
            throw TrustError(.openSSL, file: nil, detail: "X509_STORE_CTX_init failed", openSSLErrors: .drain())
        }
        X509_STORE_CTX_set_time(context.pointer, 0, time_t(time.timeIntervalSince1970))
        let result = X509_verify_cert(context.pointer)
        defer { ERR_clear_error() }
        if result == 1 {
            var anchor: Certificate?
            if let built = X509_STORE_CTX_get0_chain(context.pointer) {
                let count = switchover_sk_X509_num(built)
                if count > 0, let last = switchover_sk_X509_value(built, count - 1) {
                    anchor = try Certificate(retaining: last)
                }
                return ChainVerification(verified: true, reason: nil, anchor: anchor, depth: Int(count) - 1)
            }
            return ChainVerification(verified: true, reason: nil, anchor: nil)
        }
        let code = X509_STORE_CTX_get_error(context.pointer)
        let depth = Int(X509_STORE_CTX_get_error_depth(context.pointer))
        let message = X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "error \(code)"
        var at = ""
        if let current = X509_STORE_CTX_get_current_cert(context.pointer) {
            let certificate = try Certificate(retaining: current)
            at = " (\(certificate.subject))"
        }
        return ChainVerification(verified: false, reason: "\(message) at depth \(depth)\(at)", anchor: nil, depth: depth)
    }
}
