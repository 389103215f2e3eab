/* registry: OCI distribution API client on libcurl.  See registry.h.
 *
 * Every request goes through reg_do(): it probes /v2/ once per host (to
 * learn the scheme and the authentication challenge), adds the
 * Authorization header for the request's scope, answers a 401 by fetching
 * a fresh token once, and retries transport errors, 429 and 5xx with
 * backoff.  Blobs are transferred by up to POOL_SIZE threads, each with its
 * own easy handle (keep-alive); DNS and TLS sessions are shared. */
#include "config.h"
/* the reference grammar lives in the image module */
#define valid_component ob_ref_valid_component
#define valid_domain ob_ref_valid_domain
#define valid_tag ob_ref_valid_tag
#include "curl_lazy.h"
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
#define MAX_MANIFEST (4 << 20)

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

int
ob_registry_load_libcurl (ob_error_t *err)
{
  return ob_curl_load (err);
}

int
ob_registry_new (const struct ob_registry_opts *opts, struct ob_registry **out, ob_error_t *err)
{
  struct ob_registry *r;

  if (ob_curl_load (err) < 0)
    return -1;
  r = ob_xmalloc0 (sizeof *r);
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
  if (r->opts.progress == NULL && r->opts.event == NULL)
    return;
  va_start (ap, fmt);
  if (vasprintf (&line, fmt, ap) < 0)
    ob_oom ();
  va_end (ap);
  pthread_mutex_lock (&r->progress_lock);
  if (r->opts.event)
    {
      struct ob_event ev = { .type = OB_EV_LOG, .text = line, .stage = -1 };
      r->opts.event (r->opts.event_data, &ev);
    }
  else
    r->opts.progress (r->opts.progress_data, line);
  pthread_mutex_unlock (&r->progress_lock);
  free (line);
}

/* A blob transfer event; text is the plain line (NULL: none).  Also the
 * curl progress hook of reg_req (reg_xfer), throttled there. */
static void
xfer_event (struct ob_registry *r, int state, bool push, const char *ref, const struct ob_descriptor *d,
            int64_t done, const char *text)
{
  struct ob_event ev = { .type = OB_EV_TRANSFER, .stage = -1 };
  if (r->opts.event == NULL)
    {
      if (text)
        progress (r, "%s", text);
      return;
    }
  ev.text = text;
  ev.xfer = state;
  ev.push = push;
  ev.ref = ref;
  ev.digest = d->digest;
  ev.done = done;
  ev.total = d->size;
  pthread_mutex_lock (&r->progress_lock);
  r->opts.event (r->opts.event_data, &ev);
  pthread_mutex_unlock (&r->progress_lock);
}

struct xfer_hook
{
  struct ob_registry *r;
  bool push;
  const char *ref;
  const struct ob_descriptor *d;
  int64_t last; /* ob_progress_now of the last event */
};

static void
xfer_hook (void *u, int64_t done)
{
  struct xfer_hook *x = u;
  int64_t now = ob_progress_now ();
  if (now - x->last < 100000000 || done <= 0 || done >= x->d->size)
    return;
  x->last = now;
  xfer_event (x->r, OB_XFER_PROGRESS, x->push, x->ref, x->d, done, NULL);
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
        return -1;
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
  const char *mount_from;  /* push: a repository of the same registry that
                              may hold the blobs (the base image's) */
  struct ob_txn *t;        /* pull */
  struct ob_layout *src;   /* push */
  const struct ob_descriptor *descs;
  size_t n, next;
  pool_fn fn;
  const char *ref;         /* for transfer events */
  pthread_mutex_t mu;      /* next, err, cancel */
  pthread_mutex_t txn_mu;  /* the transaction is not shared by threads otherwise */
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
  struct xfer_hook hook = { p->r, false, p->ref, d, 0 };
  char got[OB_DIGEST_LEN];
  int ret;

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
  q.on_bytes = xfer_hook;
  q.on_bytes_data = &hook;
  xfer_event (p->r, OB_XFER_START, false, p->ref, d, 0, NULL);
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
  /* the download is in the transaction's scratch directory: staged by
   * renaming it, not copied */
  pthread_mutex_lock (&p->txn_mu);
  ret = ob_txn_blob_take (p->t, path, d->digest, err);
  pthread_mutex_unlock (&p->txn_mu);
  if (ret < 0)
    {
      unlink (path);
      return ob_error_wrap (err, "blob %s", d->digest);
    }
  {
    cleanup_free char *line = ob_xasprintf ("Copied blob %.19s (%s)", d->digest, sz);
    xfer_event (p->r, OB_XFER_DONE, false, p->ref, d, d->size, line);
  }
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
  if (!h->probed && reg_probe (r, easy, h, err) < 0)
    goto out;
  progress (r, "Pulling %s", ref->canonical);
  if (fetch_manifest (r, easy, h, ref, ref->digest ? ref->digest : ref->tag, ref->digest, &data, &len,
                      &mt, digest, err)
      < 0)
    goto out;
  if (ob_image_media_type_is_index (mt))
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
      if (ret == 0 && (int64_t) len != child.size)
        ret = ob_error_make (err, OB_ERR_IMAGE, 0, "%s: manifest %s is %zu bytes, its descriptor in the index says %lld",
                             ref->canonical, child.digest, len, (long long) child.size);
      ob_descriptor_clear (&child);
      if (ret < 0)
        goto out;
      ret = -1;
      if (ob_image_media_type_is_index (mt))
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
  p.ref = ref->canonical;
  if (pool_run (&p, err) < 0)
    goto out;
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
  cleanup_free char *post = p->mount_from
                                ? ob_xasprintf ("/v2/%s/blobs/uploads/?mount=%s&from=%s", p->repo, d->digest, p->mount_from)
                                : ob_xasprintf ("/v2/%s/blobs/uploads/", p->repo);
  cleanup_free char *put = NULL;
  cleanup_free char *sz = human_size (d->size);
  cleanup_close int fd = -1;
  struct reg_req q = { 0 };
  struct xfer_hook hook = { p->r, true, p->ref, d, 0 };
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
      cleanup_free char *line = ob_xasprintf ("Blob %.19s already there", d->digest);
      xfer_event (p->r, OB_XFER_EXISTS, true, p->ref, d, d->size, line);
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
  if (q.code == 201 && p->mount_from)
    {
      /* cross-repository mount: the registry linked the blob, no upload */
      reg_req_clear (&q);
      cleanup_free char *line = ob_xasprintf ("Blob %.19s mounted from %s", d->digest, p->mount_from);
      xfer_event (p->r, OB_XFER_MOUNTED, true, p->ref, d, d->size, line);
      return 0;
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
  q.on_bytes = xfer_hook;
  q.on_bytes_data = &hook;
  xfer_event (p->r, OB_XFER_START, true, p->ref, d, 0, NULL);
  ret = reg_do (p->r, easy, &q, err);
  if (ret < 0)
    ob_error_wrap (err, "blob %s", d->digest);
  else if (q.code != 201)
    ret = reg_http_error (&q, err);
  reg_req_clear (&q);
  if (ret < 0)
    return -1;
  {
    cleanup_free char *line = ob_xasprintf ("Copied blob %.19s (%s)", d->digest, sz);
    xfer_event (p->r, OB_XFER_DONE, true, p->ref, d, d->size, line);
  }
  return 0;
}

static int push_manifest (struct ob_registry *r, struct ob_layout *src, const struct ob_descriptor *manifest,
                          const struct ob_ref *ref, char pushed_digest[72], int depth, ob_error_t *err);

int
ob_registry_push (struct ob_registry *r, struct ob_layout *src, const struct ob_descriptor *manifest,
                  const struct ob_ref *ref, char pushed_digest[72], ob_error_t *err)
{
  return push_manifest (r, src, manifest, ref, pushed_digest, 0, err);
}

/* An index: every manifest it lists first, each by its digest (a registry
 * refuses an index naming manifests it does not have), then the index. */
static int
push_index_children (struct ob_registry *r, struct ob_layout *src, const char *data, size_t len,
                     const struct ob_ref *ref, int depth, ob_error_t *err)
{
  json_t *j = json_loadb (data, len, 0, NULL), *ms = json_object_get (j, "manifests"), *e;
  size_t i;
  int ret = 0;
  if (!json_is_array (ms))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: index without a manifests list", ref->canonical);
    }
  if (depth >= OB_MAX_INDEX_DEPTH)
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "%s: indexes nested more than %d deep", ref->canonical,
                            OB_MAX_INDEX_DEPTH);
    }
  json_array_foreach (ms, i, e)
    {
      struct ob_descriptor d = { 0 };
      struct ob_ref child = *ref;
      char got[72];
      if (ob_descriptor_from_json (e, &d, err) < 0)
        {
          ret = ob_error_wrap (err, "%s: index", ref->canonical);
          break;
        }
      child.tag = NULL;
      child.digest = d.digest;
      child.canonical = ob_xasprintf ("%s@%s", ref->canonical, d.digest);
      ret = push_manifest (r, src, &d, &child, got, depth + 1, err);
      free (child.canonical);
      ob_descriptor_clear (&d);
      if (ret < 0)
        break;
    }
  json_decref (j);
  return ret;
}

static int
push_manifest (struct ob_registry *r, struct ob_layout *src, const struct ob_descriptor *manifest,
               const struct ob_ref *ref, char pushed_digest[72], int depth, ob_error_t *err)
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
  cleanup_free char *mount_from = NULL;

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
  if (ob_image_media_type_is_index (mt))
    {
      if (push_index_children (r, src, data, len, ref, depth, err) < 0)
        goto out;
      if (!h->probed && reg_probe (r, easy, h, err) < 0)
        goto out;
      progress (r, "Pushing index %s", ref->canonical);
      goto put;
    }
  if (ob_image_manifest_parse (data, len, &m, err) < 0)
    goto out;
  {
    /* the base image's repository, when it is on the same registry, can
     * lend its blobs (cross-repository mount) */
    json_t *j = json_loadb (data, len, 0, NULL);
    const char *base = json_string_value (json_object_get (json_object_get (j, "annotations"),
                                                           "org.opencontainers.image.base.name"));
    struct ob_ref *br = NULL;
    ob_error_t e2 = NULL;
    if (base && ob_ref_parse (base, &br, &e2) == 0 && strcmp (br->registry, ref->registry) == 0
        && strcmp (br->repository, ref->repository) != 0)
      mount_from = ob_xstrdup (br->repository);
    ob_error_free (&e2);
    ob_ref_free (br);
    json_decref (j);
  }
  if (!h->probed && reg_probe (r, easy, h, err) < 0)
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
  p.mount_from = mount_from;
  p.h = h;
  p.repo = ref->repository;
  p.scope = scope;
  p.src = src;
  p.descs = todo;
  p.n = n_todo;
  p.fn = push_blob;
  p.ref = ref->canonical;
  if (pool_run (&p, err) < 0)
    goto out;

put:
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
