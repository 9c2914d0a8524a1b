import COpenSSL
import Foundation

/// Test PKI built with OpenSSL's C API at run time: roots, intermediates and SPIFFE leaves with
/// any validity window (expired, not yet valid, expiring in 10 days), CA or not, EC P-256 or
/// RSA keys. Nothing here is ever committed; every key lives in memory and in the test's
/// temporary folder.
///
/// The C API rather than the `openssl` command line because OpenSSL 3.0's `req`/`x509` cannot
/// set an arbitrary notBefore, and because making a dozen certificates this way takes
/// milliseconds instead of a dozen process starts.
public enum TrustPKI {
    public enum KeyKind: Sendable { case ecP256, rsa2048 }

    /// A new root (self-signed CA).
    public static func root(_ commonName: String, organization: String = "cluster.local", key: KeyKind = .ecP256,
                            notBefore: Date = Date().addingTimeInterval(-86_400),
                            notAfter: Date = Date().addingTimeInterval(3_650 * 86_400)) throws -> IssuedCertificate {
        let keyPair = try IssuedKey(key)
        return try IssuedCertificate.make(subject: [("O", organization), ("CN", commonName)], key: keyPair, issuer: nil,
                                        isCA: true, pathLength: nil, uris: [], dnsNames: [],
                                        notBefore: notBefore, notAfter: notAfter)
    }
}

/// A private key, owned (EVP_PKEY freed in deinit).
public final class IssuedKey: @unchecked Sendable {
    // @unchecked Sendable: never mutated after init; OpenSSL keys are safe for concurrent reads.
    let pointer: OpaquePointer

    public init(_ kind: TrustPKI.KeyKind) throws {
        let made: OpaquePointer? = switch kind {
        case .ecP256: switchover_EVP_EC_gen("P-256")
        case .rsa2048: switchover_EVP_RSA_gen(2048)
        }
        guard let made else { throw TestKitError("key generation failed") }
        pointer = made
    }

    deinit { EVP_PKEY_free(pointer) }

    /// PKCS#8 PEM: only ever written into a test's temporary folder.
    public var pem: String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        PEM_write_bio_PrivateKey(bio, pointer, nil, nil, 0, nil, nil)
        return IssuedCertificate.read(bio)
    }
}

/// A certificate and the key it was made for, able to issue more.
public final class IssuedCertificate: @unchecked Sendable {
    // @unchecked Sendable: the X509 is complete and never mutated after `make` returns.
    let pointer: OpaquePointer
    public let key: IssuedKey

    private init(pointer: OpaquePointer, key: IssuedKey) {
        self.pointer = pointer
        self.key = key
    }

    deinit { X509_free(pointer) }

    /// An intermediate CA issued by this one.
    public func intermediate(_ commonName: String, organization: String = "cluster.local", key: TrustPKI.KeyKind = .ecP256,
                             isCA: Bool = true, pathLength: Int? = nil,
                             notBefore: Date = Date().addingTimeInterval(-3_600),
                             notAfter: Date = Date().addingTimeInterval(365 * 86_400)) throws -> IssuedCertificate {
        try IssuedCertificate.make(subject: [("O", organization), ("CN", commonName)], key: IssuedKey(key), issuer: self,
                                 isCA: isCA, pathLength: pathLength, uris: [], dnsNames: [],
                                 notBefore: notBefore, notAfter: notAfter)
    }

    /// A workload certificate with a SPIFFE URI SAN, as istiod issues them.
    public func leaf(spiffe: String?, dnsNames: [String] = ["localhost"], key: TrustPKI.KeyKind = .ecP256,
                     notBefore: Date = Date().addingTimeInterval(-3_600),
                     notAfter: Date = Date().addingTimeInterval(86_400)) throws -> IssuedCertificate {
        try IssuedCertificate.make(subject: [("O", "workload")], key: IssuedKey(key), issuer: self, isCA: false,
                                 pathLength: nil, uris: spiffe.map { [$0] } ?? [], dnsNames: dnsNames,
                                 notBefore: notBefore, notAfter: notAfter)
    }

    public var pem: String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        PEM_write_bio_X509(bio, pointer)
        return IssuedCertificate.read(bio)
    }

    public var der: Data {
        let length = i2d_X509(pointer, nil)
        var bytes = [UInt8](repeating: 0, count: Int(max(length, 0)))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var cursor = buffer.baseAddress
            _ = i2d_X509(pointer, &cursor)
        }
        return Data(bytes)
    }

    /// Writes the PEM of `certificates`, in order, to `url`.
    public static func writeBundle(_ certificates: [IssuedCertificate], to url: URL) throws {
        try certificates.map(\.pem).joined().write(to: url, atomically: true, encoding: .utf8)
    }

    static func read(_ bio: OpaquePointer) -> String {
        var data: UnsafeMutablePointer<CChar>?
        let length = switchover_BIO_get_mem_data(bio, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    static func make(subject: [(String, String)], key: IssuedKey, issuer: IssuedCertificate?, isCA: Bool, pathLength: Int?,
                     uris: [String], dnsNames: [String], notBefore: Date, notAfter: Date) throws -> IssuedCertificate {
        guard let x509 = X509_new() else { throw TestKitError("X509_new failed") }
        let certificate = IssuedCertificate(pointer: x509, key: key)
        X509_set_version(x509, 2)
        // A random positive 64-bit serial: strict verification rejects zero or negative serials.
        ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), UInt64.random(in: 1...UInt64(Int64.max)))
        let name = X509_NAME_new()!
        defer { X509_NAME_free(name) }
        for (field, value) in subject {
            X509_NAME_add_entry_by_txt(name, field, switchover_MBSTRING_ASC(), value, -1, -1, 0)
        }
        X509_set_subject_name(x509, name)
        X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.pointer) } ?? name)
        ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore.timeIntervalSince1970))
        ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter.timeIntervalSince1970))
        X509_set_pubkey(x509, key.pointer)

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.pointer ?? x509, x509, nil, nil, 0)
        switchover_X509V3_set_ctx_nodb(&context)
        var extensions: [(Int32, String)] = []
        if isCA {
            extensions.append((NID_basic_constraints, "critical,CA:TRUE" + (pathLength.map { ",pathlen:\($0)" } ?? "")))
            extensions.append((NID_key_usage, "critical,keyCertSign,cRLSign"))
        } else {
            extensions.append((NID_basic_constraints, "critical,CA:FALSE"))
            extensions.append((NID_key_usage, "critical,digitalSignature,keyEncipherment"))
            extensions.append((NID_ext_key_usage, "serverAuth,clientAuth"))
        }
        extensions.append((NID_subject_key_identifier, "hash"))
        if issuer != nil { extensions.append((NID_authority_key_identifier, "keyid:always")) }
        let sans = uris.map { "URI:\($0)" } + dnsNames.map { "DNS:\($0)" }
        if !sans.isEmpty { extensions.append((NID_subject_alt_name, (subject.contains { $0.0 == "CN" } ? "" : "critical,") + sans.joined(separator: ","))) }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw TestKitError("extension \(nid)=\(value) failed")
            }
            X509_add_ext(x509, ext, -1)
            X509_EXTENSION_free(ext)
        }
        let signer = issuer?.key ?? key
        guard X509_sign(x509, signer.pointer, EVP_sha256()) > 0 else { throw TestKitError("X509_sign failed") }
        return certificate
    }
}
