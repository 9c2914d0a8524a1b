import COpenSSL
import Foundation

/// SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto (`EVP_Digest`, one-shot `HMAC` with
/// `EVP_sha256`), and lowercase hex: the one place the project hashes, for webhook signatures
/// (`X-Switchover-Signature`), certificate fingerprints and AWS SigV4 alike.
public enum OpenSSLDigest {
    /// SHA-256 of `bytes`.
    public static func sha256(_ bytes: some ContiguousBytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = bytes.withUnsafeBytes { raw in
            // A zero-length buffer may have no base address; OpenSSL takes any valid pointer with count 0.
            withUnsafeBytes(of: UInt8(0)) { fallback in
                EVP_Digest(raw.baseAddress ?? fallback.baseAddress!, raw.count, &digest, &length, EVP_sha256(), nil) == 1
            }
        }
        precondition(ok && length == 32, "OpenSSL EVP_Digest(SHA-256) failed")
        return Array(digest.prefix(Int(length)))
    }

    /// HMAC-SHA256 of `message` under `key`.
    public static func hmacSHA256(key: some ContiguousBytes, message: some ContiguousBytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                withUnsafeBytes(of: UInt8(0)) { fallback in
                    HMAC(EVP_sha256(), k.baseAddress ?? fallback.baseAddress!, Int32(k.count),
                         (m.baseAddress ?? fallback.baseAddress!).assumingMemoryBound(to: UInt8.self), m.count,
                         &digest, &length) != nil
                }
            }
        }
        precondition(ok && length == 32, "OpenSSL HMAC-SHA256 failed")
        return Array(digest.prefix(Int(length)))
    }

    /// Lowercase hex, without Foundation's `String(format:)` (which dominated the trust benchmark).
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// HMAC-SHA256 as webhooks and notifications are signed (`X-Switchover-Signature: sha256=<hex>`).
public enum HMACSHA256 {
    /// The lowercase hex HMAC-SHA256 of `message` under `key`.
    public static func hex(key: Data, message: Data) -> String {
        OpenSSLDigest.hex(OpenSSLDigest.hmacSHA256(key: key, message: message))
    }
}
