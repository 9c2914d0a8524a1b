import COpenSSL
import Foundation

/// The certificates of one PEM file, every block of it, in file order.
///
/// Reads every block, not only the first (what `openssl x509` does, hiding a second root), and
/// tells precisely what is wrong with a file that is not a certificate bundle, because the fix
/// differs: a DER file needs converting, a private key means someone pointed at the wrong file
/// (and must not see the key in a log), a truncated block means a bad copy.
public struct CertificateBundle: Sendable {
    public var path: String
    public var certificates: [Certificate]

    public init(path: String, certificates: [Certificate]) {
        self.path = path
        self.certificates = certificates
    }

    /// Reads and classifies `path`. Throws ``TrustError`` naming the file for every bad input.
    public static func load(path: String) throws -> CertificateBundle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TrustError(.missingFile, file: path, detail: "no such file")
        }
        // A zero-length file is classified before reading: FileManager.contents(atPath:) leaks its
        // 4 KiB buffer on that path (seen under LeakSanitizer, swift-foundation 6.3).
        if !isDirectory.boolValue, let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size == 0 {
            throw TrustError(.emptyFile, file: path, detail: "is empty: expected one or more PEM certificates")
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw TrustError(.unreadableFile, file: path, detail: isDirectory.boolValue ? "is a directory, not a PEM file" : "cannot be read")
        }
        return try parse([UInt8](data), path: path)
    }

    /// Parses PEM bytes; `path` only names the source in errors.
    public static func parse(_ bytes: [UInt8], path: String) throws -> CertificateBundle {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            throw TrustError(.emptyFile, file: path, detail: "is empty: expected one or more PEM certificates")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let blocks = PEMBlockScan(text)
        if let key = blocks.begins.first(where: { $0.label.hasSuffix("PRIVATE KEY") }) {
            // Only the label and the line are shown, never a byte of the key.
            throw TrustError(.privateKey, file: path,
                             detail: "line \(key.line) begins a private key (\(key.label)), not a certificate; key material not shown. Point rootCerts/certChain at the certificate file")
        }
        if blocks.begins.isEmpty {
            if isDERCertificate(bytes) {
                throw TrustError(.derNotPEM, file: path,
                                 detail: "is a DER (binary) certificate; a PEM bundle is expected. Convert it: openssl x509 -inform der -in \(path) -out \(path).pem")
            }
            throw TrustError(.garbage, file: path, detail: "is not a certificate: no '-----BEGIN CERTIFICATE-----' line and not DER")
        }
        if let open = blocks.unterminated {
            throw TrustError(.truncatedPEM, file: path,
                             detail: "line \(open.line): '-----BEGIN \(open.label)-----' has no matching END line (truncated PEM block)")
        }
        // The labels PEM_read_bio_X509 reads; OpenSSL's "TRUSTED CERTIFICATE" (with trust settings) is not a plain root.
        let certificateBlocks = blocks.begins.filter { $0.label == "CERTIFICATE" || $0.label == "X509 CERTIFICATE" }
        if certificateBlocks.isEmpty {
            let labels = Set(blocks.begins.map(\.label)).sorted().joined(separator: ", ")
            throw TrustError(.noCertificate, file: path, detail: "holds PEM blocks (\(labels)) but no CERTIFICATE")
        }

        ERR_clear_error()
        let bio = try MemoryBIO(bytes)
        var certificates: [Certificate] = []
        while true {
            guard let x509 = PEM_read_bio_X509(bio.pointer, nil, nil, nil) else {
                let last = ERR_peek_last_error()
                let cleanEnd = switchover_ERR_GET_LIB(last) == ERR_LIB_PEM && switchover_ERR_GET_REASON(last) == PEM_R_NO_START_LINE
                if cleanEnd && certificates.count == certificateBlocks.count {
                    ERR_clear_error()
                    break
                }
                let errors = OpenSSLErrorStack.drain()
                let block = certificateBlocks.indices.contains(certificates.count) ? certificateBlocks[certificates.count] : nil
                let place = block.map { "line \($0.line): certificate #\(certificates.count + 1)" } ?? "certificate #\(certificates.count + 1)"
                throw TrustError(.malformedPEM, file: path, detail: "\(place) cannot be parsed", openSSLErrors: errors)
            }
            certificates.append(try Certificate(taking: x509))
        }
        return CertificateBundle(path: path, certificates: certificates)
    }

    private static func isDERCertificate(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer -> Bool in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            guard let x509 = d2i_X509(nil, &cursor, buffer.count) else {
                ERR_clear_error()
                return false
            }
            X509_free(x509)
            return true
        }
    }
}

/// Where PEM blocks begin and whether one is left open, found line by line so that errors can
/// name a line and so that a private key is recognised without decoding it.
struct PEMBlockScan {
    struct Begin { var label: String; var line: Int }
    var begins: [Begin] = []
    var unterminated: Begin?

    init(_ text: String) {
        var open: Begin?
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("-----BEGIN "), trimmed.hasSuffix("-----") {
                if let open, unterminated == nil { unterminated = open }
                let label = String(trimmed.dropFirst(11).dropLast(5))
                let begin = Begin(label: label, line: lineNumber)
                begins.append(begin)
                open = begin
            } else if trimmed.hasPrefix("-----END "), trimmed.hasSuffix("-----"), let current = open {
                if String(trimmed.dropFirst(9).dropLast(5)) == current.label { open = nil }
            }
        }
        if let open, unterminated == nil { unterminated = open }
    }
}
