/* registry authentication: WWW-Authenticate challenges, auth files
 * (containers-auth.json / docker config.json), Bearer tokens, login. */
#include "config.h"
#include "registry_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- WWW-Authenticate ---- */

void
ob_auth_challenge_clear (struct ob_auth_challenge *c)
{
  free (c->realm);
  free (c->service);
  free (c->scope);
  memset (c, 0, sizeof *c);
}

static bool
is_token_char (char c)
{
  return isalnum ((unsigned char) c) || strchr ("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *
skip_ws (const char *p)
{
  while (*p == ' ' || *p == '\t')
    p++;
  return p;
}

/* Parse the auth-params after a scheme into c, up to the end or the next
 * challenge.  Returns the position after them, NULL when malformed. */
static const char *
parse_params (const char *p, struct ob_auth_challenge *c, bool keep)
{
  for (;;)
    {
      const char *k, *ke;
      struct ob_buf v = { 0 };
      p = skip_ws (p);
      while (*p == ',')
        p = skip_ws (p + 1);
      if (*p == '\0')
        return p;
      k = p;
      while (is_token_char (*p))
        p++;
      ke = p;
      if (ke == k)
        return NULL;
      p = skip_ws (p);
      if (*p != '=')
        return k; /* the next challenge's scheme */
      p = skip_ws (p + 1);
      if (*p == '"')
        {
          for (p++; *p != '"'; p++)
            {
              if (*p == '\0')
                {
                  ob_buf_free (&v);
                  return NULL;
                }
              if (*p == '\\' && p[1] != '\0')
                p++;
              ob_buf_addc (&v, *p);
            }
          p++;
        }
      else
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
          ob_buf_addc (&v, *p++);
      ob_buf_addc (&v, '\0');
      char **slot = NULL;
      size_t kl = ke - k;
      if (kl == 5 && strncasecmp (k, "realm", 5) == 0)
        slot = &c->realm;
      else if (kl == 7 && strncasecmp (k, "service", 7) == 0)
        slot = &c->service;
      else if (kl == 5 && strncasecmp (k, "scope", 5) == 0)
        slot = &c->scope;
      if (slot && keep)
        {
          free (*slot);
          *slot = ob_buf_steal (&v);
        }
      ob_buf_free (&v);
    }
}

int
ob_registry_parse_challenge (const char *header, struct ob_auth_challenge *c, ob_error_t *err)
{
  const char *p = header ? header : "";
  bool have = false;
  memset (c, 0, sizeof *c);
  for (;;)
    {
      const char *s;
      size_t n;
      int scheme;
      p = skip_ws (p);
      while (*p == ',')
        p = skip_ws (p + 1);
      if (*p == '\0')
        break;
      s = p;
      while (is_token_char (*p))
        p++;
      n = p - s;
      if (n == 6 && strncasecmp (s, "Bearer", 6) == 0)
        scheme = OB_AUTH_BEARER;
      else if (n == 5 && strncasecmp (s, "Basic", 5) == 0)
        scheme = OB_AUTH_BASIC;
      else if (n > 0)
        scheme = OB_AUTH_NONE;
      else
        break;
      /* The first known challenge counts, unless a later one is Bearer. */
      bool keep = scheme != OB_AUTH_NONE
                  && (!have || (c->scheme == OB_AUTH_BASIC && scheme == OB_AUTH_BEARER));
      if (keep)
        {
          ob_auth_challenge_clear (c);
          c->scheme = scheme;
          have = true;
        }
      p = parse_params (p, c, keep);
      if (p == NULL)
        {
          ob_auth_challenge_clear (c);
          return ob_error_make (err, OB_ERR_REGISTRY, 0, "malformed WWW-Authenticate header `%s`",
                                header);
        }
    }
  if (!have)
    {
      ob_auth_challenge_clear (c);
      return ob_error_make (err, OB_ERR_REGISTRY, 0,
                            "unsupported authentication scheme in WWW-Authenticate `%s`",
                            header ? header : "");
    }
  if (c->scheme == OB_AUTH_BEARER && (c->realm == NULL || *c->realm == '\0'))
    {
      ob_auth_challenge_clear (c);
      return ob_error_make (err, OB_ERR_REGISTRY, 0,
                            "WWW-Authenticate `%s`: Bearer challenge without a realm", header);
    }
  return 0;
}

/* ---- base64 ---- */

char *
reg_base64 (const char *s, size_t n)
{
  char *out = ob_xmalloc (4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock ((unsigned char *) out, (const unsigned char *) s, (int) n);
  return out;
}

static char *
unbase64 (const char *s, size_t *len)
{
  size_t n = strlen (s);
  char *out;
  int r, pad = 0;
  if (n == 0 || n % 4 != 0)
    return NULL;
  out = ob_xmalloc (n / 4 * 3 + 1);
  r = EVP_DecodeBlock ((unsigned char *) out, (const unsigned char *) s, (int) n);
  if (r < 0)
    {
      free (out);
      return NULL;
    }
  if (s[n - 1] == '=')
    pad++;
  if (s[n - 2] == '=')
    pad++;
  *len = r - pad;
  out[*len] = '\0';
  return out;
}

/* ---- auth files ---- */

static bool
is_docker_hub (const char *h, size_t n)
{
  static const char *const names[]
      = { "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com" };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strlen (names[i]) == n && strncmp (h, names[i], n) == 0)
      return true;
  return false;
}

/* Does an "auths" key ("host", "https://host", "host/v1/", ...) name host? */
static bool
key_matches (const char *key, const char *host)
{
  size_t n;
  if (ob_str_has_prefix (key, "https://"))
    key += 8;
  else if (ob_str_has_prefix (key, "http://"))
    key += 7;
  n = strcspn (key, "/");
  if (strlen (host) == n && strncmp (key, host, n) == 0)
    return true;
  return is_docker_hub (key, n) && is_docker_hub (host, strlen (host));
}

/* The auth files to consult, in order (caller frees the vector). */
static char **
auth_file_candidates (const struct ob_registry_opts *opts)
{
  char **v = NULL;
  const char *e;
  if (opts && opts->auth_file && *opts->auth_file)
    ob_strv_add (&v, opts->auth_file);
  if ((e = getenv ("REGISTRY_AUTH_FILE")) && *e)
    ob_strv_add (&v, e);
  if ((e = getenv ("XDG_RUNTIME_DIR")) && *e)
    ob_strv_take (&v, ob_xasprintf ("%s/containers/auth.json", e));
  if ((e = getenv ("HOME")) && *e)
    ob_strv_take (&v, ob_xasprintf ("%s/.docker/config.json", e));
  if (v == NULL)
    v = ob_xmalloc0 (sizeof (char *));
  return v;
}

static int
load_auth_file (const char *path, json_t **out, ob_error_t *err)
{
  cleanup_free char *data = NULL;
  size_t len;
  json_error_t jerr;
  ob_error_t e2 = NULL;
  *out = NULL;
  if (ob_read_file_at (AT_FDCWD, path, &data, &len, &e2) < 0)
    {
      int st = e2->status;
      ob_error_free (&e2);
      if (st == ENOENT || st == ENOTDIR)
        return 0;
      return ob_error_make (err, OB_ERR_REGISTRY, st, "auth file `%s`", path);
    }
  *out = json_loadb (data, len, 0, &jerr);
  if (*out == NULL || !json_is_object (*out))
    {
      json_decref (*out);
      *out = NULL;
      return ob_error_make (err, OB_ERR_REGISTRY, 0, "auth file `%s`: invalid JSON: %s", path,
                            jerr.text);
    }
  return 0;
}

/* ---- credential helpers (docker-credential-NAME get) ---- */

static char *
find_in_path (const char *name)
{
  const char *path = getenv ("PATH");
  cleanup_free char *copy = ob_xstrdup (path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  char *save = NULL;
  for (char *d = strtok_r (copy, ":", &save); d; d = strtok_r (NULL, ":", &save))
    {
      char *p = ob_xasprintf ("%s/%s", *d ? d : ".", name);
      if (access (p, X_OK) == 0)
        return p;
      free (p);
    }
  return NULL;
}

/* Run `docker-credential-<helper> get` with the server on its standard
 * input, as Docker does.  1: credentials found; 0: the helper has none
 * (it says "credentials not found"); < 0: the helper is missing or failed. */
static int
run_cred_helper (const char *helper, const char *registry, const char *file, char **user,
                 char **password, ob_error_t *err)
{
  cleanup_free char *prog = NULL;
  cleanup_free char *path = NULL;
  cleanup_free char *server = NULL;
  cleanup_free char *out = NULL;
  int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0;
  size_t len = 0;
  pid_t pid;
  json_t *j;
  const char *u, *s;

  for (const char *c = helper; *c; c++)
    if (!(isalnum ((unsigned char) *c) || *c == '-' || *c == '_' || *c == '.'))
      return ob_error_make (err, OB_ERR_REGISTRY, 0, "auth file `%s`: invalid credential helper name `%s`", file,
                            helper);
  prog = ob_xasprintf ("docker-credential-%s", helper);
  path = find_in_path (prog);
  if (path == NULL)
    return ob_error_make (err, OB_ERR_REGISTRY, ENOENT, "auth file `%s`: credential helper `%s` not found in PATH",
                          file, prog);
  server = is_docker_hub (registry, strlen (registry)) ? ob_xstrdup ("https://index.docker.io/v1/")
                                                       : ob_xstrdup (registry);
  if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (outp, O_CLOEXEC) < 0)
    {
      int e = errno;
      for (int i = 0; i < 2; i++)
        {
          if (in[i] >= 0)
            close (in[i]);
          if (outp[i] >= 0)
            close (outp[i]);
        }
      return ob_error_make (err, OB_ERR_REGISTRY, e, "credential helper `%s`", prog);
    }
  pid = fork ();
  if (pid == 0)
    {
      char *const argv[] = { prog, (char *) "get", NULL };
      dup2 (in[0], 0);
      dup2 (outp[1], 1);
      ob_nofile_restore ();
      execv (path, argv);
      _exit (127);
    }
  close (in[0]);
  close (outp[1]);
  if (pid < 0)
    {
      int e = errno;
      close (in[1]);
      close (outp[0]);
      return ob_error_make (err, OB_ERR_REGISTRY, e, "credential helper `%s`", prog);
    }
  {
    /* a helper that does not read its input must not kill us */
    struct sigaction ign = { .sa_handler = SIG_IGN }, old;
    sigaction (SIGPIPE, &ign, &old);
    if (write (in[1], server, strlen (server)) < 0)
      {
        /* the helper's exit status tells */
      }
    sigaction (SIGPIPE, &old, NULL);
  }
  close (in[1]);
  {
    ob_error_t e2 = NULL;
    if (ob_read_fd (outp[0], &out, &len, &e2) < 0)
      ob_error_free (&e2);
  }
  close (outp[0]);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      if (out && strstr (out, "credentials not found"))
        return 0;
      if (out)
        out[strcspn (out, "\n")] = '\0';
      return ob_error_make (err, OB_ERR_REGISTRY, 0, "credential helper `%s` failed for %s%s%s", prog, server,
                            out && *out ? ": " : "", out && *out ? out : "");
    }
  j = json_loadb (out ? out : "", len, 0, NULL);
  u = json_string_value (json_object_get (j, "Username"));
  s = json_string_value (json_object_get (j, "Secret"));
  if (u == NULL || s == NULL)
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_REGISTRY, 0, "credential helper `%s`: no Username and Secret in its answer",
                            prog);
    }
  *user = ob_xstrdup (u);
  *password = ob_xstrdup (s);
  json_decref (j);
  return 1;
}

int
ob_registry_find_credentials (const struct ob_registry_opts *opts, const char *registry,
                              char **user, char **password, ob_error_t *err)
{
  cleanup_strv char **files = auth_file_candidates (opts);
  *user = *password = NULL;
  for (size_t i = 0; files[i]; i++)
    {
      json_t *j, *auths, *ent;
      const char *key;
      if (load_auth_file (files[i], &j, err) < 0)
        return -1;
      if (j == NULL)
        {
          if (opts && opts->auth_file && i == 0 && strcmp (files[0], opts->auth_file) == 0)
            return ob_error_make (err, OB_ERR_USAGE, ENOENT, "auth file `%s`", files[0]);
          continue;
        }
      /* Docker's order: a helper for this registry, the default store,
       * then the file's own entries */
      {
        const char *helper = NULL, *hkey;
        json_t *hv;
        int r;
        json_object_foreach (json_object_get (j, "credHelpers"), hkey, hv)
          if (key_matches (hkey, registry) && json_is_string (hv))
            helper = json_string_value (hv);
        if (helper == NULL)
          helper = json_string_value (json_object_get (j, "credsStore"));
        if (helper && *helper)
          {
            r = run_cred_helper (helper, registry, files[i], user, password, err);
            if (r != 0)
              {
                json_decref (j);
                return r;
              }
          }
      }
      auths = json_object_get (j, "auths");
      json_object_foreach (auths, key, ent)
        {
          const char *a, *u, *p;
          if (!key_matches (key, registry))
            continue;
          a = json_string_value (json_object_get (ent, "auth"));
          u = json_string_value (json_object_get (ent, "username"));
          p = json_string_value (json_object_get (ent, "password"));
          if (a && *a)
            {
              size_t n;
              cleanup_free char *dec = unbase64 (a, &n);
              char *colon = dec ? memchr (dec, ':', n) : NULL;
              if (colon == NULL)
                {
                  ob_error_make (err, OB_ERR_REGISTRY, 0,
                                 "auth file `%s`: entry `%s`: invalid \"auth\" value", files[i],
                                 key);
                  json_decref (j);
                  return -1;
                }
              *user = ob_xstrndup (dec, colon - dec);
              *password = ob_xstrdup (colon + 1);
            }
          else if (u && p)
            {
              *user = ob_xstrdup (u);
              *password = ob_xstrdup (p);
            }
          else
            continue;
          json_decref (j);
          return 1;
        }
      json_decref (j);
    }
  return 0;
}

static int
login_write (const char *path, const char *key, const char *b64, ob_error_t *err)
{
  json_t *j, *auths, *ent;
  cleanup_free char *dir = ob_xstrdup (path);
  cleanup_free char *text = NULL;
  char *slash = strrchr (dir, '/');
  int ret;

  if (slash && slash != dir)
    {
      *slash = '\0';
      if (ob_mkdir_p_at (AT_FDCWD, dir, 0700, err) < 0)
        return -1;
    }
  if (load_auth_file (path, &j, err) < 0)
    return -1;
  if (j == NULL)
    j = json_object ();
  auths = json_object_get (j, "auths");
  if (!json_is_object (auths))
    {
      auths = json_object ();
      json_object_set_new (j, "auths", auths);
    }
  ent = json_object ();
  json_object_set_new (ent, "auth", json_string (b64));
  json_object_set_new (auths, key, ent);
  text = json_dumps (j, JSON_INDENT (1) | JSON_SORT_KEYS);
  json_decref (j);
  if (text == NULL)
    ob_oom ();
  ret = ob_write_file_atomic_at (AT_FDCWD, path, text, strlen (text), 0600, err);
  if (ret == 0)
    chmod (path, 0600);
  return ret;
}

static int
login_args_check (const char *registry, const char *user, const char *password, ob_error_t *err)
{
  if (registry == NULL || *registry == '\0' || strchr (registry, '/') || user == NULL
      || *user == '\0' || strchr (user, ':') || password == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0,
                          "login: need a registry host, a user name without `:` and a password");
  return 0;
}

int
ob_registry_check_login (const struct ob_registry_opts *opts, const char *registry,
                         const char *user, const char *password, ob_error_t *err)
{
  struct ob_registry *r = NULL;
  struct reg_host *h;
  struct reg_req q = { 0 };
  CURL *easy;
  int ret = -1;

  if (login_args_check (registry, user, password, err) < 0 || ob_registry_new (opts, &r, err) < 0)
    return -1;
  easy = curl_easy_init ();
  if (easy == NULL)
    ob_oom ();
  h = reg_host_get (r, is_docker_hub (registry, strlen (registry)) ? "registry-1.docker.io" : registry);
  pthread_mutex_lock (&r->lock);
  h->user = ob_xstrdup (user);
  h->password = ob_xstrdup (password);
  h->creds_looked_up = true; /* these, not the auth file's */
  pthread_mutex_unlock (&r->lock);
  q.method = "GET";
  q.host = h;
  q.url = "/v2/";
  q.body_fd = q.out_fd = -1;
  q.max_size = MAX_ERROR_BODY;
  if (reg_do (r, easy, &q, err) == 0)
    {
      if (q.code >= 200 && q.code < 300)
        ret = 0;
      else if (q.code == 401 || q.code == 403)
        ret = ob_error_make (err, OB_ERR_REGISTRY, 0, "registry %s refused the credentials of `%s` (HTTP %ld)",
                             registry, user, q.code);
      else
        ret = reg_http_error (&q, err);
    }
  reg_req_clear (&q);
  curl_easy_cleanup (easy);
  ob_registry_free (r);
  return ret;
}

int
ob_registry_login (const struct ob_registry_opts *opts, const char *registry, const char *user,
                   const char *password, ob_error_t *err)
{
  cleanup_strv char **files = auth_file_candidates (opts);
  cleanup_free char *plain = NULL;
  cleanup_free char *b64 = NULL;
  const char *key = registry;

  if (login_args_check (registry, user, password, err) < 0)
    return -1;
  if (is_docker_hub (registry, strlen (registry)))
    key = "docker.io";
  if (files[0] == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0,
                          "login: no auth file (set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME)");
  plain = ob_xasprintf ("%s:%s", user, password);
  b64 = reg_base64 (plain, strlen (plain));
  for (size_t i = 0; files[i]; i++)
    {
      ob_error_t e2 = NULL;
      if (login_write (files[i], key, b64, &e2) == 0)
        return 0;
      /* An explicit file, a malformed file or the last candidate: report. */
      if (files[i + 1] == NULL || (opts && opts->auth_file && i == 0)
          || (e2->status != EACCES && e2->status != EPERM && e2->status != EROFS
              && e2->status != ENOENT && e2->status != ENOTDIR))
        {
          ob_error_free (err);
          *err = e2;
          return ob_error_wrap (err, "login %s", registry);
        }
      ob_error_free (&e2);
    }
  return ob_error_make (err, OB_ERR_STORE, 0, "login %s: no writable auth file", registry);
}

/* Drop the credentials for registry from an auth file: 1 removed, 0 none. */
static int
logout_file (const char *path, const char *registry, ob_error_t *err)
{
  json_t *j, *auths;
  const char *key;
  json_t *v;
  void *tmp;
  cleanup_free char *text = NULL;
  bool removed = false;
  int ret;

  if (load_auth_file (path, &j, err) < 0)
    return -1;
  auths = json_object_get (j, "auths");
  json_object_foreach_safe (auths, tmp, key, v)
    if (key_matches (key, registry))
      {
        json_object_del (auths, key);
        removed = true;
      }
  if (!removed)
    {
      json_decref (j);
      return 0;
    }
  text = json_dumps (j, JSON_INDENT (1) | JSON_SORT_KEYS);
  json_decref (j);
  if (text == NULL)
    ob_oom ();
  ret = ob_write_file_atomic_at (AT_FDCWD, path, text, strlen (text), 0600, err);
  return ret < 0 ? -1 : 1;
}

int
ob_registry_logout (const struct ob_registry_opts *opts, const char *registry, ob_error_t *err)
{
  cleanup_strv char **files = auth_file_candidates (opts);
  bool any = false;

  if (registry == NULL || *registry == '\0' || strchr (registry, '/'))
    return ob_error_make (err, OB_ERR_USAGE, 0, "logout: need a registry host");
  /* every file obuild would take the credentials from (only the explicit
   * one with --authfile), so that none is used afterwards */
  for (size_t i = 0; files[i]; i++)
    {
      int r = logout_file (files[i], registry, err);
      if (r < 0)
        return ob_error_wrap (err, "logout %s", registry);
      any = any || r > 0;
      if (opts && opts->auth_file && *opts->auth_file && i == 0)
        break;
    }
  if (!any)
    return ob_error_make (err, OB_ERR_REGISTRY, 0, "not logged into %s", registry);
  return 0;
}

/* ---- tokens ---- */

void
reg_tokens_free (struct reg_token *t)
{
  while (t)
    {
      struct reg_token *n = t->next;
      free (t->host);
      free (t->scope);
      free (t->token);
      free (t);
      t = n;
    }
}

/* Cached token for (host, scope), or NULL (caller frees). Lock held. */
static char *
token_lookup (struct ob_registry *r, const char *host, const char *scope)
{
  time_t now = time (NULL);
  for (struct reg_token *t = r->tokens; t; t = t->next)
    if (strcmp (t->host, host) == 0 && strcmp (t->scope, scope ? scope : "") == 0
        && t->expires > now)
      return ob_xstrdup (t->token);
  return NULL;
}

static void
token_store (struct ob_registry *r, const char *host, const char *scope, const char *token,
             long expires_in)
{
  struct reg_token *t;
  pthread_mutex_lock (&r->lock);
  for (t = r->tokens; t; t = t->next)
    if (strcmp (t->host, host) == 0 && strcmp (t->scope, scope ? scope : "") == 0)
      break;
  if (t == NULL)
    {
      t = ob_xmalloc0 (sizeof *t);
      t->host = ob_xstrdup (host);
      t->scope = ob_xstrdup (scope ? scope : "");
      t->next = r->tokens;
      r->tokens = t;
    }
  free (t->token);
  t->token = ob_xstrdup (token);
  /* Renew a little early so a token does not expire mid-request. */
  t->expires = time (NULL) + (expires_in > 30 ? expires_in - 10 : expires_in);
  pthread_mutex_unlock (&r->lock);
}

static int
fetch_token (struct ob_registry *r, CURL *easy, struct reg_host *h, const char *realm,
             const char *service, const char *scope, const char *user, const char *password,
             char **out, ob_error_t *err)
{
  struct ob_buf url = { 0 };
  struct reg_req q = { 0 };
  cleanup_free char *u = NULL;
  json_t *j;
  json_error_t jerr;
  const char *tok;
  json_t *exp;
  long expires_in = 60;
  int ret;

  if (!ob_str_has_prefix (realm, "https://") && !ob_str_has_prefix (realm, "http://"))
    return ob_error_make (err, OB_ERR_REGISTRY, 0, "registry %s: token realm `%s` is not an http(s) URL",
                          h->name, realm);
  ob_buf_adds (&url, realm);
  ob_buf_addc (&url, strchr (realm, '?') ? '&' : '?');
  if (service)
    {
      char *e = curl_easy_escape (easy, service, 0);
      ob_buf_adds (&url, "service=");
      ob_buf_adds (&url, e);
      curl_free (e);
    }
  if (scope)
    {
      char *e = curl_easy_escape (easy, scope, 0);
      if (service)
        ob_buf_addc (&url, '&');
      ob_buf_adds (&url, "scope=");
      ob_buf_adds (&url, e);
      curl_free (e);
    }
  u = ob_buf_steal (&url);
  q.method = "GET";
  q.url = u;
  q.accept = "application/json";
  q.user = user;
  q.password = password;
  q.body_fd = q.out_fd = -1;
  q.max_size = 1 << 20;
  if (reg_do (r, easy, &q, err) < 0)
    {
      reg_req_clear (&q);
      return ob_error_wrap (err, "registry %s: token server", h->name);
    }
  if (q.code != 200)
    {
      reg_http_error (&q, err);
      reg_req_clear (&q);
      return ob_error_wrap (err, "registry %s%s", h->name, user ? "" : " (anonymous)");
    }
  j = json_loadb (q.resp.data ? q.resp.data : "", q.resp.len, 0, &jerr);
  reg_req_clear (&q);
  tok = json_string_value (json_object_get (j, "token"));
  if (tok == NULL || *tok == '\0')
    tok = json_string_value (json_object_get (j, "access_token"));
  if (tok == NULL || *tok == '\0')
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_REGISTRY, 0,
                            "registry %s: token server %s: answer has no token", h->name, realm);
    }
  exp = json_object_get (j, "expires_in");
  if (json_is_integer (exp) && json_integer_value (exp) > 0)
    expires_in = (long) json_integer_value (exp);
  *out = ob_xstrdup (tok);
  json_decref (j);
  token_store (r, h->name, scope, *out, expires_in);
  ret = 0;
  return ret;
}

static void
lookup_creds (struct ob_registry *r, struct reg_host *h, ob_error_t *err, int *ret)
{
  *ret = 0;
  if (h->creds_looked_up)
    return;
  *ret = ob_registry_find_credentials (&r->opts, h->name, &h->user, &h->password, err);
  if (*ret >= 0)
    {
      h->creds_looked_up = true;
      *ret = 0;
    }
}

int
reg_auth_header (struct ob_registry *r, CURL *easy, struct reg_host *h, const char *scope,
                 bool force, char **out, ob_error_t *err)
{
  cleanup_free char *realm = NULL;
  cleanup_free char *service = NULL;
  cleanup_free char *user = NULL;
  cleanup_free char *password = NULL;
  cleanup_free char *tok = NULL;
  int scheme, ret;

  *out = NULL;
  pthread_mutex_lock (&r->lock);
  lookup_creds (r, h, err, &ret);
  scheme = h->chal.scheme;
  realm = ob_xstrdup (h->chal.realm);
  service = ob_xstrdup (h->chal.service);
  user = ob_xstrdup (h->user);
  password = ob_xstrdup (h->password);
  if (scheme == OB_AUTH_BEARER && !force)
    tok = token_lookup (r, h->name, scope);
  pthread_mutex_unlock (&r->lock);
  if (ret < 0)
    return ret;

  switch (scheme)
    {
    case OB_AUTH_NONE:
      return 0;
    case OB_AUTH_BASIC:
      {
        cleanup_free char *plain = NULL;
        cleanup_free char *b = NULL;
        if (user == NULL)
          return 0; /* the 401 then says what is missing */
        plain = ob_xasprintf ("%s:%s", user, password);
        b = reg_base64 (plain, strlen (plain));
        *out = ob_xasprintf ("Authorization: Basic %s", b);
        return 0;
      }
    case OB_AUTH_BEARER:
      if (tok == NULL && fetch_token (r, easy, h, realm, service, scope, user, password, &tok, err) < 0)
        return -1;
      *out = ob_xasprintf ("Authorization: Bearer %s", tok);
      return 0;
    default:
      return 0;
    }
}
