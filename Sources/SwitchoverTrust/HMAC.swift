import COpenSSL
import Foundation

/// HMAC-SHA256 through OpenSSL (`HMAC` with `EVP_sha256`): what signs every webhook and
/// notification POST (`X-Switchover-Signature: sha256=<hex>`).
public enum HMACSHA256 {
    /// The lowercase hex HMAC-SHA256 of `message` under `key`.
    public static func hex(key: Data, message: Data) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                // A zero-length buffer may have no base address; OpenSSL takes a valid pointer with length 0.
                let empty: [UInt8] = [0]
                return empty.withUnsafeBufferPointer { fallback in
                    HMAC(EVP_sha256(), k.baseAddress ?? UnsafeRawPointer(fallback.baseAddress!), Int32(k.count),
                         m.bindMemory(to: UInt8.self).baseAddress ?? fallback.baseAddress!, m.count,
                         &digest, &length) != nil
                }
            }
        }
        precondition(ok, "OpenSSL HMAC-SHA256 failed")
        return digest.prefix(Int(length)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
