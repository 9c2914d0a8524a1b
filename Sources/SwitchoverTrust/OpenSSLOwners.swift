import COpenSSL
import Foundation

// One final class per OpenSSL pointer: it is created in init (or the init fails) and freed in
// deinit, so that no path through the code, thrown errors included, can leak or double-free.
// None of these is Sendable: each lives inside one verification on one thread.

/// An `X509_STORE`: the trust anchors one verification may end at.
final class X509Store {
    let pointer: OpaquePointer
    /// The certificates added, kept alive for as long as the store might hand them out.
    private var anchors: [Certificate] = []

    init(trusting roots: [Certificate], flags: UInt) throws {
        guard let pointer = X509_STORE_new() else {
            throw TrustError(.openSSL, file: nil, detail: "X509_STORE_new failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
        for root in roots {
            // X509_STORE_add_cert takes its own reference; a duplicate is not an error.
            _ = X509_STORE_add_cert(pointer, root.pointer)
            anchors.append(root)
        }
        ERR_clear_error()
        X509_STORE_set_flags(pointer, flags)
    }

    deinit { X509_STORE_free(pointer) }
}

/// An `X509_STORE_CTX`: the state of one `X509_verify_cert` call.
final class X509StoreContext {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = X509_STORE_CTX_new() else {
            throw TrustError(.openSSL, file: nil, detail: "X509_STORE_CTX_new failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
    }

    deinit { X509_STORE_CTX_free(pointer) }
}

/// A `STACK_OF(X509)` that borrows its certificates: freeing it frees the stack only, never the
/// certificates, which their ``Certificate`` owners free.
final class X509Stack {
    let pointer: OpaquePointer
    private let members: [Certificate]

    init(_ certificates: [Certificate]) throws {
        guard let pointer = switchover_sk_X509_new_null() else {
            throw TrustError(.openSSL, file: nil, detail: "sk_X509_new_null failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
        self.members = certificates
        for certificate in certificates where switchover_sk_X509_push(pointer, certificate.pointer) == 0 {
            throw TrustError(.openSSL, file: nil, detail: "sk_X509_push failed", openSSLErrors: .drain())
        }
    }

    deinit { switchover_sk_X509_free(pointer) }
}

/// A read-only memory `BIO` over bytes this object keeps alive.
final class MemoryBIO {
    let pointer: OpaquePointer
    private let storage: UnsafeMutableRawBufferPointer

    init(_ bytes: some Collection<UInt8>) throws {
        storage = .allocate(byteCount: max(bytes.count, 1), alignment: 1)
        storage.copyBytes(from: bytes)
        guard let pointer = BIO_new_mem_buf(storage.baseAddress, Int32(bytes.count)) else {
            storage.deallocate()
            throw TrustError(.openSSL, file: nil, detail: "BIO_new_mem_buf failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
    }

    deinit {
        BIO_free(pointer)
        storage.deallocate()
    }
}

/// A writable memory `BIO`, for OpenSSL functions that print (names, errors).
final class WritableMemoryBIO {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = BIO_new(BIO_s_mem()) else {
            throw TrustError(.openSSL, file: nil, detail: "BIO_new failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
    }

    var string: String {
        var data: UnsafeMutablePointer<CChar>?
        let length = switchover_BIO_get_mem_data(pointer, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    deinit { BIO_free(pointer) }
}

/// An `SSL_CTX` for the probe's client side.
final class SSLContext {
    let pointer: OpaquePointer

    init() throws {
        guard let pointer = SSL_CTX_new(TLS_client_method()) else {
            throw TrustError(.openSSL, file: nil, detail: "SSL_CTX_new failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
    }

    deinit { SSL_CTX_free(pointer) }
}

/// One `SSL` connection object. It does not own the socket: the probe closes that itself.
final class SSLConnection {
    let pointer: OpaquePointer
    /// SSL holds a reference on its SSL_CTX, but keeping ours alive too costs nothing and reads clearly.
    private let context: SSLContext

    init(context: SSLContext) throws {
        guard let pointer = SSL_new(context.pointer) else {
            throw TrustError(.openSSL, file: nil, detail: "SSL_new failed", openSSLErrors: .drain())
        }
        self.pointer = pointer
        self.context = context
    }

    deinit { SSL_free(pointer) }
}
