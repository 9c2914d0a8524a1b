#ifndef SWITCHOVER_CURL_H
#define SWITCHOVER_CURL_H
// libcurl, loaded on first use instead of linked: libcurl brings about 25 shared libraries
// (GnuTLS, Kerberos, LDAP, SSH, ...) whose loading and constructors cost 4.5 MiB resident and
// milliseconds of start-up in every command, and most commands and many runs (HAProxy, no
// Prometheus gate) never speak HTTP. `switchover_curl_load` opens libcurl.so.4 once; every
// other function here may be called only after it succeeded.
//
// curl_easy_setopt and curl_easy_getinfo are variadic, so Swift cannot call them: one typed
// wrapper per argument kind. The header is libcurl's own, for its types and constants.
#include <stddef.h>
#include <curl/curl.h>

/// 0 once libcurl.so.4 is loaded and curl_global_init succeeded (the first call does both,
/// once, thread-safely); otherwise -1 with the reason in `message`.
int switchover_curl_load(char *message, size_t size);

CURL *switchover_curl_easy_init(void);
void switchover_curl_easy_cleanup(CURL *h);
void switchover_curl_easy_reset(CURL *h);
CURLcode switchover_curl_easy_perform(CURL *h);
const char *switchover_curl_easy_strerror(CURLcode code);
struct curl_slist *switchover_curl_slist_append(struct curl_slist *list, const char *line);
void switchover_curl_slist_free_all(struct curl_slist *list);

CURLcode switchover_curl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode switchover_curl_setopt_string(CURL *h, CURLoption o, const char *v);
CURLcode switchover_curl_setopt_pointer(CURL *h, CURLoption o, void *v);
CURLcode switchover_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
CURLcode switchover_curl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v);
typedef size_t (*switchover_curl_write_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);
CURLcode switchover_curl_setopt_write_function(CURL *h, CURLoption o, switchover_curl_write_fn f);
typedef int (*switchover_curl_xferinfo_fn)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
CURLcode switchover_curl_setopt_xferinfo_function(CURL *h, CURLoption o, switchover_curl_xferinfo_fn f);

CURLcode switchover_curl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode switchover_curl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v);

static inline int switchover_curl_error_size(void) { return CURL_ERROR_SIZE; }

#endif
