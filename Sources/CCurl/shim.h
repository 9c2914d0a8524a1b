#ifndef SWITCHOVER_CCURL_SHIM_H
#define SWITCHOVER_CCURL_SHIM_H
// curl_easy_setopt and curl_easy_getinfo are variadic, so Swift cannot call them: one typed
// wrapper per argument kind. Everything else in libcurl is imported as it is.
#include <curl/curl.h>

static inline CURLcode switchover_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode switchover_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode switchover_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode switchover_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode switchover_curl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
typedef size_t (*switchover_curl_write_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);
static inline CURLcode switchover_curl_setopt_write_function(CURL *h, CURLoption o, switchover_curl_write_fn f) { return curl_easy_setopt(h, o, f); }
typedef int (*switchover_curl_xferinfo_fn)(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static inline CURLcode switchover_curl_setopt_xferinfo_function(CURL *h, CURLoption o, switchover_curl_xferinfo_fn f) { return curl_easy_setopt(h, o, f); }

static inline CURLcode switchover_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode switchover_curl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode switchover_curl_getinfo_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode switchover_curl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }

// CURL_GLOBAL_DEFAULT is a macro of macros; a constant Swift can read.
static inline long switchover_curl_global_default(void) { return CURL_GLOBAL_DEFAULT; }
static inline int switchover_curl_error_size(void) { return CURL_ERROR_SIZE; }

#endif
