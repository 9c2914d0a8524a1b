import COpenSSL
import Foundation

/// One X.509 certificate: owns its `X509` and exposes what trust decisions need, read once at
/// load time.
///
/// `@unchecked Sendable`: after `init` the `X509` is only read (verification, printing), never
/// mutated, and `init` fills OpenSSL's lazily computed extension cache (`X509_check_ca`) so that
/// later reads from several threads do not race on it.
public final class Certificate: @unchecked Sendable, CustomStringConvertible {
    let pointer: OpaquePointer

    /// The subject, RFC 2253 (`CN=Istio Root CA,O=cluster.local`).
    public let subject: String
    public let issuer: String
    public let notBefore: Date
    public let notAfter: Date
    /// SHA-256 of the DER, lowercase hex: the only identity roots are compared by.
    public let sha256: String
    /// basicConstraints CA:TRUE, and keyCertSign when a keyUsage extension is present.
    public let isCA: Bool
    /// URI subject alternative names (SPIFFE IDs on workload certificates).
    public let uriSANs: [String]

    /// Takes ownership of `pointer` (one reference).
    init(taking pointer: OpaquePointer) throws {
        self.pointer = pointer
        _ = X509_check_ca(pointer)
        subject = try Certificate.name(X509_get_subject_name(pointer))
        issuer = try Certificate.name(X509_get_issuer_name(pointer))
        notBefore = Certificate.date(X509_get0_notBefore(pointer)) ?? .distantPast
        notAfter = Certificate.date(X509_get0_notAfter(pointer)) ?? .distantPast
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(pointer, EVP_sha256(), &digest, &length) == 1 else {
            throw TrustError(.openSSL, file: nil, detail: "X509_digest failed", openSSLErrors: .drain())
        }
        sha256 = OpenSSLDigest.hex(digest.prefix(Int(length)))
        let flags = X509_get_extension_flags(pointer)
        let keyUsage = X509_get_key_usage(pointer)
        isCA = flags & UInt32(EXFLAG_CA) != 0 && (keyUsage == UInt32.max || keyUsage & UInt32(KU_KEY_CERT_SIGN) != 0)
        uriSANs = Certificate.uris(pointer)
    }

    /// Takes a new reference on `pointer` (for certificates OpenSSL still owns, such as a peer's).
    convenience init(retaining pointer: OpaquePointer) throws {
        X509_up_ref(pointer)
        try self.init(taking: pointer)
    }

    deinit { X509_free(pointer) }

    /// The DER encoding.
    public var der: [UInt8] {
        let length = i2d_X509(pointer, nil)
        guard length > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_X509(pointer, &cursor)
        }
        return bytes
    }

    /// True when the certificate names itself as issuer and its signature checks with its own key.
    public var isSelfSigned: Bool { X509_self_signed(pointer, 1) == 1 }

    public var description: String { "\(subject) [sha256 \(sha256.prefix(16))…]" }

    private static func name(_ name: OpaquePointer?) throws -> String {
        guard let name else { return "" }
        let bio = try WritableMemoryBIO()
        X509_NAME_print_ex(bio.pointer, name, 0, switchover_XN_FLAG_RFC2253())
        return bio.string
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }

    private static func uris(_ pointer: OpaquePointer) -> [String] {
        guard let names = switchover_X509_subject_alt_names(pointer) else {
            ERR_clear_error()
            return []
        }
        defer { switchover_GENERAL_NAMES_free(names) }
        var uris: [String] = []
        for index in 0..<switchover_sk_GENERAL_NAME_num(names) {
            guard let name = switchover_sk_GENERAL_NAME_value(names, index),
                  let uri = switchover_GENERAL_NAME_uri(name),
                  let data = ASN1_STRING_get0_data(uri) else { continue }
            let length = Int(ASN1_STRING_length(uri))
            uris.append(String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self))
        }
        return uris
    }
}
