#ifndef SWITCHOVER_COPENSSL_SHIM_H
#define SWITCHOVER_COPENSSL_SHIM_H
// OpenSSL spells much of its API as function-like macros (OPENSSL_free, the typed sk_X509_*
// stacks, BIO_get_mem_data, SSL_set_tlsext_host_name), which Swift cannot import: one static
// inline wrapper each. Add a wrapper here rather than re-deriving a macro's expansion in Swift.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/x509_vfy.h>

static inline void switchover_OPENSSL_free(void *p) { OPENSSL_free(p); }

static inline STACK_OF(X509) *switchover_sk_X509_new_null(void) { return sk_X509_new_null(); }
static inline int switchover_sk_X509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *switchover_sk_X509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline int switchover_sk_X509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
static inline void switchover_sk_X509_free(STACK_OF(X509) *sk) { sk_X509_free(sk); }
static inline void switchover_sk_X509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }

static inline int switchover_sk_GENERAL_NAME_num(const STACK_OF(GENERAL_NAME) *sk) { return sk_GENERAL_NAME_num(sk); }
static inline GENERAL_NAME *switchover_sk_GENERAL_NAME_value(const STACK_OF(GENERAL_NAME) *sk, int i) { return sk_GENERAL_NAME_value(sk, i); }
static inline void switchover_GENERAL_NAMES_free(GENERAL_NAMES *n) { GENERAL_NAMES_free(n); }

static inline long switchover_BIO_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline long switchover_SSL_set_tlsext_host_name(SSL *s, const char *name) { return SSL_set_tlsext_host_name(s, name); }

// Added for SwitchoverTrust (issue 3).
#include <openssl/ec.h>
#include <openssl/rsa.h>

static inline int switchover_ERR_GET_LIB(unsigned long e) { return ERR_GET_LIB(e); }
static inline int switchover_ERR_GET_REASON(unsigned long e) { return ERR_GET_REASON(e); }
static inline unsigned long switchover_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
static inline int switchover_MBSTRING_ASC(void) { return MBSTRING_ASC; }
/// The URI of a GENERAL_NAME when it is one (type GEN_URI), else NULL: Swift cannot reach into the union safely.
static inline const ASN1_IA5STRING *switchover_GENERAL_NAME_uri(const GENERAL_NAME *n) {
    return n->type == GEN_URI ? n->d.uniformResourceIdentifier : NULL;
}
static inline GENERAL_NAMES *switchover_X509_subject_alt_names(const X509 *x) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
}
/// EVP_EC_gen and EVP_RSA_gen are macros over the variadic EVP_PKEY_Q_keygen (test PKI).
static inline EVP_PKEY *switchover_EVP_EC_gen(const char *curve) { return EVP_EC_gen(curve); }
static inline EVP_PKEY *switchover_EVP_RSA_gen(unsigned int bits) { return EVP_RSA_gen(bits); }
static inline void switchover_X509V3_set_ctx_nodb(X509V3_CTX *ctx) { X509V3_set_ctx_nodb(ctx); }
static inline long switchover_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }

#endif
