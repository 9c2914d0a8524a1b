#include "switchover_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

// The libcurl functions Switchover uses, resolved from libcurl.so.4 (the SONAME of libcurl 7
// and 8) by `load`, once.
static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];

static void load(void) {
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "cannot load libcurl.so.4 (install libcurl4): %s", why ? why : "unknown error");
        return;
    }
    struct { const char *name; void **slot; } symbols[] = {
        {"curl_global_init", (void **)&api.global_init},
        {"curl_easy_init", (void **)&api.easy_init},
        {"curl_easy_cleanup", (void **)&api.easy_cleanup},
        {"curl_easy_reset", (void **)&api.easy_reset},
        {"curl_easy_perform", (void **)&api.easy_perform},
        {"curl_easy_strerror", (void **)&api.easy_strerror},
        {"curl_easy_setopt", (void **)&api.easy_setopt},
        {"curl_easy_getinfo", (void **)&api.easy_getinfo},
        {"curl_slist_append", (void **)&api.slist_append},
        {"curl_slist_free_all", (void **)&api.slist_free_all},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(library, symbols[i].name);
        if (*symbols[i].slot == NULL) {
            snprintf(failure, sizeof failure, "libcurl.so.4 has no %s", symbols[i].name);
            api.global_init = NULL;
            dlclose(library);
            return;
        }
    }
    // curl_global_init is not thread-safe: it runs here, under pthread_once.
    CURLcode code = api.global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) {
        snprintf(failure, sizeof failure, "curl_global_init failed: %s", api.easy_strerror(code));
        api.global_init = NULL;
        dlclose(library);
    }
}

int switchover_curl_load(char *message, size_t size) {
    pthread_once(&once, load);
    if (api.global_init != NULL) return 0;
    if (message != NULL && size > 0) snprintf(message, size, "%s", failure);
    return -1;
}

CURL *switchover_curl_easy_init(void) { return api.easy_init(); }
void switchover_curl_easy_cleanup(CURL *h) { api.easy_cleanup(h); }
void switchover_curl_easy_reset(CURL *h) { api.easy_reset(h); }
CURLcode switchover_curl_easy_perform(CURL *h) { return api.easy_perform(h); }
const char *switchover_curl_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
struct curl_slist *switchover_curl_slist_append(struct curl_slist *list, const char *line) { return api.slist_append(list, line); }
void switchover_curl_slist_free_all(struct curl_slist *list) { api.slist_free_all(list); }

CURLcode switchover_curl_setopt_long(CURL *h, CURLoption o, long v) { return api.easy_setopt(h, o, v); }
CURLcode switchover_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return api.easy_setopt(h, o, v); }
CURLcode switchover_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return api.easy_setopt(h, o, v); }
CURLcode switchover_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return api.easy_setopt(h, o, v); }
CURLcode switchover_curl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return api.easy_setopt(h, o, v); }
CURLcode switchover_curl_setopt_write_function(CURL *h, CURLoption o, switchover_curl_write_fn f) { return api.easy_setopt(h, o, f); }
CURLcode switchover_curl_setopt_xferinfo_function(CURL *h, CURLoption o, switchover_curl_xferinfo_fn f) { return api.easy_setopt(h, o, f); }

CURLcode switchover_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return api.easy_getinfo(h, i, v); }
CURLcode switchover_curl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return api.easy_getinfo(h, i, v); }
