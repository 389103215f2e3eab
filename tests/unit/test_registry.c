/* Unit tests for the registry module: reference parsing, WWW-Authenticate
 * parsing, auth files; then integration cases against a real
 * docker-registry on 127.0.0.1 (plain HTTP, TLS + htpasswd, token auth),
 * each case with its own registry process and temporary directory. */
#include "config.h"
#include <obuild/registry.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define FIXTURES SRCDIR "/tests/fixtures/registry"

static char *tmp_root;

/* Print a skipped case the TAP way and keep the numbering. */
#define SKIP(name, why)                                                                      \
  do                                                                                         \
    {                                                                                        \
      tap_n++;                                                                               \
      printf ("ok %d - %s # skip %s\n", tap_n, #name, why);                                  \
      fflush (stdout);                                                                       \
    }                                                                                        \
  while (0)

/* ---- reference parsing ---- */

struct ref_case
{
  const char *in;
  const char *registry, *repository, *tag, *digest, *canonical; /* registry NULL: invalid */
};

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct ref_case ref_cases[] = {
  { "debian", "registry-1.docker.io", "library/debian", "latest", NULL, "docker.io/library/debian:latest" },
  { "debian:12", "registry-1.docker.io", "library/debian", "12", NULL, "docker.io/library/debian:12" },
  { "library/debian:12", "registry-1.docker.io", "library/debian", "12", NULL, "docker.io/library/debian:12" },
  { "docker.io/debian", "registry-1.docker.io", "library/debian", "latest", NULL, "docker.io/library/debian:latest" },
  { "docker.io/library/debian", "registry-1.docker.io", "library/debian", "latest", NULL, "docker.io/library/debian:latest" },
  { "index.docker.io/debian", "registry-1.docker.io", "library/debian", "latest", NULL, "docker.io/library/debian:latest" },
  { "registry-1.docker.io/x/y", "registry-1.docker.io", "x/y", "latest", NULL, "docker.io/x/y:latest" },
  { "user/app", "registry-1.docker.io", "user/app", "latest", NULL, "docker.io/user/app:latest" },
  { "user/app:v1.2_3-x", "registry-1.docker.io", "user/app", "v1.2_3-x", NULL, "docker.io/user/app:v1.2_3-x" },
  { "quay.io/org/app", "quay.io", "org/app", "latest", NULL, "quay.io/org/app:latest" },
  { "quay.io/app", "quay.io", "app", "latest", NULL, "quay.io/app:latest" },
  { "localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest" },
  { "localhost:5000/app:1", "localhost:5000", "app", "1", NULL, "localhost:5000/app:1" },
  { "127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000", "a/b/c", "t", NULL, "127.0.0.1:5000/a/b/c:t" },
  { "[::1]:5000/app", "[::1]:5000", "app", "latest", NULL, "[::1]:5000/app:latest" },
  { "Registry.Example/app", "Registry.Example", "app", "latest", NULL, "Registry.Example/app:latest" },
  { "debian@sha256:" D64, "registry-1.docker.io", "library/debian", NULL, "sha256:" D64, "docker.io/library/debian@sha256:" D64 },
  { "debian:12@sha256:" D64, "registry-1.docker.io", "library/debian", "12", "sha256:" D64, "docker.io/library/debian:12@sha256:" D64 },
  { "h.io:443/a@sha256:" D64, "h.io:443", "a", NULL, "sha256:" D64, "h.io:443/a@sha256:" D64 },
  { "a__b/c--d/e.f", "registry-1.docker.io", "a__b/c--d/e.f", "latest", NULL, "docker.io/a__b/c--d/e.f:latest" },
  { "localhost:5000", "registry-1.docker.io", "library/localhost", "5000", NULL, "docker.io/library/localhost:5000" },
  { "", NULL, NULL, NULL, NULL, NULL },
  { "Debian", NULL, NULL, NULL, NULL, NULL },
  { "user/App", NULL, NULL, NULL, NULL, NULL },
  { "debian:", NULL, NULL, NULL, NULL, NULL },
  { "debian:-x", NULL, NULL, NULL, NULL, NULL },
  { "debian:a/b", NULL, NULL, NULL, NULL, NULL },
  { "debian@sha256:abc", NULL, NULL, NULL, NULL, NULL },
  { "debian@md5:" D64, NULL, NULL, NULL, NULL, NULL },
  { "debian@", NULL, NULL, NULL, NULL, NULL },
  { "@sha256:" D64, NULL, NULL, NULL, NULL, NULL },
  { "/debian", NULL, NULL, NULL, NULL, NULL },
  { "debian/", NULL, NULL, NULL, NULL, NULL },
  { "a//b", NULL, NULL, NULL, NULL, NULL },
  { "-a/b", NULL, NULL, NULL, NULL, NULL },
  { "a-/b", NULL, NULL, NULL, NULL, NULL },
  { "a..b", NULL, NULL, NULL, NULL, NULL },
  { "a___b", NULL, NULL, NULL, NULL, NULL },
  { "host:port/x", NULL, NULL, NULL, NULL, NULL },
  { "h.io:/x", NULL, NULL, NULL, NULL, NULL },
  { "-h.io/x", NULL, NULL, NULL, NULL, NULL },
  { D64, NULL, NULL, NULL, NULL, NULL },
  { "a b", NULL, NULL, NULL, NULL, NULL },
};

TEST (ref_parse_table)
{
  for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++)
    {
      const struct ref_case *c = &ref_cases[i];
      struct ob_ref *r = NULL;
      ob_error_t err = NULL;
      int ret = ob_ref_parse (c->in, &r, &err);
      if (c->registry == NULL)
        {
          if (ret >= 0)
            printf ("#   \"%s\" parsed but must be refused\n", c->in);
          CHECK (ret < 0);
          if (ret < 0)
            {
              CHECK_INT (err->kind, OB_ERR_USAGE);
              cleanup_free char *want = ob_xasprintf ("invalid reference \"%s\"", c->in);
              if (strstr (err->msg, want) == NULL)
                printf ("#   message `%s` does not name the reference\n", err->msg);
              CHECK (strstr (err->msg, want) != NULL);
            }
          ob_error_free (&err);
          continue;
        }
      if (ret < 0)
        printf ("#   \"%s\": %s\n", c->in, err->msg);
      CHECK (ret == 0);
      if (ret < 0)
        {
          ob_error_free (&err);
          continue;
        }
      CHECK_STR (r->registry, c->registry);
      CHECK_STR (r->repository, c->repository);
      CHECK_STR (r->tag, c->tag);
      CHECK_STR (r->digest, c->digest);
      CHECK_STR (r->canonical, c->canonical);
      ob_ref_free (r);
    }
}

/* ---- WWW-Authenticate ---- */

TEST (challenge_bearer)
{
  struct ob_auth_challenge c;
  ob_error_t err = NULL;
  CHECK (ob_registry_parse_challenge (
             "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
             "scope=\"repository:library/debian:pull\"",
             &c, &err)
         == 0);
  CHECK_INT (c.scheme, OB_AUTH_BEARER);
  CHECK_STR (c.realm, "https://auth.docker.io/token");
  CHECK_STR (c.service, "registry.docker.io");
  CHECK_STR (c.scope, "repository:library/debian:pull");
  ob_auth_challenge_clear (&c);

  /* Case, spaces, unquoted values, escapes, unknown params. */
  CHECK (ob_registry_parse_challenge ("bearer  Realm=http://127.0.0.1:1/t , error=\"insufficient_scope\", "
                                      "service=\"a\\\"b\"",
                                      &c, &err)
         == 0);
  CHECK_INT (c.scheme, OB_AUTH_BEARER);
  CHECK_STR (c.realm, "http://127.0.0.1:1/t");
  CHECK_STR (c.service, "a\"b");
  CHECK (c.scope == NULL);
  ob_auth_challenge_clear (&c);
}

TEST (challenge_basic_and_multiple)
{
  struct ob_auth_challenge c;
  ob_error_t err = NULL;
  CHECK (ob_registry_parse_challenge ("Basic realm=\"Registry Realm\"", &c, &err) == 0);
  CHECK_INT (c.scheme, OB_AUTH_BASIC);
  CHECK_STR (c.realm, "Registry Realm");
  ob_auth_challenge_clear (&c);
  CHECK (ob_registry_parse_challenge ("Basic realm=\"x\", Bearer realm=\"https://t/\",service=s", &c, &err)
         == 0);
  CHECK_INT (c.scheme, OB_AUTH_BEARER);
  CHECK_STR (c.realm, "https://t/");
  CHECK_STR (c.service, "s");
  ob_auth_challenge_clear (&c);
  CHECK (ob_registry_parse_challenge ("Negotiate abc, Basic realm=r", &c, &err) == 0);
  CHECK_INT (c.scheme, OB_AUTH_BASIC);
  ob_auth_challenge_clear (&c);
}

TEST (challenge_bad)
{
  struct ob_auth_challenge c;
  ob_error_t err = NULL;
  CHECK (ob_registry_parse_challenge ("", &c, &err) < 0);
  CHECK (err && err->kind == OB_ERR_REGISTRY);
  ob_error_free (&err);
  CHECK (ob_registry_parse_challenge ("Digest realm=\"x\"", &c, &err) < 0);
  CHECK (err && strstr (err->msg, "unsupported authentication scheme") != NULL);
  ob_error_free (&err);
  CHECK (ob_registry_parse_challenge ("Bearer realm=\"unterminated", &c, &err) < 0);
  CHECK (err && strstr (err->msg, "malformed") != NULL);
  ob_error_free (&err);
  CHECK (ob_registry_parse_challenge ("Bearer service=\"x\"", &c, &err) < 0);
  CHECK (err && strstr (err->msg, "without a realm") != NULL);
  ob_error_free (&err);
}

/* ---- auth files ---- */

static char *
case_dir (const char *name)
{
  ob_error_t err = NULL;
  char *d = NULL;
  cleanup_free char *prefix = ob_xasprintf ("%s-", name);
  if (ob_mkdtemp_in (tmp_root, prefix, &d, &err) < 0)
    {
      printf ("# %s\n", err->msg);
      exit (99);
    }
  return d;
}

static void
write_file (const char *path, const char *text)
{
  FILE *f = fopen (path, "w");
  if (f == NULL)
    {
      printf ("# cannot write %s\n", path);
      exit (99);
    }
  fputs (text, f);
  fclose (f);
}

/* Isolate from the user's own auth files. */
static void
clear_auth_env (const char *dir)
{
  unsetenv ("REGISTRY_AUTH_FILE");
  setenv ("XDG_RUNTIME_DIR", dir, 1);
  setenv ("HOME", dir, 1);
}

TEST (credentials_lookup)
{
  cleanup_free char *d = case_dir ("creds");
  cleanup_free char *f1 = ob_xasprintf ("%s/one.json", d);
  cleanup_free char *f2 = ob_xasprintf ("%s/two.json", d);
  cleanup_free char *xdg = ob_xasprintf ("%s/containers", d);
  cleanup_free char *f3 = ob_xasprintf ("%s/containers/auth.json", d);
  struct ob_registry_opts o;
  char *u = NULL, *p = NULL;
  ob_error_t err = NULL;

  clear_auth_env (d);
  ob_registry_opts_init (&o);
  CHECK (o.tls_verify);
  /* base64("alice:s3cr:et") = YWxpY2U6czNjcjpldA== */
  write_file (f1, "{\"auths\":{\"https://quay.io/v1/\":{\"auth\":\"YWxpY2U6czNjcjpldA==\"},"
                  "\"https://index.docker.io/v1/\":{\"username\":\"hub\",\"password\":\"pw\"}}}");
  write_file (f2, "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"Ym9iOnB3\"},"
                  "\"quay.io\":{\"auth\":\"bWFsbG9yeTp4\"}}}");
  o.auth_file = f1;
  CHECK_INT (ob_registry_find_credentials (&o, "quay.io", &u, &p, &err), 1);
  CHECK_STR (u, "alice");
  CHECK_STR (p, "s3cr:et");
  free (u);
  free (p);
  CHECK_INT (ob_registry_find_credentials (&o, "registry-1.docker.io", &u, &p, &err), 1);
  CHECK_STR (u, "hub");
  CHECK_STR (p, "pw");
  free (u);
  free (p);
  /* Falls through to $REGISTRY_AUTH_FILE for hosts the first file lacks. */
  setenv ("REGISTRY_AUTH_FILE", f2, 1);
  CHECK_INT (ob_registry_find_credentials (&o, "127.0.0.1:5000", &u, &p, &err), 1);
  CHECK_STR (u, "bob");
  CHECK_STR (p, "pw");
  free (u);
  free (p);
  CHECK_INT (ob_registry_find_credentials (&o, "127.0.0.1:5001", &u, &p, &err), 0);
  CHECK (u == NULL && p == NULL);
  /* ${XDG_RUNTIME_DIR}/containers/auth.json */
  unsetenv ("REGISTRY_AUTH_FILE");
  o.auth_file = NULL;
  mkdir (xdg, 0700);
  write_file (f3, "{\"auths\":{\"ghcr.io\":{\"auth\":\"eDp5\"}}}");
  CHECK_INT (ob_registry_find_credentials (&o, "ghcr.io", &u, &p, &err), 1);
  CHECK_STR (u, "x");
  CHECK_STR (p, "y");
  free (u);
  free (p);
  /* Malformed files and entries are errors. */
  write_file (f3, "{\"auths\":{\"ghcr.io\":{\"auth\":\"bm9jb2xvbg==\"}}}");
  CHECK (ob_registry_find_credentials (&o, "ghcr.io", &u, &p, &err) < 0);
  CHECK (err && strstr (err->msg, "invalid \"auth\" value") != NULL);
  ob_error_free (&err);
  write_file (f3, "{nope");
  CHECK (ob_registry_find_credentials (&o, "ghcr.io", &u, &p, &err) < 0);
  CHECK (err && strstr (err->msg, "invalid JSON") != NULL);
  ob_error_free (&err);
  /* An explicit auth file that does not exist. */
  o.auth_file = "/nonexistent/auth.json";
  CHECK (ob_registry_find_credentials (&o, "ghcr.io", &u, &p, &err) < 0);
  CHECK (err && err->kind == OB_ERR_USAGE);
  ob_error_free (&err);
}

TEST (login_writes_auth_file)
{
  cleanup_free char *d = case_dir ("login");
  cleanup_free char *f = ob_xasprintf ("%s/sub/auth.json", d);
  cleanup_free char *data = NULL;
  struct ob_registry_opts o;
  char *u = NULL, *p = NULL;
  size_t len;
  struct stat st;
  ob_error_t err = NULL;

  clear_auth_env (d);
  ob_registry_opts_init (&o);
  o.auth_file = f;
  CHECK (ob_registry_login (&o, "127.0.0.1:5000", "bob", "pw", &err) == 0);
  CHECK (ob_registry_login (&o, "docker.io", "hub", "x:y", &err) == 0);
  CHECK (ob_registry_login (&o, "127.0.0.1:5000", "carol", "pw2", &err) == 0);
  CHECK (stat (f, &st) == 0 && (st.st_mode & 0777) == 0600);
  CHECK (ob_read_file_at (AT_FDCWD, f, &data, &len, &err) == 0);
  CHECK (data && strstr (data, "\"docker.io\"") != NULL);
  CHECK (data && strstr (data, "Y2Fyb2w6cHcy") != NULL); /* carol:pw2 */
  CHECK_INT (ob_registry_find_credentials (&o, "127.0.0.1:5000", &u, &p, &err), 1);
  CHECK_STR (u, "carol");
  CHECK_STR (p, "pw2");
  free (u);
  free (p);
  CHECK_INT (ob_registry_find_credentials (&o, "registry-1.docker.io", &u, &p, &err), 1);
  CHECK_STR (p, "x:y");
  free (u);
  free (p);
  /* Unrelated keys in the file survive. */
  write_file (f, "{\"credHelpers\":{\"x\":\"y\"},\"auths\":{\"a.io\":{\"auth\":\"eDp5\"}}}");
  CHECK (ob_registry_login (&o, "b.io", "u", "p", &err) == 0);
  free (data);
  data = NULL;
  CHECK (ob_read_file_at (AT_FDCWD, f, &data, &len, &err) == 0);
  CHECK (data && strstr (data, "credHelpers") && strstr (data, "a.io") && strstr (data, "b.io"));
  /* Default location: ${XDG_RUNTIME_DIR}/containers/auth.json */
  o.auth_file = NULL;
  CHECK (ob_registry_login (&o, "c.io", "u", "p", &err) == 0);
  {
    cleanup_free char *xf = ob_xasprintf ("%s/containers/auth.json", d);
    CHECK (access (xf, R_OK) == 0);
  }
  CHECK (ob_registry_login (&o, "c.io", "u:x", "p", &err) < 0);
  CHECK (err && err->kind == OB_ERR_USAGE);
  ob_error_free (&err);
}

TEST (registry_new_bad_options)
{
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  ob_error_t err = NULL;
  ob_registry_opts_init (&o);
  o.platform = "linux";
  CHECK (ob_registry_new (&o, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_USAGE && strstr (err->msg, "invalid platform"));
  ob_error_free (&err);
  o.platform = "linux/arm64/v8";
  o.cert_dir = "/nonexistent-certs";
  CHECK (ob_registry_new (&o, &r, &err) < 0);
  CHECK (err && err->kind == OB_ERR_USAGE && strstr (err->msg, "/nonexistent-certs"));
  ob_error_free (&err);
  o.cert_dir = NULL;
  CHECK (ob_registry_new (&o, &r, &err) == 0);
  ob_registry_free (r);
}

/* ---- integration helpers ---- */

static bool
have (const char *prog)
{
  cleanup_free char *cmd = ob_xasprintf ("command -v %s >/dev/null 2>&1", prog);
  return system (cmd) == 0;
}

static int
sh (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static int
sh (const char *fmt, ...)
{
  va_list ap;
  char *cmd;
  int st;
  va_start (ap, fmt);
  if (vasprintf (&cmd, fmt, ap) < 0)
    abort ();
  va_end (ap);
  st = system (cmd);
  if (st != 0)
    printf ("#   command failed (%d): %s\n", st, cmd);
  free (cmd);
  return st;
}

static char *
sh_out (const char *cmd)
{
  FILE *f = popen (cmd, "r");
  struct ob_buf b = { 0 };
  char buf[4096];
  size_t n;
  if (f == NULL)
    return NULL;
  while ((n = fread (buf, 1, sizeof buf, f)) > 0)
    ob_buf_add (&b, buf, n);
  pclose (f);
  ob_buf_addc (&b, '\0');
  while (b.len > 1 && (b.data[b.len - 2] == '\n' || b.data[b.len - 2] == ' '))
    b.data[--b.len - 1] = '\0';
  return ob_buf_steal (&b);
}

static int
free_port (void)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t l = sizeof a;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
  if (fd < 0 || bind (fd, (struct sockaddr *) &a, sizeof a) < 0
      || getsockname (fd, (struct sockaddr *) &a, &l) < 0)
    abort ();
  port = ntohs (a.sin_port);
  close (fd);
  return port;
}

static bool
port_open (int port)
{
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
                           .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = connect (fd, (struct sockaddr *) &a, sizeof a) == 0;
  close (fd);
  return ok;
}

static void
msleep (long ms)
{
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

static pid_t
spawn (const char *log, char *const argv[])
{
  pid_t pid = fork ();
  if (pid == 0)
    {
      int fd = open (log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int nul = open ("/dev/null", O_RDONLY);
      dup2 (nul, 0);
      dup2 (fd, 1);
      dup2 (fd, 2);
      setpgid (0, 0);
      execv (argv[0], argv);
      _exit (127);
    }
  return pid;
}

static void
stop (pid_t pid)
{
  if (pid > 0)
    {
      kill (pid, SIGTERM);
      waitpid (pid, NULL, 0);
    }
}

struct reg_server
{
  pid_t pid;
  int port;
  char *storage;
  char *hostport;
};

/* Start docker-registry on 127.0.0.1; extra is YAML appended (auth,
 * tls). */
static bool
registry_start (const char *dir, const char *auth_yaml, const char *tls_yaml, struct reg_server *s)
{
  cleanup_free char *cfg = ob_xasprintf ("%s/config.yml", dir);
  cleanup_free char *log = ob_xasprintf ("%s/registry.log", dir);
  cleanup_free char *yaml = NULL;
  s->port = free_port ();
  s->storage = ob_xasprintf ("%s/storage", dir);
  s->hostport = ob_xasprintf ("127.0.0.1:%d", s->port);
  yaml = ob_xasprintf ("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                       "storage:\n  filesystem:\n    rootdirectory: %s\n"
                       "http:\n  addr: 127.0.0.1:%d\n  secret: obuild-test\n%s%s",
                       s->storage, s->port, tls_yaml ? tls_yaml : "", auth_yaml ? auth_yaml : "");
  write_file (cfg, yaml);
  {
    char *argv[] = { "/usr/bin/docker-registry", "serve", cfg, NULL };
    s->pid = spawn (log, argv);
  }
  for (int i = 0; i < 200; i++)
    {
      if (port_open (s->port))
        return true;
      if (waitpid (s->pid, NULL, WNOHANG) == s->pid)
        break;
      msleep (50);
    }
  printf ("#   registry did not start, log:\n");
  sh ("sed 's/^/#   /' %s", log);
  s->pid = -1;
  return false;
}

static void
registry_stop (struct reg_server *s)
{
  stop (s->pid);
  s->pid = -1;
  free (s->storage);
  free (s->hostport);
}

/* A small OCI layout at dir/src with image "test:1": one gzip layer and a
 * config.  Fills the manifest descriptor. */
static bool
make_image (const char *dir, struct ob_descriptor *md)
{
  cleanup_free char *src = ob_xasprintf ("%s/src", dir);
  cleanup_free char *tar = ob_xasprintf ("%s/layer.tar", dir);
  cleanup_free char *tgz = NULL;
  cleanup_free char *scratch = ob_xasprintf ("%s/scratch", dir);
  cleanup_free char *layer = NULL;
  cleanup_free char *tardata = NULL;
  cleanup_free char *cfgtext = NULL;
  cleanup_free char *mtext = NULL;
  size_t tarlen, layerlen;
  struct ob_layout *l = NULL;
  struct ob_txn *t = NULL;
  ob_error_t err = NULL;
  struct ob_descriptor cfgd = { 0 }, ld = { 0 };
  char diff_id[OB_DIGEST_LEN];
  char *tags[] = { "test:1", NULL };
  json_t *cfg, *m;
  bool ok = false;

  if (sh ("mkdir -p %s/rootfs/etc %s && echo hello > %s/rootfs/etc/greeting && "
          "head -c 300000 /dev/urandom > %s/rootfs/blob && "
          "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf %s -C %s/rootfs . && "
          "gzip -n -c %s > %s.gz",
          dir, scratch, dir, dir, tar, dir, tar, tar)
      != 0)
    return false;
  tgz = ob_xasprintf ("%s.gz", tar);
  if (ob_read_file_at (AT_FDCWD, tar, &tardata, &tarlen, &err) < 0
      || ob_read_file_at (AT_FDCWD, tgz, &layer, &layerlen, &err) < 0)
    goto out;
  ob_sha256_digest (tardata, tarlen, diff_id);
  if (ob_layout_open (src, true, &l, &err) < 0 || ob_txn_begin (l, scratch, &t, &err) < 0)
    goto out;
  ld.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  ld.size = layerlen;
  if (ob_txn_blob_put (t, layer, layerlen, ld.digest, &err) < 0)
    goto out;
  cfg = ob_image_config_new ("linux", ob_image_host_arch (), ob_image_host_variant ());
  ob_image_config_add_diff_id (cfg, diff_id);
  ob_image_config_add_history (cfg, NULL, "test", NULL, false);
  cfgtext = ob_json_canonical (cfg);
  json_decref (cfg);
  cfgd.media_type = OB_MT_OCI_CONFIG;
  cfgd.size = strlen (cfgtext);
  if (ob_txn_blob_put (t, cfgtext, strlen (cfgtext), cfgd.digest, &err) < 0)
    goto out;
  m = ob_image_manifest_new (&cfgd, &ld, 1, NULL);
  mtext = ob_json_canonical (m);
  json_decref (m);
  md->media_type = ob_xstrdup (OB_MT_OCI_MANIFEST);
  md->size = strlen (mtext);
  if (ob_txn_blob_put (t, mtext, strlen (mtext), md->digest, &err) < 0
      || ob_txn_commit (t, md, tags, &err) < 0)
    goto out;
  ok = true;
out:
  if (err)
    printf ("#   make_image: %s\n", err->msg);
  ob_error_free (&err);
  ob_txn_free (t);
  ob_layout_close (l);
  return ok;
}

/* Pull ref into a fresh layout dir/NAME; returns the result, fills md/err. */
static int
pull_into (struct ob_registry *r, const char *dir, const char *name, const char *refstr,
           struct ob_descriptor *md, ob_error_t *err)
{
  cleanup_free char *path = ob_xasprintf ("%s/%s", dir, name);
  cleanup_free char *scratch = ob_xasprintf ("%s/scratch", dir);
  struct ob_layout *l = NULL;
  struct ob_txn *t = NULL;
  struct ob_ref *ref = NULL;
  char *tags[] = { "pulled:1", NULL };
  int ret = -1;

  mkdir (scratch, 0700);
  if (ob_ref_parse (refstr, &ref, err) < 0 || ob_layout_open (path, true, &l, err) < 0
      || ob_txn_begin (l, scratch, &t, err) < 0)
    goto out;
  if (ob_registry_pull (r, ref, t, md, err) < 0)
    goto out;
  if (ob_txn_commit (t, md, tags, err) < 0)
    goto out;
  /* The layout now has everything the manifest names. */
  {
    cleanup_free char *data = NULL;
    size_t len;
    struct ob_manifest *m = NULL;
    if (ob_layout_blob_read (l, md->digest, &data, &len, err) < 0
        || ob_image_manifest_parse (data, len, &m, err) < 0)
      goto out;
    CHECK (ob_layout_has_blob (l, m->config.digest));
    for (size_t i = 0; i < m->n_layers; i++)
      CHECK (ob_layout_has_blob (l, m->layers[i].digest));
    ob_manifest_free (m);
  }
  ret = 0;
out:
  ob_txn_free (t);
  ob_layout_close (l);
  ob_ref_free (ref);
  return ret;
}

static int
push_from (struct ob_registry *r, const char *dir, const struct ob_descriptor *md, const char *refstr,
           char digest[72], ob_error_t *err)
{
  cleanup_free char *path = ob_xasprintf ("%s/src", dir);
  struct ob_layout *l = NULL;
  struct ob_ref *ref = NULL;
  int ret = -1;
  if (ob_ref_parse (refstr, &ref, err) < 0 || ob_layout_open (path, false, &l, err) < 0)
    goto out;
  ret = ob_registry_push (r, l, md, ref, digest, err);
out:
  ob_layout_close (l);
  ob_ref_free (ref);
  return ret;
}

static void
collect_progress (void *data, const char *line)
{
  int *n = data;
  (*n)++;
}

/* ---- integration cases: plain HTTP ---- */

TEST (plain_http_pull_push)
{
  cleanup_free char *d = case_dir ("plain");
  struct reg_server s = { 0 };
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  char pushed[72];
  int lines = 0;

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  if (!registry_start (d, NULL, NULL, &s))
    {
      CHECK (0);
      return;
    }
  CHECK (sh ("skopeo copy -q --dest-tls-verify=false oci:%s/src:test:1 docker://%s/test:1 >/dev/null",
             d, s.hostport)
         == 0);
  ob_registry_opts_init (&o);
  o.progress = collect_progress;
  o.progress_data = &lines;
  CHECK (ob_registry_new (&o, &r, &err) == 0);

  /* By tag. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    CHECK (pull_into (r, d, "bytag", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    CHECK_STR (got.media_type, OB_MT_OCI_MANIFEST);
    CHECK_INT (got.size, src.size);
    ob_descriptor_clear (&got);
    CHECK (lines > 0);
  }
  /* By digest, and by tag+digest. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test@%s", s.hostport, src.digest);
    cleanup_free char *ref2 = ob_xasprintf ("%s/test:1@%s", s.hostport, src.digest);
    CHECK (pull_into (r, d, "bydigest", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
    /* Second pull into the same layout: blobs present, nothing fetched. */
    CHECK (pull_into (r, d, "bydigest", ref2, &got, &err) == 0);
    ob_error_free (&err);
    ob_descriptor_clear (&got);
  }
  /* A wrong pinned digest is refused. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test@sha256:" D64, s.hostport);
    CHECK (pull_into (r, d, "wrong", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "404"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
  }
  /* A missing tag. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test:nope", s.hostport);
    cleanup_free char *want = ob_xasprintf ("registry %s: GET /v2/test/manifests/nope: 404 manifest unknown",
                                            s.hostport);
    CHECK (pull_into (r, d, "missing", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY);
    if (err && strcmp (err->msg, want) != 0)
      printf ("#   got `%s`\n#   want `%s`\n", err->msg, want);
    CHECK (err && strcmp (err->msg, want) == 0);
    ob_error_free (&err);
  }
  /* A missing repository. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/nothere/x:1", s.hostport);
    CHECK (pull_into (r, d, "missing2", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "404"));
    ob_error_free (&err);
  }
  /* Push under another name; skopeo sees the same digest. */
  {
    cleanup_free char *ref = ob_xasprintf ("%s/other/name:v2", s.hostport);
    cleanup_free char *cmd = ob_xasprintf ("skopeo inspect --tls-verify=false --format '{{.Digest}}' "
                                           "docker://%s/other/name:v2 2>&1",
                                           s.hostport);
    cleanup_free char *out = NULL;
    CHECK (push_from (r, d, &src, ref, pushed, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (pushed, src.digest);
    out = sh_out (cmd);
    CHECK_STR (out, src.digest);
    /* Again: every blob is there already (HEAD). */
    CHECK (push_from (r, d, &src, ref, pushed, &err) == 0);
    ob_error_free (&err);
    CHECK_STR (pushed, src.digest);
    /* Pull what we pushed. */
    CHECK (pull_into (r, d, "pushed", ref, &got, &err) == 0);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
  }
  ob_registry_free (r);
  registry_stop (&s);
  ob_descriptor_clear (&src);
}

TEST (index_platform_choice)
{
  cleanup_free char *d = case_dir ("index");
  struct reg_server s = { 0 };
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  cleanup_free char *idx = NULL;

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  if (!registry_start (d, NULL, NULL, &s))
    {
      CHECK (0);
      return;
    }
  /* Push the image by digest, then an index naming it for the host and
   * (the registry checks that entries exist) again for s390x. */
  ob_registry_opts_init (&o);
  CHECK (ob_registry_new (&o, &r, &err) == 0);
  {
    cleanup_free char *ref = ob_xasprintf ("%s/multi@%s", s.hostport, src.digest);
    char pushed[72];
    CHECK (push_from (r, d, &src, ref, pushed, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
  }
  idx = ob_xasprintf ("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
                      "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld,"
                      "\"platform\":{\"os\":\"linux\",\"architecture\":\"%s\"%s%s%s}},"
                      "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld,"
                      "\"platform\":{\"os\":\"linux\",\"architecture\":\"s390x\"}}]}",
                      OB_MT_OCI_INDEX, OB_MT_OCI_MANIFEST, src.digest, (long long) src.size,
                      ob_image_host_arch (), ob_image_host_variant () ? ",\"variant\":\"" : "",
                      ob_image_host_variant () ? ob_image_host_variant () : "",
                      ob_image_host_variant () ? "\"" : "", OB_MT_OCI_MANIFEST, src.digest,
                      (long long) src.size);
  {
    cleanup_free char *f = ob_xasprintf ("%s/index.json.body", d);
    write_file (f, idx);
    CHECK (sh ("curl -sf -X PUT -H 'Content-Type: %s' --data-binary @%s http://%s/v2/multi/manifests/all",
               OB_MT_OCI_INDEX, f, s.hostport)
           == 0);
  }
  {
    cleanup_free char *ref = ob_xasprintf ("%s/multi:all", s.hostport);
    CHECK (pull_into (r, d, "host", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
  }
  ob_registry_free (r);
  /* A platform the index lacks: the error lists what there is. */
  o.platform = "linux/ppc64le";
  CHECK (ob_registry_new (&o, &r, &err) == 0);
  {
    cleanup_free char *ref = ob_xasprintf ("%s/multi:all", s.hostport);
    CHECK (pull_into (r, d, "ppc", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "no image for platform linux/ppc64le")
           && strstr (err->msg, "linux/s390x"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
  }
  ob_registry_free (r);
  registry_stop (&s);
  ob_descriptor_clear (&src);
}

TEST (corrupted_blob)
{
  cleanup_free char *d = case_dir ("corrupt");
  struct reg_server s = { 0 };
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  cleanup_free char *layer = NULL;

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  if (!registry_start (d, NULL, NULL, &s))
    {
      CHECK (0);
      return;
    }
  CHECK (sh ("skopeo copy -q --dest-tls-verify=false oci:%s/src:test:1 docker://%s/test:1 >/dev/null",
             d, s.hostport)
         == 0);
  /* Flip bytes in the middle of the biggest blob, keeping its size. */
  {
    cleanup_free char *cmd = ob_xasprintf ("ls -S %s/docker/registry/v2/blobs/sha256/*/*/data | head -1",
                                           s.storage);
    layer = sh_out (cmd);
  }
  CHECK (layer && *layer);
  CHECK (sh ("printf XXXXXXXX | dd of=%s bs=1 seek=1000 conv=notrunc status=none", layer) == 0);
  CHECK (ob_registry_new (NULL, &r, &err) == 0);
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    CHECK (pull_into (r, d, "dst", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_IMAGE && ob_str_has_prefix (err->msg, "blob sha256:")
           && strstr (err->msg, ": content has digest sha256:")
           && ob_str_has_suffix (err->msg, "(corrupted download)"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
  }
  /* Nothing of the failed pull reached the layout. */
  {
    cleanup_free char *cmd = ob_xasprintf ("ls %s/dst/blobs/sha256 | wc -l", d);
    cleanup_free char *n = sh_out (cmd);
    CHECK_STR (n, "0");
  }
  ob_registry_free (r);
  registry_stop (&s);
  ob_descriptor_clear (&src);
}

TEST (unreachable)
{
  struct ob_registry *r = NULL;
  struct ob_ref *ref = NULL;
  ob_error_t err = NULL;
  cleanup_free char *d = case_dir ("unreach");
  cleanup_free char *refs = ob_xasprintf ("127.0.0.1:%d/x:1", free_port ());
  struct ob_descriptor got = { 0 };

  CHECK (ob_registry_new (NULL, &r, &err) == 0);
  CHECK (pull_into (r, d, "dst", refs, &got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "cannot reach registry 127.0.0.1:")
         && strstr (err->msg, "Connection refused"));
  if (err)
    printf ("#   (expected) %s\n", err->msg);
  ob_error_free (&err);
  CHECK (pull_into (r, d, "dst2", "foo.invalid/x:1", &got, &err) < 0);
  CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "cannot reach registry foo.invalid: ")
         && strstr (err->msg, "resolve"));
  if (err)
    printf ("#   (expected) %s\n", err->msg);
  ob_error_free (&err);
  ob_ref_free (ref);
  ob_registry_free (r);
}

/* ---- redirects, retries, credentials to another origin ---- */

TEST (redirect_drops_credentials)
{
  cleanup_free char *d = case_dir ("redirect");
  cleanup_free char *portfile = ob_xasprintf ("%s/port", d);
  cleanup_free char *log = ob_xasprintf ("%s/server.log", d);
  cleanup_free char *script = ob_xasprintf ("%s/redirect_server.py", FIXTURES);
  cleanup_free char *layout = ob_xasprintf ("%s/src", d);
  cleanup_free char *authf = ob_xasprintf ("%s/auth.json", d);
  cleanup_free char *port = NULL;
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  pid_t pid;

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  {
    char *argv[] = { "/usr/bin/python3", script, portfile, layout, src.digest, "u", "p w", NULL };
    pid = spawn (log, argv);
  }
  for (int i = 0; i < 100 && access (portfile, R_OK) != 0; i++)
    msleep (50);
  {
    cleanup_free char *cmd = ob_xasprintf ("cat %s 2>/dev/null", portfile);
    port = sh_out (cmd);
  }
  if (port == NULL || *port == '\0')
    {
      sh ("sed 's/^/#   /' %s", log);
      CHECK (0);
      stop (pid);
      return;
    }
  ob_registry_opts_init (&o);
  o.auth_file = authf;
  {
    cleanup_free char *host = ob_xasprintf ("127.0.0.1:%s", port);
    cleanup_free char *ref = ob_xasprintf ("%s/img:1", host);
    CHECK (ob_registry_login (&o, host, "u", "p w", &err) == 0);
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "dst", ref, &got, &err) == 0);
    if (err)
      {
        printf ("#   %s\n", err->msg);
        sh ("sed 's/^/#   /' %s", log);
      }
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
    /* Each blob: 429 once, then 307 to the storage host. */
    CHECK (sh ("test $(grep -c '\" 429 ' %s) -eq 2 && test $(grep -c '/storage/.*\" 200 ' %s) -eq 2",
               log, log)
           == 0);
    ob_registry_free (r);
  }
  stop (pid);
  ob_descriptor_clear (&src);
}

/* ---- TLS + htpasswd ---- */

TEST (tls_htpasswd)
{
  cleanup_free char *d = case_dir ("tls");
  cleanup_free char *certs = ob_xasprintf ("%s/certs", d);
  cleanup_free char *cadir = ob_xasprintf ("%s/ca", d);
  cleanup_free char *authf = ob_xasprintf ("%s/auth.json", d);
  cleanup_free char *tls = NULL;
  cleanup_free char *auth = NULL;
  struct reg_server s = { 0 };
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  char pushed[72];

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  CHECK (sh ("sh %s/mkcerts.sh %s", FIXTURES, certs) == 0);
  CHECK (sh ("mkdir -p %s && cp %s/ca.crt %s/ && htpasswd -Bbn alice 's3cret:x' > %s/htpasswd",
             cadir, certs, cadir, d)
         == 0);
  tls = ob_xasprintf ("  tls:\n    certificate: %s/server.crt\n    key: %s/server.key\n", certs, certs);
  auth = ob_xasprintf ("auth:\n  htpasswd:\n    realm: obuild-test\n    path: %s/htpasswd\n", d);
  if (!registry_start (d, auth, tls, &s))
    {
      CHECK (0);
      return;
    }
  CHECK (sh ("skopeo copy -q --dest-cert-dir=%s --dest-creds='alice:s3cret:x' oci:%s/src:test:1 "
             "docker://%s/test:1 >/dev/null",
             cadir, d, s.hostport)
         == 0);

  /* Credentials in an auth file, CA from cert_dir: pull and push work. */
  ob_registry_opts_init (&o);
  o.cert_dir = cadir;
  o.auth_file = authf;
  CHECK (ob_registry_login (&o, s.hostport, "alice", "s3cret:x", &err) == 0);
  CHECK (ob_registry_new (&o, &r, &err) == 0);
  {
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    cleanup_free char *ref2 = ob_xasprintf ("%s/copy:2", s.hostport);
    cleanup_free char *cmd = ob_xasprintf ("skopeo inspect --cert-dir=%s --creds='alice:s3cret:x' "
                                           "--format '{{.Digest}}' docker://%s/copy:2 2>&1",
                                           cadir, s.hostport);
    cleanup_free char *out = NULL;
    CHECK (pull_into (r, d, "dst", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
    CHECK (push_from (r, d, &src, ref2, pushed, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    out = sh_out (cmd);
    CHECK_STR (out, src.digest);
  }
  ob_registry_free (r);

  /* No credentials: a 401 that says so. */
  {
    cleanup_free char *empty = ob_xasprintf ("%s/empty.json", d);
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    write_file (empty, "{}");
    o.auth_file = empty;
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "anon", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "401"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
    ob_registry_free (r);
  }
  /* Wrong password. */
  {
    cleanup_free char *bad = ob_xasprintf ("%s/bad.json", d);
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    o.auth_file = bad;
    CHECK (ob_registry_login (&o, s.hostport, "alice", "wrong", &err) == 0);
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "bad", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "401"));
    ob_error_free (&err);
    ob_registry_free (r);
  }
  /* Without the CA the certificate is refused; tls_verify=false accepts it. */
  {
    /* A cert_dir without our CA (without any cert_dir, 127.0.0.1 would be
     * spoken to in plain HTTP). */
    cleanup_free char *other = ob_xasprintf ("%s/otherca", d);
    cleanup_free char *ref = ob_xasprintf ("%s/test:1", s.hostport);
    CHECK (sh ("mkdir -p %s && cp %s/token.crt %s/unrelated.crt", other, certs, other) == 0);
    o.cert_dir = other;
    o.auth_file = authf;
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "noca", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "cannot reach registry")
           && (strstr (err->msg, "certificate") || strstr (err->msg, "SSL")));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
    ob_registry_free (r);
    o.tls_verify = false;
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "noverify", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    ob_descriptor_clear (&got);
    ob_registry_free (r);
  }
  registry_stop (&s);
  ob_descriptor_clear (&src);
}

/* ---- token auth ---- */

TEST (token_auth)
{
  cleanup_free char *d = case_dir ("token");
  cleanup_free char *certs = ob_xasprintf ("%s/certs", d);
  cleanup_free char *portfile = ob_xasprintf ("%s/token.port", d);
  cleanup_free char *tlog = ob_xasprintf ("%s/token.log", d);
  cleanup_free char *keyf = NULL;
  cleanup_free char *auth = NULL;
  cleanup_free char *authf = ob_xasprintf ("%s/auth.json", d);
  cleanup_free char *tport = NULL;
  cleanup_free char *script = ob_xasprintf ("%s/token_server.py", FIXTURES);
  struct reg_server s = { 0 };
  struct ob_registry_opts o;
  struct ob_registry *r = NULL;
  struct ob_descriptor src = { 0 }, got = { 0 };
  ob_error_t err = NULL;
  pid_t tpid;
  char pushed[72];

  clear_auth_env (d);
  CHECK (make_image (d, &src));
  CHECK (sh ("sh %s/mkcerts.sh %s", FIXTURES, certs) == 0);
  keyf = ob_xasprintf ("%s/token.key", certs);
  {
    char *argv[] = { "/usr/bin/python3", script, portfile, keyf, "obuild-test-issuer", "tok", "en:pw", NULL };
    tpid = spawn (tlog, argv);
  }
  for (int i = 0; i < 100 && access (portfile, R_OK) != 0; i++)
    msleep (50);
  {
    cleanup_free char *cmd = ob_xasprintf ("cat %s 2>/dev/null", portfile);
    tport = sh_out (cmd);
  }
  if (tport == NULL || *tport == '\0')
    {
      sh ("sed 's/^/#   /' %s", tlog);
      CHECK (0);
      stop (tpid);
      return;
    }
  auth = ob_xasprintf ("auth:\n  token:\n    realm: http://127.0.0.1:%s/token\n    service: obuild-test\n"
                       "    issuer: obuild-test-issuer\n    rootcertbundle: %s/token.crt\n",
                       tport, certs);
  if (!registry_start (d, auth, NULL, &s))
    {
      CHECK (0);
      stop (tpid);
      return;
    }
  ob_registry_opts_init (&o);
  o.auth_file = authf;
  CHECK (ob_registry_login (&o, s.hostport, "tok", "en:pw", &err) == 0);
  CHECK (ob_registry_new (&o, &r, &err) == 0);
  {
    cleanup_free char *ref = ob_xasprintf ("%s/tok/img:1", s.hostport);
    cleanup_free char *cmd = ob_xasprintf ("skopeo inspect --tls-verify=false --creds='tok:en:pw' "
                                           "--format '{{.Digest}}' docker://%s/tok/img:1 2>&1",
                                           s.hostport);
    cleanup_free char *out = NULL;
    CHECK (push_from (r, d, &src, ref, pushed, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (pushed, src.digest);
    out = sh_out (cmd);
    CHECK_STR (out, src.digest);
    CHECK (pull_into (r, d, "dst", ref, &got, &err) == 0);
    if (err)
      printf ("#   %s\n", err->msg);
    ob_error_free (&err);
    CHECK_STR (got.digest, src.digest);
    ob_descriptor_clear (&got);
  }
  ob_registry_free (r);
  /* Anonymous: the token grants nothing, the registry says 401. */
  {
    cleanup_free char *empty = ob_xasprintf ("%s/empty.json", d);
    cleanup_free char *ref = ob_xasprintf ("%s/tok/img:1", s.hostport);
    write_file (empty, "{}");
    o.auth_file = empty;
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "anon", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "401"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
    ob_registry_free (r);
  }
  /* Bad password: the token server refuses. */
  {
    cleanup_free char *bad = ob_xasprintf ("%s/bad.json", d);
    cleanup_free char *ref = ob_xasprintf ("%s/tok/img:1", s.hostport);
    o.auth_file = bad;
    CHECK (ob_registry_login (&o, s.hostport, "tok", "nope", &err) == 0);
    CHECK (ob_registry_new (&o, &r, &err) == 0);
    CHECK (pull_into (r, d, "bad", ref, &got, &err) < 0);
    CHECK (err && err->kind == OB_ERR_REGISTRY && strstr (err->msg, "token server 127.0.0.1:")
           && strstr (err->msg, "GET /token: 401 bad credentials"));
    if (err)
      printf ("#   (expected) %s\n", err->msg);
    ob_error_free (&err);
    ob_registry_free (r);
  }
  registry_stop (&s);
  stop (tpid);
  ob_descriptor_clear (&src);
}

int
main (void)
{
  ob_error_t err = NULL;
  cleanup_free char *saved_home = ob_xstrdup (getenv ("HOME"));
  bool reg, skopeo, openssl, htpasswd, py, jwt;

  if (ob_mkdtemp_in (getenv ("TMPDIR") ? getenv ("TMPDIR") : "/tmp", "test_registry-", &tmp_root, &err) < 0)
    {
      printf ("Bail out! %s\n", err->msg);
      return 1;
    }
  /* Proxies would intercept 127.0.0.1 only if configured so; be sure. */
  setenv ("NO_PROXY", "127.0.0.1,localhost,::1", 1);
  setenv ("no_proxy", "127.0.0.1,localhost,::1", 1);

  RUN (ref_parse_table);
  RUN (challenge_bearer);
  RUN (challenge_basic_and_multiple);
  RUN (challenge_bad);
  RUN (credentials_lookup);
  RUN (login_writes_auth_file);
  RUN (registry_new_bad_options);

  reg = access ("/usr/bin/docker-registry", X_OK) == 0;
  skopeo = have ("skopeo");
  openssl = have ("openssl");
  htpasswd = have ("htpasswd");
  py = access ("/usr/bin/python3", X_OK) == 0;
  jwt = system ("/usr/bin/python3 -c 'import jwt, cryptography' >/dev/null 2>&1") == 0;
  if (reg && skopeo && have ("curl"))
    {
      RUN (plain_http_pull_push);
      RUN (index_platform_choice);
      RUN (corrupted_blob);
    }
  else
    {
      SKIP (plain_http_pull_push, "docker-registry, skopeo or curl missing");
      SKIP (index_platform_choice, "docker-registry, skopeo or curl missing");
      SKIP (corrupted_blob, "docker-registry, skopeo or curl missing");
    }
  RUN (unreachable);
  if (py)
    RUN (redirect_drops_credentials);
  else
    SKIP (redirect_drops_credentials, "python3 missing");
  if (reg && skopeo && openssl && htpasswd)
    RUN (tls_htpasswd);
  else
    SKIP (tls_htpasswd, "docker-registry, skopeo, openssl or htpasswd (apache2-utils) missing");
  if (reg && skopeo && openssl && jwt)
    RUN (token_auth);
  else
    SKIP (token_auth, "docker-registry, skopeo, openssl or python3-jwt missing");

  if (saved_home)
    setenv ("HOME", saved_home, 1);
  if (getenv ("KEEP_TMP") == NULL)
    ob_rm_rf_at (AT_FDCWD, tmp_root, &err);
  ob_error_free (&err);
  free (tmp_root);
  TAP_DONE ();
}
