/* registry HTTP layer: one request with authentication, retries and
 * redirects (reg_do), the /v2/ probe, error messages. */
#include "config.h"
#include "registry_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TRIES 3

/* ---- HTTP ---- */

void
reg_req_clear (struct reg_req *q)
{
  ob_buf_free (&q->resp);
  free (q->location);
  free (q->docker_digest);
  free (q->resp_type);
  free (q->www_auth);
  q->location = q->docker_digest = q->resp_type = q->www_auth = NULL;
}

static size_t
write_cb (char *data, size_t size, size_t nmemb, void *u)
{
  struct reg_req *q = u;
  size_t n = size * nmemb;
  long code = 0;
  CURL *easy = NULL;
  (void) easy;
  code = q->code; /* set by header_cb from the status line */
  if (q->max_size >= 0 && q->received + (int64_t) n > q->max_size && code / 100 == 2)
    {
      q->too_big = true;
      return 0;
    }
  q->received += n;
  if (code / 100 == 2 && q->out_fd >= 0)
    {
      const char *p = data;
      size_t left = n;
      while (left > 0)
        {
          ssize_t w = write (q->out_fd, p, left);
          if (w < 0 && errno == EINTR)
            continue;
          if (w <= 0)
            return 0;
          p += w;
          left -= w;
        }
      if (q->hash)
        ob_sha256_update (q->hash, data, n);
      return n;
    }
  if (code / 100 != 2 && q->resp.len + n > MAX_ERROR_BODY)
    return n; /* keep the start of an error page only */
  ob_buf_add (&q->resp, data, n);
  return n;
}

static char *
header_value (const char *line, size_t n, const char *name)
{
  size_t k = strlen (name);
  const char *v, *e;
  if (n <= k || strncasecmp (line, name, k) != 0 || line[k] != ':')
    return NULL;
  v = line + k + 1;
  e = line + n;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
    e--;
  return ob_xstrndup (v, e - v);
}

static size_t
header_cb (char *data, size_t size, size_t nmemb, void *u)
{
  struct reg_req *q = u;
  size_t n = size * nmemb;
  char *v;
  if (n > 5 && strncmp (data, "HTTP/", 5) == 0)
    {
      /* A new response (after a redirect or 100-continue): forget the last. */
      const char *sp = memchr (data, ' ', n);
      q->code = sp ? strtol (sp + 1, NULL, 10) : 0;
      free (q->location);
      free (q->docker_digest);
      free (q->resp_type);
      free (q->www_auth);
      q->location = q->docker_digest = q->resp_type = q->www_auth = NULL;
      return n;
    }
#define TAKE(field, name)                                                                    \
  if ((v = header_value (data, n, name)))                                                   \
    {                                                                                        \
      free (q->field);                                                                       \
      q->field = v;                                                                          \
      return n;                                                                              \
    }
  TAKE (location, "Location");
  TAKE (docker_digest, "Docker-Content-Digest");
  TAKE (resp_type, "Content-Type");
#undef TAKE
  if ((v = header_value (data, n, "WWW-Authenticate")))
    {
      /* Several challenges: prefer Bearer. */
      if (q->www_auth == NULL || strncasecmp (v, "Bearer", 6) == 0)
        {
          free (q->www_auth);
          q->www_auth = v;
        }
      else
        free (v);
    }
  return n;
}

static size_t
read_cb (char *buf, size_t size, size_t nmemb, void *u)
{
  struct reg_req *q = u;
  size_t n = size * nmemb;
  if (q->body_fd >= 0)
    {
      ssize_t r;
      do
        r = read (q->body_fd, buf, n);
      while (r < 0 && errno == EINTR);
      return r < 0 ? CURL_READFUNC_ABORT : (size_t) r;
    }
  if (n > q->body_len - (size_t) q->body_off)
    n = q->body_len - (size_t) q->body_off;
  memcpy (buf, (const char *) q->body + q->body_off, n);
  q->body_off += n;
  return n;
}

static int
xferinfo_cb (void *u, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
  struct reg_req *q = u;
  if (q->on_bytes && q->code / 100 == 2 && dn > 0)
    q->on_bytes (q->on_bytes_data, (int64_t) dn);
  else if (q->on_bytes && ut > 0 && un > 0)
    q->on_bytes (q->on_bytes_data, (int64_t) un);
  return q->cancel && *q->cancel ? 1 : 0;
}

static void
setup_tls (struct ob_registry *r, CURL *easy)
{
  if (!r->opts.tls_verify)
    {
      curl_easy_setopt (easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt (easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
  if (r->ca_blob)
    {
      struct curl_blob b = { r->ca_blob, r->ca_len, CURL_BLOB_NOCOPY };
      curl_easy_setopt (easy, CURLOPT_CAINFO_BLOB, &b);
    }
  if (r->client_cert)
    {
      curl_easy_setopt (easy, CURLOPT_SSLCERT, r->client_cert);
      curl_easy_setopt (easy, CURLOPT_SSLKEY, r->client_key);
    }
}

/* The authority ("host:port") of an absolute URL, or NULL. */
static char *
url_authority (const char *url)
{
  const char *p = strstr (url, "://");
  if (p == NULL)
    return NULL;
  p += 3;
  return ob_xstrndup (p, strcspn (p, "/?#"));
}

/* The path part of a URL without the query, for messages (a static
 * buffer per thread). */
static const char *
url_path (const char *url)
{
  static __thread char buf[512];
  const char *p = strstr (url, "://");
  if (p == NULL)
    p = url;
  else
    {
      p = strchr (p + 3, '/');
      if (p == NULL)
        p = "/";
    }
  snprintf (buf, sizeof buf, "%.*s", (int) strcspn (p, "?#"), p);
  return buf;
}

/* A transfer's deadline: 5 minutes, plus its size (the most it may
 * receive, or its body) at 64 KiB/s.  The low-speed limit alone let a
 * registry sending a byte a second hold obuild for as long as the size it
 * declared takes at that rate (a 4 MiB manifest: 48 days); a 1 GB layer
 * may take 4.6 hours.  OBUILD_TEST_REGISTRY_DEADLINE (seconds) replaces it
 * in the tests. */
static long
transfer_deadline_ms (const struct reg_req *q)
{
  const char *t = getenv ("OBUILD_TEST_REGISTRY_DEADLINE");
  int64_t bytes = q->max_size > 0 ? q->max_size : 0;
  if (t && *t)
    return atol (t) * 1000L;
  if (q->body_size > bytes)
    bytes = q->body_size;
  if ((int64_t) q->body_len > bytes)
    bytes = (int64_t) q->body_len;
  return 300000L + (long) (bytes / 64);
}

/* One transfer, no retries.  Returns the curl result; errbuf filled. */
static CURLcode
perform_once (struct ob_registry *r, CURL *easy, struct reg_req *q, const char *url,
              const char *auth, char errbuf[CURL_ERROR_SIZE])
{
  struct curl_slist *hdrs = NULL;
  cleanup_free char *accept = NULL;
  cleanup_free char *ctype = NULL;
  CURLcode rc;

  curl_easy_reset (easy);
  errbuf[0] = '\0';
  curl_easy_setopt (easy, CURLOPT_URL, url);
  curl_easy_setopt (easy, CURLOPT_SHARE, r->share);
  curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt (easy, CURLOPT_USERAGENT, "obuild/" PACKAGE_VERSION);
  curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt (easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt (easy, CURLOPT_LOW_SPEED_TIME, 120L);
  curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, transfer_deadline_ms (q));
  /* Redirects (blob storage): libcurl does not send our Authorization
   * header, nor user:password, to another host or port (CURLOPT_
   * UNRESTRICTED_AUTH stays 0). */
  curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (easy, CURLOPT_MAXREDIRS, 10L);
  {
    /* --isolation=container: the system's CA bundle is copied before the
     * root file system is replaced (src/cli_relocate.c) */
    const char *ca = getenv ("OBUILD_CA_FILE");
    if (ca && *ca)
      curl_easy_setopt (easy, CURLOPT_CAINFO, ca);
  }
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (easy, CURLOPT_WRITEDATA, q);
  curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (easy, CURLOPT_HEADERDATA, q);
  curl_easy_setopt (easy, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  curl_easy_setopt (easy, CURLOPT_XFERINFODATA, q);
  curl_easy_setopt (easy, CURLOPT_NOPROGRESS, 0L);
  setup_tls (r, easy);

  if (q->accept)
    hdrs = curl_slist_append (hdrs, accept = ob_xasprintf ("Accept: %s", q->accept));
  if (q->content_type)
    hdrs = curl_slist_append (hdrs, ctype = ob_xasprintf ("Content-Type: %s", q->content_type));
  if (auth)
    hdrs = curl_slist_append (hdrs, auth);
  hdrs = curl_slist_append (hdrs, "Expect:");
  curl_easy_setopt (easy, CURLOPT_HTTPHEADER, hdrs);
  if (q->user)
    {
      curl_easy_setopt (easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      curl_easy_setopt (easy, CURLOPT_USERNAME, q->user);
      curl_easy_setopt (easy, CURLOPT_PASSWORD, q->password ? q->password : "");
    }

  if (strcmp (q->method, "HEAD") == 0)
    curl_easy_setopt (easy, CURLOPT_NOBODY, 1L);
  else if (strcmp (q->method, "PUT") == 0 || strcmp (q->method, "POST") == 0)
    {
      int64_t size = q->body_fd >= 0 ? q->body_size : (int64_t) q->body_len;
      q->body_off = 0;
      if (q->body_fd >= 0)
        lseek (q->body_fd, 0, SEEK_SET);
      curl_easy_setopt (easy, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt (easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t) size);
      curl_easy_setopt (easy, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt (easy, CURLOPT_READDATA, q);
      curl_easy_setopt (easy, CURLOPT_CUSTOMREQUEST, q->method);
    }

  rc = curl_easy_perform (easy);
  if (rc == CURLE_OK)
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &q->code);
  curl_easy_setopt (easy, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all (hdrs);
  return rc;
}

static void
reset_output (struct reg_req *q)
{
  reg_req_clear (q);
  q->code = 0;
  q->received = 0;
  q->too_big = false;
  if (q->out_fd >= 0)
    {
      if (ftruncate (q->out_fd, 0) < 0 || lseek (q->out_fd, 0, SEEK_SET) < 0)
        {
          /* the write callback reports the failure */
        }
      if (q->hash)
        {
          ob_sha256_free (q->hash);
          q->hash = ob_sha256_new ();
        }
    }
}

static bool
retriable (CURLcode rc)
{
  switch (rc)
    {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
    }
}

static void
backoff (int attempt)
{
  struct timespec ts = { 0, 0 };
  long ms = 400L << attempt; /* 0.4 s, 0.8 s */
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep (&ts, NULL);
}

/* Perform q: returns 0 once an HTTP answer arrived (q->code, whatever it
 * is), < 0 when the server could not be reached or the transfer failed. */
int
reg_do (struct ob_registry *r, CURL *easy, struct reg_req *q, ob_error_t *err)
{
  struct reg_host *h = q->host;
  cleanup_free char *url = NULL;
  bool reauthed = false;
  char errbuf[CURL_ERROR_SIZE];

  if (h && !h->probed && reg_probe (r, easy, h, err) < 0)
    return -1;
  for (int attempt = 0;;)
    {
      cleanup_free char *auth = NULL;
      CURLcode rc;
      bool send_auth = h != NULL;

      free (url);
      if (h && q->url[0] == '/')
        url = ob_xasprintf ("%s://%s%s", h->plain_http ? "http" : "https", h->name, q->url);
      else
        {
          url = ob_xstrdup (q->url);
          /* Never hand the registry's credentials to another host. */
          if (h)
            {
              cleanup_free char *a = url_authority (url);
              send_auth = a && strcmp (a, h->name) == 0;
            }
        }
      if (send_auth && reg_auth_header (r, easy, h, q->scope, false, &auth, err) < 0)
        return -1;
      reset_output (q);
      rc = perform_once (r, easy, q, url, auth, errbuf);
      if (rc != CURLE_OK)
        {
          const char *msg = errbuf[0] ? errbuf : curl_easy_strerror (rc);
          if (q->cancel && *q->cancel)
            return ob_error_make (err, OB_ERR_INTERRUPTED, 0, "%s %s: cancelled", q->method, url_path (url));
          if (q->too_big)
            return ob_error_make (err, OB_ERR_IMAGE, 0, "%s %s: answer larger than %lld bytes",
                                  q->method, url_path (url), (long long) q->max_size);
          if (rc == CURLE_WRITE_ERROR)
            return ob_error_make (err, OB_ERR_STORE, errno, "%s %s: write", q->method, url_path (url));
          if (retriable (rc) && ++attempt < TRIES)
            {
              backoff (attempt - 1);
              continue;
            }
          if (rc == CURLE_COULDNT_CONNECT)
            {
              long oserr = 0;
              curl_easy_getinfo (easy, CURLINFO_OS_ERRNO, &oserr);
              if (oserr)
                msg = strerror ((int) oserr);
            }
          if (h)
            return ob_error_make (err, OB_ERR_REGISTRY, 0, "cannot reach registry %s: %s", h->name, msg);
          {
            cleanup_free char *a = url_authority (url);
            return ob_error_make (err, OB_ERR_REGISTRY, 0, "cannot reach %s: %s", a ? a : url, msg);
          }
        }
      if (q->code == 401 && h && q->www_auth && !reauthed)
        {
          struct ob_auth_challenge c;
          reauthed = true;
          if (ob_registry_parse_challenge (q->www_auth, &c, err) < 0)
            return ob_error_wrap (err, "registry %s", h->name);
          pthread_mutex_lock (&r->lock);
          ob_auth_challenge_clear (&h->chal);
          h->chal = c;
          pthread_mutex_unlock (&r->lock);
          if (q->learn_only)
            return 0;
          free (auth);
          auth = NULL;
          /* Force a fresh token: the cached one was refused. */
          if (reg_auth_header (r, easy, h, q->scope, true, &auth, err) < 0)
            return -1;
          if (auth != NULL)
            continue;
          return 0;
        }
      if ((q->code == 429 || q->code >= 500) && ++attempt < TRIES)
        {
          backoff (attempt - 1);
          continue;
        }
      return 0;
    }
}

static const char *
reason (long code)
{
  switch (code)
    {
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 409: return "conflict";
    case 413: return "payload too large";
    case 416: return "range not satisfiable";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 502: return "bad gateway";
    case 503: return "service unavailable";
    case 504: return "gateway timeout";
    default: return "unexpected status";
    }
}

int
reg_http_error (struct reg_req *q, ob_error_t *err)
{
  cleanup_free char *msg = NULL;
  const char *where = q->host ? q->host->name : NULL;
  cleanup_free char *auth = where ? NULL : url_authority (q->url);
  json_t *j = q->resp.len ? json_loadb (q->resp.data, q->resp.len, 0, NULL) : NULL;

  if (j)
    {
      json_t *e0 = json_array_get (json_object_get (j, "errors"), 0);
      const char *m = json_string_value (json_object_get (e0, "message"));
      const char *c = json_string_value (json_object_get (e0, "code"));
      if (m == NULL)
        m = json_string_value (json_object_get (j, "message"));
      if (m == NULL)
        m = json_string_value (json_object_get (j, "details"));
      if (m && *m)
        msg = ob_xstrdup (m);
      else if (c && *c)
        msg = ob_xstrdup (c);
      json_decref (j);
    }
  if (msg == NULL)
    msg = ob_xstrdup (reason (q->code));
  if (q->code == 401 && q->host && q->host->user == NULL)
    {
      char *m2 = ob_xasprintf ("%s (no credentials for %s in the auth file)", msg, q->host->name);
      free (msg);
      msg = m2;
    }
  return ob_error_make (err, OB_ERR_REGISTRY, 0, "%s %s: %s %s: %ld %s", where ? "registry" : "token server",
                        where ? where : (auth ? auth : "?"), q->method, url_path (q->url), q->code, msg);
}

/* GET /v2/: which scheme works, what authentication the registry wants. */
int
reg_probe (struct ob_registry *r, CURL *easy, struct reg_host *h, ob_error_t *err)
{
  struct reg_req q = { 0 };
  int ret;

  q.method = "GET";
  q.host = h;
  q.url = "/v2/";
  q.body_fd = q.out_fd = -1;
  q.max_size = MAX_ERROR_BODY;
  q.learn_only = true;
  h->probed = true; /* reg_do must not recurse */
  ret = reg_do (r, easy, &q, err);
  if (ret < 0 && !h->plain_http && !r->opts.tls_verify)
    {
      /* --tls-verify=false also allows plain HTTP, as in podman. */
      ob_error_t e2 = NULL;
      h->plain_http = true;
      ret = reg_do (r, easy, &q, &e2);
      if (ret < 0)
        {
          h->plain_http = false;
          ob_error_free (&e2);
          ret = -1;
        }
      else
        ob_error_free (err);
    }
  if (ret < 0)
    {
      h->probed = false;
      reg_req_clear (&q);
      return -1;
    }
  /* 401 with credentials we could not use, or an odd answer: the actual
   * requests report it with their path. */
  reg_req_clear (&q);
  return 0;
}

