/* registry: OCI distribution API client on libcurl.  See registry.h.
 *
 * Every request goes through reg_do(): it probes /v2/ once per host (to
 * learn the scheme and the authentication challenge), adds the
 * Authorization header for the request's scope, answers a 401 by fetching
 * a fresh token once, and retries transport errors, 429 and 5xx with
 * backoff.  Blobs are transferred by up to POOL_SIZE threads, each with its
 * own easy handle (keep-alive); DNS and TLS sessions are shared. */
#include "config.h"
#include "registry_priv.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#define POOL_SIZE 3
#define TRIES 3
#define MAX_MANIFEST (4 << 20)
#define MAX_ERROR_BODY (64 << 10)

#define ACCEPT_MANIFESTS                                                                     \
  OB_MT_OCI_INDEX ", " OB_MT_OCI_MANIFEST ", " OB_MT_DOCKER_LIST ", " OB_MT_DOCKER_MANIFEST
#define MT_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* ---- references ---- */

void
ob_ref_free (struct ob_ref *r)
{
  if (r == NULL)
    return;
  free (r->registry);
  free (r->repository);
  free (r->tag);
  free (r->digest);
  free (r->canonical);
  free (r);
}

static bool
lower_alnum (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool
valid_component (const char *s, size_t n)
{
  size_t i = 0;
  if (n == 0 || !lower_alnum (s[0]) || !lower_alnum (s[n - 1]))
    return false;
  while (i < n)
    {
      size_t j = i;
      if (lower_alnum (s[i]))
        {
          i++;
          continue;
        }
      if (s[i] == '.')
        j++;
      else if (s[i] == '_')
        j += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
      else if (s[i] == '-')
        while (j < n && s[j] == '-')
          j++;
      else
        return false;
      if (j >= n || !lower_alnum (s[j]))
        return false;
      i = j;
    }
  return true;
}

/* host[:port] with DNS labels, or [ipv6][:port]. */
static bool
valid_domain (const char *s, size_t n)
{
  size_t hn, start = 0;
  const char *colon;
  if (n > 0 && s[0] == '[')
    {
      const char *close = memchr (s, ']', n);
      if (close == NULL || close == s + 1)
        return false;
      for (const char *p = s + 1; p < close; p++)
        if (!isxdigit ((unsigned char) *p) && *p != ':' && *p != '.')
          return false;
      hn = close + 1 - s;
      colon = hn < n ? s + hn : NULL;
      if (colon && *colon != ':')
        return false;
    }
  else
    {
      colon = memchr (s, ':', n);
      hn = colon ? (size_t) (colon - s) : n;
      if (hn == 0)
        return false;
      for (size_t i = 0; i <= hn; i++)
        if (i == hn || s[i] == '.')
          {
            if (i == start || !isalnum ((unsigned char) s[start])
                || !isalnum ((unsigned char) s[i - 1]))
              return false;
            for (size_t k = start; k < i; k++)
              if (!isalnum ((unsigned char) s[k]) && s[k] != '-')
                return false;
            start = i + 1;
          }
    }
  if (colon)
    {
      if (colon + 1 == s + n)
        return false;
      for (const char *p = colon + 1; p < s + n; p++)
        if (!isdigit ((unsigned char) *p))
          return false;
    }
  return true;
}

static bool
valid_tag (const char *t)
{
  size_t n = strlen (t);
  if (n == 0 || n > 128 || !(isalnum ((unsigned char) t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum ((unsigned char) t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

static int
bad_ref (const char *s, const char *why, ob_error_t *err)
{
  return ob_error_make (err, OB_ERR_USAGE, 0, "invalid reference \"%s\": %s", s, why);
}

int
ob_ref_parse (const char *s, struct ob_ref **out, ob_error_t *err)
{
  cleanup_free char *rest = NULL;
  cleanup_free char *domain = NULL;
  cleanup_free char *repo = NULL;
  const char *at, *name, *slash;
  char *last_slash, *colon, *tag = NULL;
  struct ob_ref *r;
  size_t i, start;

  if (s == NULL || *s == '\0')
    return bad_ref ("", "empty reference", err);
  at = strchr (s, '@');
  if (at && !ob_digest_valid (at + 1))
    return bad_ref (s, "digest must be sha256: followed by 64 lower-case hex digits", err);
  rest = at ? ob_xstrndup (s, at - s) : ob_xstrdup (s);
  if (*rest == '\0')
    return bad_ref (s, "no repository name", err);
  last_slash = strrchr (rest, '/');
  colon = strrchr (last_slash ? last_slash : rest, ':');
  if (colon)
    {
      *colon = '\0';
      tag = colon + 1;
      if (!valid_tag (tag))
        return bad_ref (s, "tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", err);
    }
  name = rest;
  slash = strchr (name, '/');
  if (slash)
    {
      size_t dl = slash - name;
      bool domainish = memchr (name, '.', dl) || memchr (name, ':', dl) || name[0] == '['
                       || (dl == 9 && memcmp (name, "localhost", 9) == 0);
      for (i = 0; i < dl && !domainish; i++)
        domainish = isupper ((unsigned char) name[i]);
      if (domainish)
        {
          if (!valid_domain (name, dl))
            return bad_ref (s, "invalid registry host", err);
          domain = ob_xstrndup (name, dl);
          name = slash + 1;
        }
    }
  for (start = 0, i = 0;; i++)
    if (name[i] == '/' || name[i] == '\0')
      {
        if (!valid_component (name + start, i - start))
          {
            for (size_t k = start; k < i; k++)
              if (isupper ((unsigned char) name[k]))
                return bad_ref (s, "repository name must be lowercase", err);
            return bad_ref (s,
                            "name components must be lower-case letters, digits and "
                            "separators (. _ __ -)",
                            err);
          }
        if (name[i] == '\0')
          break;
        start = i + 1;
      }
  if (domain == NULL && strlen (name) == 64 && strspn (name, "0123456789abcdef") == 64)
    return bad_ref (s, "cannot specify 64-byte hexadecimal strings", err);
  if (domain == NULL || strcmp (domain, "index.docker.io") == 0
      || strcmp (domain, "registry-1.docker.io") == 0)
    {
      free (domain);
      domain = ob_xstrdup ("docker.io");
    }
  if (strcmp (domain, "docker.io") == 0 && strchr (name, '/') == NULL)
    repo = ob_xasprintf ("library/%s", name);
  else
    repo = ob_xstrdup (name);
  if (strlen (domain) + 1 + strlen (repo) > 255)
    return bad_ref (s, "name longer than 255 characters", err);

  r = ob_xmalloc0 (sizeof *r);
  r->registry = ob_xstrdup (strcmp (domain, "docker.io") == 0 ? "registry-1.docker.io" : domain);
  r->tag = ob_xstrdup (tag ? tag : (at ? NULL : "latest"));
  r->digest = at ? ob_xstrdup (at + 1) : NULL;
  r->canonical = ob_xasprintf ("%s/%s%s%s%s%s", domain, repo, r->tag ? ":" : "",
                               r->tag ? r->tag : "", r->digest ? "@" : "",
                               r->digest ? r->digest : "");
  r->repository = steal_pointer (&repo);
  *out = r;
  return 0;
}

/* ---- context ---- */

void
ob_registry_opts_init (struct ob_registry_opts *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->tls_verify = true;
}

static void
share_lock (CURL *h, curl_lock_data data, curl_lock_access a, void *u)
{
  struct ob_registry *r = u;
  pthread_mutex_lock (&r->share_locks[data]);
}

static void
share_unlock (CURL *h, curl_lock_data data, void *u)
{
  struct ob_registry *r = u;
  pthread_mutex_unlock (&r->share_locks[data]);
}

/* Read cert_dir: *.crt are CA certificates (added to the system ones),
 * X.cert + X.key a client certificate. */
static int
load_cert_dir (struct ob_registry *r, ob_error_t *err)
{
  cleanup_dir DIR *d = NULL;
  struct dirent *de;
  struct ob_buf ca = { 0 };
  cleanup_strv char **names = NULL;
  const char *sys = "/etc/ssl/certs/ca-certificates.crt";

  if (r->opts.cert_dir == NULL)
    return 0;
  d = opendir (r->opts.cert_dir);
  if (d == NULL)
    return ob_error_make (err, OB_ERR_USAGE, errno, "certificate directory `%s`", r->opts.cert_dir);
  while ((de = readdir (d)))
    if (de->d_name[0] != '.')
      ob_strv_add (&names, de->d_name);
  for (size_t i = 0; names && names[i]; i++)
    {
      cleanup_free char *path = ob_xasprintf ("%s/%s", r->opts.cert_dir, names[i]);
      if (ob_str_has_suffix (names[i], ".crt"))
        {
          cleanup_free char *data = NULL;
          size_t len;
          if (ob_read_file_at (AT_FDCWD, path, &data, &len, err) < 0)
            {
              ob_buf_free (&ca);
              return ob_error_set_kind (err, OB_ERR_USAGE);
            }
          ob_buf_add (&ca, data, len);
          ob_buf_addc (&ca, '\n');
        }
      else if (ob_str_has_suffix (names[i], ".cert") && r->client_cert == NULL)
        {
          cleanup_free char *key = ob_xasprintf ("%.*s.key", (int) (strlen (path) - 5), path);
          if (access (key, R_OK) != 0)
            {
              ob_buf_free (&ca);
              return ob_error_make (err, OB_ERR_USAGE, errno, "client certificate `%s` without key `%s`",
                                    path, key);
            }
          r->client_cert = ob_xstrdup (path);
          r->client_key = steal_pointer (&key);
        }
    }
  if (ca.len > 0)
    {
      cleanup_free char *sysdata = NULL;
      size_t syslen;
      ob_error_t e2 = NULL;
#if LIBCURL_VERSION_NUM >= 0x075400
      {
        CURL *e = curl_easy_init ();
        char *p = NULL;
        if (e && curl_easy_getinfo (e, CURLINFO_CAINFO, &p) == CURLE_OK && p)
          sys = p;
        if (ob_read_file_at (AT_FDCWD, sys, &sysdata, &syslen, &e2) < 0)
          ob_error_free (&e2);
        curl_easy_cleanup (e);
      }
#else
      if (ob_read_file_at (AT_FDCWD, sys, &sysdata, &syslen, &e2) < 0)
        ob_error_free (&e2);
#endif
      if (sysdata)
        {
          ob_buf_addc (&ca, '\n');
          ob_buf_add (&ca, sysdata, syslen);
        }
      r->ca_len = ca.len;
      r->ca_blob = ob_buf_steal (&ca);
    }
  return 0;
}

static void
curl_init_once (void)
{
  curl_global_init (CURL_GLOBAL_DEFAULT);
}

int
ob_registry_new (const struct ob_registry_opts *opts, struct ob_registry **out, ob_error_t *err)
{
  struct ob_registry *r = ob_xmalloc0 (sizeof *r);
  static pthread_once_t once = PTHREAD_ONCE_INIT;

  if (opts)
    r->opts = *opts;
  else
    ob_registry_opts_init (&r->opts);
  r->opts.cert_dir = ob_xstrdup (r->opts.cert_dir);
  r->opts.auth_file = ob_xstrdup (r->opts.auth_file);
  r->opts.platform = ob_xstrdup (r->opts.platform);
  pthread_mutex_init (&r->lock, NULL);
  pthread_mutex_init (&r->progress_lock, NULL);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init (&r->share_locks[i], NULL);
  pthread_once (&once, curl_init_once);
  r->share = curl_share_init ();
  if (r->share == NULL)
    ob_oom ();
  curl_share_setopt (r->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (r->share, CURLSHOPT_USERDATA, r);
  curl_share_setopt (r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt (r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  if (r->opts.platform)
    {
      size_t n = strlen (r->opts.platform);
      const char *sl = strchr (r->opts.platform, '/');
      if (sl == NULL || sl == r->opts.platform || sl[1] == '\0' || sl[1] == '/'
          || r->opts.platform[n - 1] == '/')
        {
          ob_error_make (err, OB_ERR_USAGE, 0, "invalid platform \"%s\": expected os/arch[/variant]",
                         r->opts.platform);
          ob_registry_free (r);
          return -1;
        }
    }
  if (load_cert_dir (r, err) < 0)
    {
      ob_registry_free (r);
      return -1;
    }
  *out = r;
  return 0;
}

void
ob_registry_free (struct ob_registry *r)
{
  if (r == NULL)
    return;
  curl_share_cleanup (r->share);
  while (r->hosts)
    {
      struct reg_host *n = r->hosts->next;
      free (r->hosts->name);
      ob_auth_challenge_clear (&r->hosts->chal);
      free (r->hosts->user);
      free (r->hosts->password);
      free (r->hosts);
      r->hosts = n;
    }
  reg_tokens_free (r->tokens);
  pthread_mutex_destroy (&r->lock);
  pthread_mutex_destroy (&r->progress_lock);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy (&r->share_locks[i]);
  free ((char *) r->opts.cert_dir);
  free ((char *) r->opts.auth_file);
  free ((char *) r->opts.platform);
  free (r->ca_blob);
  free (r->client_cert);
  free (r->client_key);
  free (r);
}

static void
progress (struct ob_registry *r, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
progress (struct ob_registry *r, const char *fmt, ...)
{
  va_list ap;
  char *line;
  if (r->opts.progress == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  pthread_mutex_lock (&r->progress_lock);
  r->opts.progress (r->opts.progress_data, line);
  pthread_mutex_unlock (&r->progress_lock);
  free (line);
}

static bool
is_local_host (const char *h)
{
  size_t n;
  if (h[0] == '[')
    return strncmp (h, "[::1]", 5) == 0;
  n = strcspn (h, ":");
  return (n == 9 && strncmp (h, "localhost", 9) == 0) || strncmp (h, "127.", 4) == 0;
}

struct reg_host *
reg_host_get (struct ob_registry *r, const char *name)
{
  struct reg_host *h;
  pthread_mutex_lock (&r->lock);
  for (h = r->hosts; h; h = h->next)
    if (strcmp (h->name, name) == 0)
      break;
  if (h == NULL)
    {
      h = ob_xmalloc0 (sizeof *h);
      h->name = ob_xstrdup (name);
      /* Docker's rule: loopback registries speak plain HTTP, unless we were
       * given certificates to talk TLS with them. */
      h->plain_http = is_local_host (name) && r->ca_blob == NULL && r->client_cert == NULL;
      h->next = r->hosts;
      r->hosts = h;
    }
  pthread_mutex_unlock (&r->lock);
  return h;
}

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

/* The path part of a URL, for messages. */
static const char *
url_path (const char *url)
{
  const char *p = strstr (url, "://");
  if (p == NULL)
    return url;
  p = strchr (p + 3, '/');
  return p ? p : "/";
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
  /* Redirects (blob storage): libcurl does not send our Authorization
   * header, nor user:password, to another host or port (CURLOPT_
   * UNRESTRICTED_AUTH stays 0). */
  curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (easy, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
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

static int probe (struct ob_registry *r, CURL *easy, struct reg_host *h, ob_error_t *err);

/* Perform q: returns 0 once an HTTP answer arrived (q->code, whatever it
 * is), < 0 when the server could not be reached or the transfer failed. */
int
reg_do (struct ob_registry *r, CURL *easy, struct reg_req *q, ob_error_t *err)
{
  struct reg_host *h = q->host;
  cleanup_free char *url = NULL;
  bool reauthed = false;
  char errbuf[CURL_ERROR_SIZE];

  if (h && !h->probed && probe (r, easy, h, err) < 0)
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
  return ob_error_make (err, OB_ERR_REGISTRY, 0, "%s %s: %s %s: %ld %s", where ? "registry" : "server",
                        where ? where : (auth ? auth : "?"), q->method, url_path (q->url), q->code, msg);
}

/* GET /v2/: which scheme works, what authentication the registry wants. */
static int
probe (struct ob_registry *r, CURL *easy, struct reg_host *h, ob_error_t *err)
{
  struct reg_req q = { 0 };
  int ret;

  q.method = "GET";
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

/* ---- manifests ---- */

static char *
base_media_type (const char *ct)
{
  size_t n;
  if (ct == NULL)
    return NULL;
  n = strcspn (ct, "; \t");
  return n ? ob_xstrndup (ct, n) : NULL;
}

static bool
is_index_type (const char *mt)
{
  return mt && (strcmp (mt, OB_MT_OCI_INDEX) == 0 || strcmp (mt, OB_MT_DOCKER_LIST) == 0);
}

/* GET a manifest (what: tag or digest), verify it, find its media type. */
static int
fetch_manifest (struct ob_registry *r, CURL *easy, struct reg_host *h, const struct ob_ref *ref,
                const char *what, const char *expect, char **data, size_t *len, char **mt,
                char digest[OB_DIGEST_LEN], ob_error_t *err)
{
  struct reg_req q = { 0 };
  cleanup_free char *path = ob_xasprintf ("/v2/%s/manifests/%s", ref->repository, what);
  cleanup_free char *type = NULL;
  json_t *j;
  int ret = -1;

  q.method = "GET";
  q.host = h;
  q.url = path;
  q.scope = NULL;
  q.accept = ACCEPT_MANIFESTS;
  q.body_fd = q.out_fd = -1;
  q.max_size = MAX_MANIFEST;
  {
    cleanup_free char *scope = ob_xasprintf ("repository:%s:pull", ref->repository);
    q.scope = scope;
    if (reg_do (r, easy, &q, err) < 0)
      {
        reg_req_clear (&q);
        return ob_error_wrap (err, "%s", ref->canonical);
      }
  }
  if (q.code != 200)
    {
      reg_http_error (&q, err);
      reg_req_clear (&q);
      return -1;
    }
  ob_sha256_digest (q.resp.data ? q.resp.data : "", q.resp.len, digest);
  if (expect && strcmp (expect, digest) != 0)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "manifest %s: content has digest %s (corrupted download)",
                     expect, digest);
      goto out;
    }
  if (q.docker_digest && ob_str_has_prefix (q.docker_digest, "sha256:")
      && strcmp (q.docker_digest, digest) != 0)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0,
                     "manifest %s: registry says Docker-Content-Digest %s, content has digest %s",
                     ref->canonical, q.docker_digest, digest);
      goto out;
    }
  type = base_media_type (q.resp_type);
  j = json_loadb (q.resp.data ? q.resp.data : "", q.resp.len, 0, NULL);
  if (j == NULL || !json_is_object (j))
    {
      json_decref (j);
      if (type && (strcmp (type, MT_SCHEMA1) == 0 || strcmp (type, MT_SCHEMA1_SIGNED) == 0))
        ob_error_make (err, OB_ERR_IMAGE, 0, "%s: schema1 images are not supported", ref->canonical);
      else
        ob_error_make (err, OB_ERR_IMAGE, 0, "%s: manifest is not a JSON object", ref->canonical);
      goto out;
    }
  {
    const char *jmt = json_string_value (json_object_get (j, "mediaType"));
    json_int_t sv = json_integer_value (json_object_get (j, "schemaVersion"));
    bool schema1 = sv == 1
                   || (type && (strcmp (type, MT_SCHEMA1) == 0 || strcmp (type, MT_SCHEMA1_SIGNED) == 0));
    if (schema1)
      {
        json_decref (j);
        ob_error_make (err, OB_ERR_IMAGE, 0, "%s: schema1 images are not supported", ref->canonical);
        goto out;
      }
    if (jmt && *jmt)
      {
        free (type);
        type = ob_xstrdup (jmt);
      }
    else if (type == NULL || (strcmp (type, OB_MT_OCI_INDEX) != 0 && strcmp (type, OB_MT_OCI_MANIFEST) != 0
                              && strcmp (type, OB_MT_DOCKER_LIST) != 0
                              && strcmp (type, OB_MT_DOCKER_MANIFEST) != 0))
      {
        free (type);
        type = ob_xstrdup (json_is_array (json_object_get (j, "manifests")) ? OB_MT_OCI_INDEX
                                                                              : OB_MT_OCI_MANIFEST);
      }
    json_decref (j);
  }
  *len = q.resp.len;
  *data = ob_buf_steal (&q.resp);
  *mt = steal_pointer (&type);
  ret = 0;
out:
  reg_req_clear (&q);
  return ret;
}

static void
wanted_platform (struct ob_registry *r, char **os, char **arch, char **variant, bool *explicit)
{
  if (r->opts.platform)
    {
      char *s = ob_xstrdup (r->opts.platform);
      char *a = strchr (s, '/');
      char *v;
      *a++ = '\0';
      v = strchr (a, '/');
      if (v)
        *v++ = '\0';
      *os = ob_xstrdup (s);
      *arch = ob_xstrdup (a);
      *variant = v && *v ? ob_xstrdup (v) : NULL;
      *explicit = *variant != NULL;
      free (s);
      return;
    }
  *os = ob_xstrdup ("linux");
  *arch = ob_xstrdup (ob_image_host_arch ());
  *variant = ob_xstrdup (ob_image_host_variant ());
  *explicit = false;
}

static bool
variant_ok (const char *arch, const char *want, const char *have)
{
  if (want == NULL)
    return true;
  if (have == NULL || *have == '\0')
    return strcmp (arch, "arm64") == 0 && strcmp (want, "v8") == 0;
  return strcmp (want, have) == 0;
}

/* Choose the manifest for our platform in an index. */
static int
choose_platform (struct ob_registry *r, const struct ob_ref *ref, const char *data, size_t len,
                 struct ob_descriptor *d, ob_error_t *err)
{
  cleanup_free char *os = NULL;
  cleanup_free char *arch = NULL;
  cleanup_free char *variant = NULL;
  bool explicit;
  json_t *j = json_loadb (data, len, 0, NULL);
  json_t *ms = json_object_get (j, "manifests"), *m;
  json_t *found = NULL;
  struct ob_buf avail = { 0 };
  size_t i;
  int ret;

  wanted_platform (r, &os, &arch, &variant, &explicit);
  if (!json_is_array (ms))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: invalid index: no manifests", ref->canonical);
    }
  for (int pass = 0; pass < 2 && !found; pass++)
    json_array_foreach (ms, i, m)
      {
        json_t *p = json_object_get (m, "platform");
        const char *mos = json_string_value (json_object_get (p, "os"));
        const char *march = json_string_value (json_object_get (p, "architecture"));
        const char *mvar = json_string_value (json_object_get (p, "variant"));
        if (!mos || !march || strcmp (mos, os) != 0 || strcmp (march, arch) != 0)
          continue;
        if (pass == 0 ? variant_ok (arch, variant, mvar) : !explicit)
          {
            found = m;
            break;
          }
      }
  if (found == NULL)
    {
      json_array_foreach (ms, i, m)
        {
          json_t *p = json_object_get (m, "platform");
          const char *mos = json_string_value (json_object_get (p, "os"));
          const char *march = json_string_value (json_object_get (p, "architecture"));
          const char *mvar = json_string_value (json_object_get (p, "variant"));
          if (!mos || !march || strcmp (mos, "unknown") == 0)
            continue;
          if (avail.len)
            ob_buf_adds (&avail, ", ");
          ob_buf_adds (&avail, mos);
          ob_buf_addc (&avail, '/');
          ob_buf_adds (&avail, march);
          if (mvar && *mvar)
            {
              ob_buf_addc (&avail, '/');
              ob_buf_adds (&avail, mvar);
            }
        }
      ob_buf_addc (&avail, '\0');
      ret = ob_error_make (err, OB_ERR_REGISTRY, 0, "%s: no image for platform %s/%s%s%s (available: %s)",
                           ref->canonical, os, arch, variant ? "/" : "", variant ? variant : "",
                           avail.len > 1 ? avail.data : "none");
      ob_buf_free (&avail);
      json_decref (j);
      return ret;
    }
  ret = ob_descriptor_from_json (found, d, err);
  json_decref (j);
  if (ret < 0)
    return ob_error_wrap (err, "%s: index", ref->canonical);
  return 0;
}

/* ---- blob transfers on a small thread pool ---- */

struct pool;
typedef int (*pool_fn) (struct pool *p, CURL *easy, const struct ob_descriptor *d, ob_error_t *err);

struct pool
{
  struct ob_registry *r;
  struct reg_host *h;
  const char *repo, *scope;
  struct ob_txn *t;        /* pull */
  struct ob_layout *src;   /* push */
  const struct ob_descriptor *descs;
  size_t n, next;
  pool_fn fn;
  pthread_mutex_t mu;      /* next, err, cancel */
  pthread_mutex_t txn_mu;  /* ob_txn_blob_create .. commit is one sequence */
  volatile int cancel;
  ob_error_t err;
};

static void *
pool_worker (void *u)
{
  struct pool *p = u;
  CURL *easy = curl_easy_init ();
  if (easy == NULL)
    ob_oom ();
  for (;;)
    {
      size_t i;
      ob_error_t e = NULL;
      pthread_mutex_lock (&p->mu);
      if (p->cancel || p->next >= p->n)
        {
          pthread_mutex_unlock (&p->mu);
          break;
        }
      i = p->next++;
      pthread_mutex_unlock (&p->mu);
      if (p->fn (p, easy, &p->descs[i], &e) < 0)
        {
          pthread_mutex_lock (&p->mu);
          if (p->err == NULL && !(e && e->kind == OB_ERR_INTERRUPTED && p->cancel))
            {
              p->err = e;
              e = NULL;
              p->cancel = 1;
            }
          pthread_mutex_unlock (&p->mu);
          ob_error_free (&e);
        }
    }
  curl_easy_cleanup (easy);
  return NULL;
}

static int
pool_run (struct pool *p, ob_error_t *err)
{
  pthread_t th[POOL_SIZE];
  size_t k = p->n < POOL_SIZE ? p->n : POOL_SIZE, started = 0;
  pthread_mutex_init (&p->mu, NULL);
  pthread_mutex_init (&p->txn_mu, NULL);
  for (size_t i = 1; i < k; i++)
    if (pthread_create (&th[started], NULL, pool_worker, p) == 0)
      started++;
  if (k > 0)
    pool_worker (p);
  for (size_t i = 0; i < started; i++)
    pthread_join (th[i], NULL);
  pthread_mutex_destroy (&p->mu);
  pthread_mutex_destroy (&p->txn_mu);
  if (p->err)
    {
      ob_error_free (err);
      *err = p->err;
      p->err = NULL;
      return -1;
    }
  return 0;
}

static int
copy_fd (int in, int out, ob_error_t *err)
{
  char buf[65536];
  for (;;)
    {
      ssize_t n = copy_file_range (in, NULL, out, NULL, 1 << 30, 0);
      if (n == 0)
        return 0;
      if (n > 0)
        continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return ob_error_make (err, OB_ERR_STORE, errno, "copy blob");
      break;
    }
  for (;;)
    {
      ssize_t n = read (in, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return ob_error_make (err, OB_ERR_STORE, errno, "copy blob");
      if (n == 0)
        return 0;
      if (ob_write_all (out, buf, n, err) < 0)
        return -1;
    }
}

static char *
human_size (int64_t n)
{
  if (n >= 1000000)
    return ob_xasprintf ("%.1f MB", n / 1e6);
  if (n >= 1000)
    return ob_xasprintf ("%.1f kB", n / 1e3);
  return ob_xasprintf ("%lld B", (long long) n);
}

/* Download one blob into a scratch file while hashing, verify size and
 * digest, then stage it in the transaction. */
static int
pull_blob (struct pool *p, CURL *easy, const struct ob_descriptor *d, ob_error_t *err)
{
  cleanup_free char *path = ob_xasprintf ("%s/dl-%s", ob_txn_scratch (p->t), d->digest + 7);
  cleanup_free char *url = ob_xasprintf ("/v2/%s/blobs/%s", p->repo, d->digest);
  cleanup_free char *sz = human_size (d->size);
  cleanup_close int fd = -1;
  struct reg_req q = { 0 };
  char got[OB_DIGEST_LEN];
  int out, ret;

  fd = open (path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "create `%s`", path);
  q.method = "GET";
  q.host = p->h;
  q.url = url;
  q.scope = p->scope;
  q.body_fd = -1;
  q.out_fd = fd;
  q.hash = ob_sha256_new ();
  q.max_size = d->size;
  q.cancel = &p->cancel;
  ret = reg_do (p->r, easy, &q, err);
  if (ret < 0)
    ob_error_wrap (err, "blob %s", d->digest);
  else if (q.code != 200)
    ret = reg_http_error (&q, err);
  else if (q.received != d->size)
    ret = ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: got %lld bytes, expected %lld (truncated download)",
                         d->digest, (long long) q.received, (long long) d->size);
  if (ret < 0)
    {
      ob_sha256_free (q.hash);
      reg_req_clear (&q);
      unlink (path);
      return -1;
    }
  ob_sha256_final (q.hash, got);
  reg_req_clear (&q);
  if (strcmp (got, d->digest) != 0)
    {
      unlink (path);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: content has digest %s (corrupted download)",
                            d->digest, got);
    }
  if (lseek (fd, 0, SEEK_SET) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "seek `%s`", path);
  pthread_mutex_lock (&p->txn_mu);
  ret = ob_txn_blob_create (p->t, &out, err);
  if (ret == 0)
    {
      ret = copy_fd (fd, out, err);
      if (ret < 0)
        close (out);
      else
        ret = ob_txn_blob_commit (p->t, out, d->digest, err);
    }
  pthread_mutex_unlock (&p->txn_mu);
  unlink (path);
  if (ret < 0)
    return ob_error_wrap (err, "blob %s", d->digest);
  progress (p->r, "Copied blob %.19s (%s)", d->digest, sz);
  return 0;
}

int
ob_registry_pull (struct ob_registry *r, const struct ob_ref *ref, struct ob_txn *t,
                  struct ob_descriptor *manifest, ob_error_t *err)
{
  CURL *easy = curl_easy_init ();
  struct reg_host *h = reg_host_get (r, ref->registry);
  cleanup_free char *data = NULL;
  cleanup_free char *mt = NULL;
  cleanup_free char *scope = ob_xasprintf ("repository:%s:pull", ref->repository);
  char digest[OB_DIGEST_LEN], stored[OB_DIGEST_LEN];
  size_t len = 0;
  struct ob_manifest *m = NULL;
  struct ob_descriptor *todo = NULL;
  size_t n_todo = 0;
  struct pool p = { 0 };
  int ret = -1;

  if (easy == NULL)
    ob_oom ();
  memset (manifest, 0, sizeof *manifest);
  if (!h->probed && probe (r, easy, h, err) < 0)
    goto out;
  progress (r, "Pulling %s", ref->canonical);
  if (fetch_manifest (r, easy, h, ref, ref->digest ? ref->digest : ref->tag, ref->digest, &data, &len,
                      &mt, digest, err)
      < 0)
    goto out;
  if (is_index_type (mt))
    {
      struct ob_descriptor child = { 0 };
      if (ob_txn_blob_put (t, data, len, stored, err) < 0)
        goto out;
      if (choose_platform (r, ref, data, len, &child, err) < 0)
        goto out;
      free (data);
      free (mt);
      data = mt = NULL;
      ret = fetch_manifest (r, easy, h, ref, child.digest, child.digest, &data, &len, &mt, digest, err);
      ob_descriptor_clear (&child);
      if (ret < 0)
        goto out;
      ret = -1;
      if (is_index_type (mt))
        {
          ob_error_make (err, OB_ERR_IMAGE, 0, "%s: nested index is not supported", ref->canonical);
          goto out;
        }
    }
  if (ob_image_manifest_parse (data, len, &m, err) < 0)
    {
      ob_error_wrap (err, "%s", ref->canonical);
      goto out;
    }
  if (ob_txn_blob_put (t, data, len, stored, err) < 0)
    goto out;

  /* The config and the layers we do not have yet. */
  todo = ob_xmalloc0 (sizeof *todo * (m->n_layers + 1));
  for (size_t i = 0; i <= m->n_layers; i++)
    {
      const struct ob_descriptor *d = i == 0 ? &m->config : &m->layers[i - 1];
      int fd;
      ob_error_t e2 = NULL;
      bool dup = false;
      for (size_t k = 0; k < n_todo; k++)
        dup = dup || strcmp (todo[k].digest, d->digest) == 0;
      if (dup)
        continue;
      if (ob_txn_blob_open (t, d->digest, &fd, &e2) == 0)
        {
          close (fd);
          continue;
        }
      ob_error_free (&e2);
      todo[n_todo++] = *d; /* shallow: m owns the strings */
    }
  p.r = r;
  p.h = h;
  p.repo = ref->repository;
  p.scope = scope;
  p.t = t;
  p.descs = todo;
  p.n = n_todo;
  p.fn = pull_blob;
  if (pool_run (&p, err) < 0)
    {
      ob_error_wrap (err, "%s", ref->canonical);
      goto out;
    }
  manifest->media_type = steal_pointer (&mt);
  strcpy (manifest->digest, digest);
  manifest->size = (int64_t) len;
  progress (r, "Got manifest %s", digest);
  ret = 0;
out:
  free (todo);
  ob_manifest_free (m);
  curl_easy_cleanup (easy);
  return ret;
}

/* ---- push ---- */

static int
push_blob (struct pool *p, CURL *easy, const struct ob_descriptor *d, ob_error_t *err)
{
  cleanup_free char *head = ob_xasprintf ("/v2/%s/blobs/%s", p->repo, d->digest);
  cleanup_free char *post = ob_xasprintf ("/v2/%s/blobs/uploads/", p->repo);
  cleanup_free char *put = NULL;
  cleanup_free char *sz = human_size (d->size);
  cleanup_close int fd = -1;
  struct reg_req q = { 0 };
  struct stat st;
  int ret;

  q.method = "HEAD";
  q.host = p->h;
  q.url = head;
  q.scope = p->scope;
  q.body_fd = q.out_fd = -1;
  q.max_size = -1;
  q.cancel = &p->cancel;
  if (reg_do (p->r, easy, &q, err) < 0)
    {
      reg_req_clear (&q);
      return ob_error_wrap (err, "blob %s", d->digest);
    }
  if (q.code == 200)
    {
      reg_req_clear (&q);
      progress (p->r, "Blob %.19s already there", d->digest);
      return 0;
    }
  if (q.code != 404)
    {
      reg_http_error (&q, err);
      reg_req_clear (&q);
      return -1;
    }
  reg_req_clear (&q);

  if (ob_layout_blob_open (p->src, d->digest, &fd, err) < 0)
    return -1;
  if (fstat (fd, &st) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "blob %s", d->digest);
  if (st.st_size != d->size)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "blob %s: %lld bytes in the layout, manifest says %lld",
                          d->digest, (long long) st.st_size, (long long) d->size);

  q.method = "POST";
  q.url = post;
  q.body = "";
  q.body_len = 0;
  q.max_size = MAX_ERROR_BODY;
  if (reg_do (p->r, easy, &q, err) < 0)
    {
      reg_req_clear (&q);
      return ob_error_wrap (err, "blob %s", d->digest);
    }
  if (q.code != 202 || q.location == NULL)
    {
      if (q.code == 202)
        ob_error_make (err, OB_ERR_REGISTRY, 0, "registry %s: POST %s: no Location in the answer",
                       p->h->name, post);
      else
        reg_http_error (&q, err);
      reg_req_clear (&q);
      return -1;
    }
  /* Location is absolute or relative to the host; the digest param completes the upload. */
  put = ob_xasprintf ("%s%s%sdigest=sha256%%3A%s",
                      q.location[0] == '/' || strstr (q.location, "://") ? "" : "/", q.location,
                      strchr (q.location, '?') ? "&" : "?", d->digest + 7);
  reg_req_clear (&q);

  q.method = "PUT";
  q.url = put;
  q.body = NULL;
  q.body_fd = fd;
  q.body_size = d->size;
  q.content_type = "application/octet-stream";
  ret = reg_do (p->r, easy, &q, err);
  if (ret < 0)
    ob_error_wrap (err, "blob %s", d->digest);
  else if (q.code != 201)
    ret = reg_http_error (&q, err);
  reg_req_clear (&q);
  if (ret < 0)
    return -1;
  progress (p->r, "Copied blob %.19s (%s)", d->digest, sz);
  return 0;
}

int
ob_registry_push (struct ob_registry *r, struct ob_layout *src, const struct ob_descriptor *manifest,
                  const struct ob_ref *ref, char pushed_digest[72], ob_error_t *err)
{
  CURL *easy = curl_easy_init ();
  struct reg_host *h = reg_host_get (r, ref->registry);
  cleanup_free char *data = NULL;
  cleanup_free char *scope = ob_xasprintf ("repository:%s:pull,push", ref->repository);
  cleanup_free char *path = NULL;
  cleanup_free char *mt = NULL;
  struct ob_manifest *m = NULL;
  struct ob_descriptor *todo = NULL;
  struct reg_req q = { 0 };
  struct pool p = { 0 };
  size_t len, n_todo = 0;
  int ret = -1;

  if (easy == NULL)
    ob_oom ();
  pushed_digest[0] = '\0';
  if (ob_layout_blob_read (src, manifest->digest, &data, &len, err) < 0)
    goto out;
  {
    json_t *j = json_loadb (data, len, 0, NULL);
    const char *jmt = json_string_value (json_object_get (j, "mediaType"));
    if (manifest->media_type && *manifest->media_type)
      mt = ob_xstrdup (manifest->media_type);
    else
      mt = ob_xstrdup (jmt ? jmt : OB_MT_OCI_MANIFEST);
    json_decref (j);
  }
  if (is_index_type (mt))
    {
      ob_error_make (err, OB_ERR_USAGE, 0, "%s: pushing an index is not supported", ref->canonical);
      goto out;
    }
  if (ob_image_manifest_parse (data, len, &m, err) < 0)
    goto out;
  if (!h->probed && probe (r, easy, h, err) < 0)
    goto out;
  progress (r, "Pushing %s", ref->canonical);
  todo = ob_xmalloc0 (sizeof *todo * (m->n_layers + 1));
  for (size_t i = 0; i <= m->n_layers; i++)
    {
      const struct ob_descriptor *d = i == 0 ? &m->config : &m->layers[i - 1];
      bool dup = false;
      for (size_t k = 0; k < n_todo; k++)
        dup = dup || strcmp (todo[k].digest, d->digest) == 0;
      if (!dup)
        todo[n_todo++] = *d;
    }
  p.r = r;
  p.h = h;
  p.repo = ref->repository;
  p.scope = scope;
  p.src = src;
  p.descs = todo;
  p.n = n_todo;
  p.fn = push_blob;
  if (pool_run (&p, err) < 0)
    {
      ob_error_wrap (err, "push %s", ref->canonical);
      goto out;
    }

  path = ob_xasprintf ("/v2/%s/manifests/%s", ref->repository, ref->tag ? ref->tag : ref->digest);
  q.method = "PUT";
  q.host = h;
  q.url = path;
  q.scope = scope;
  q.body = data;
  q.body_len = len;
  q.body_fd = q.out_fd = -1;
  q.content_type = mt;
  q.max_size = MAX_ERROR_BODY;
  if (reg_do (r, easy, &q, err) < 0)
    {
      ob_error_wrap (err, "push %s", ref->canonical);
      goto out;
    }
  if (q.code != 201 && q.code != 200)
    {
      reg_http_error (&q, err);
      goto out;
    }
  if (q.docker_digest && ob_digest_valid (q.docker_digest))
    strcpy (pushed_digest, q.docker_digest);
  else
    strcpy (pushed_digest, manifest->digest);
  if (strcmp (pushed_digest, manifest->digest) != 0)
    {
      ob_error_make (err, OB_ERR_REGISTRY, 0, "push %s: registry stored the manifest as %s, expected %s",
                     ref->canonical, pushed_digest, manifest->digest);
      goto out;
    }
  progress (r, "Wrote manifest %s", pushed_digest);
  ret = 0;
out:
  reg_req_clear (&q);
  free (todo);
  ob_manifest_free (m);
  curl_easy_cleanup (easy);
  return ret;
}
