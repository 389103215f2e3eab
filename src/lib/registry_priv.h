/* registry internals shared by registry.c and registry_auth.c. */
#ifndef OBUILD_REGISTRY_PRIV_H
#define OBUILD_REGISTRY_PRIV_H

#define MAX_ERROR_BODY (64 << 10)

#include <obuild/registry.h>
#include <obuild/util.h>

#include <curl/curl.h>
#include <pthread.h>
#include <time.h>

/* What we know about one registry host. */
struct reg_host
{
  char *name;            /* host[:port] */
  bool probed;           /* GET /v2/ done */
  bool plain_http;
  struct ob_auth_challenge chal; /* from the last 401 */
  bool creds_looked_up;
  char *user, *password; /* NULL when anonymous */
  struct reg_host *next;
};

struct reg_token
{
  char *host, *scope, *token;
  time_t expires;
  struct reg_token *next;
};

struct ob_registry
{
  struct ob_registry_opts opts; /* strings owned (copies) */
  char *ca_blob;                /* combined CA bundle when cert_dir has *.crt */
  size_t ca_len;
  char *client_cert, *client_key;
  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
  pthread_mutex_t lock;          /* hosts, tokens */
  pthread_mutex_t progress_lock;
  struct reg_host *hosts;
  struct reg_token *tokens;
};

/* One HTTP exchange (see reg_do in registry.c). */
struct reg_req
{
  const char *method;       /* GET HEAD POST PUT */
  struct reg_host *host;    /* registry (auth, scheme); NULL: url is absolute, no auth */
  const char *url;          /* "/v2/..." relative to the host, or absolute */
  const char *scope;        /* token scope, may be NULL */
  const char *accept;
  const char *content_type;
  const char *user, *password; /* Basic auth for this request (token server) */
  const void *body;         /* PUT/POST body from memory ... */
  size_t body_len;
  int body_fd;              /* ... or from a file (-1: none) */
  int64_t body_size;
  int out_fd;               /* 2xx body goes there (-1: memory) */
  struct ob_sha256 *hash;   /* hash of what went to out_fd */
  int64_t max_size;         /* abort beyond this many body bytes (-1: none) */
  volatile int *cancel;     /* abort when *cancel becomes non-zero */
  bool learn_only;          /* a 401 only records the challenge (the probe) */
  void (*on_bytes) (void *data, int64_t done); /* body bytes so far (progress) */
  void *on_bytes_data;
  /* results */
  long code;
  struct ob_buf resp;       /* body (non-2xx, or 2xx when out_fd < 0) */
  int64_t received;
  bool too_big;
  int64_t body_off;
  char *location, *docker_digest, *resp_type, *www_auth;
};

void reg_req_clear (struct reg_req *q);
int reg_do (struct ob_registry *r, CURL *easy, struct reg_req *q, ob_error_t *err);
/* The one-line error for a non-2xx answer. */
int reg_http_error (struct reg_req *q, ob_error_t *err);
struct reg_host *reg_host_get (struct ob_registry *r, const char *name);
/* GET /v2/ once per host: the scheme that works, the auth challenge. */
int reg_probe (struct ob_registry *r, CURL *easy, struct reg_host *h, ob_error_t *err);

/* registry_auth.c */
/* Authorization header value for q (NULL: none), fetching a token when the
 * host asked for Bearer auth and none is cached for the scope. */
int reg_auth_header (struct ob_registry *r, CURL *easy, struct reg_host *h, const char *scope,
                     bool force, char **out, ob_error_t *err);
void reg_tokens_free (struct reg_token *t);
char *reg_base64 (const char *s, size_t n);

#endif
