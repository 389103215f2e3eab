/* build: the step executors of FROM and of the instructions that change
 * only the image's config (ENV, LABEL, ARG, CMD, ENTRYPOINT, SHELL, USER,
 * EXPOSE, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER).
 * They use the shared state (build_state.c) and nothing above it. */
#include "config.h"
#include "build_priv.h"
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Predefined ARGs usable without declaration; not recorded in history. */
static const char *const proxy_args[] = { "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                          "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                          "ALL_PROXY",  "all_proxy",  NULL };

/* ---- FROM ---- */

static int
parse_platform (const char *p, char **os, char **arch, char **variant, ob_error_t *err)
{
  cleanup_free char *c = ob_xstrdup (p);
  char *a = strchr (c, '/'), *v;
  if (a == NULL)
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid platform `%s`: expected os/arch[/variant]", p);
  *a++ = '\0';
  v = strchr (a, '/');
  if (v)
    *v++ = '\0';
  if (*c == '\0' || *a == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid platform `%s`: expected os/arch[/variant]", p);
  *os = ob_xstrdup (c);
  *arch = ob_xstrdup (a);
  *variant = v && *v ? ob_xstrdup (v) : NULL;
  return 0;
}



int
ob_build_from (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct lookup l = { b, NULL };
  cleanup_free char *image = NULL;
  const struct ob_flag *pf = ob_instr_flag (in, "platform");
  cleanup_free char *fplat = NULL;
  const char *platform;
  struct stage *src;

  if (ob_dockerfile_word (in->from_image, b->df->escape, ob_build_lookup, &l, &image, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (*image == '\0')
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "FROM: empty image name after expansion of `%s`",
                                 in->from_image);
  src = ob_build_find_stage (b, image, s->index);
  if (src && (src->name == NULL || strcasecmp (src->name, image) != 0))
    src = NULL; /* FROM takes stage names, not indexes */
  /* the stage's platform: FROM --platform (FROM --platform=$BUILDPLATFORM
   * runs natively in a cross build), else the build's */
  if (pf && pf->value)
    {
      cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
      if (ob_dockerfile_word (pf->value, b->df->escape, ob_build_lookup, &l, &fplat, err) < 0
          || parse_platform (fplat, &os, &arch, &variant, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
    }
  platform = fplat ? fplat : b->o->source.registry.platform;
  if (strcmp (image, "scratch") == 0)
    {
      cleanup_free char *os = NULL, *arch = NULL, *variant = NULL;
      if (platform && parse_platform (platform, &os, &arch, &variant, err) < 0)
        return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
      s->config = ob_image_config_new (os ? os : "linux", arch ? arch : ob_image_host_arch (),
                                       arch ? variant : ob_image_host_variant ());
    }
  else if (src)
    {
      /* the copy holds again what the Dockerfile put in src */
      if (ob_build_account (b, s, in, src->df_bytes, err) < 0)
        return -1;
      s->config = json_deep_copy (src->config);
      for (size_t i = 0; i < src->n_layers; i++)
        {
          ob_build_stage_add_layer (s, &src->layers[i]);
          s->layer_dirs[i] = src->layer_dirs[i] ? ob_xstrdup (src->layer_dirs[i]) : NULL;
        }
      s->base_name = src->base_name ? ob_xstrdup (src->base_name) : NULL;
      s->base_digest = src->base_digest ? ob_xstrdup (src->base_digest) : NULL;
      s->n_hits = src->n_hits;
      s->n_misses = src->n_misses;
      s->hit_created = src->hit_created ? ob_xstrdup (src->hit_created) : NULL;
    }
  else if (ob_build_load_image_platform (b, s, image, platform, err) < 0)
    {
      cleanup_free char *norm = NULL;
      ob_error_t nerr = NULL;
      /* an invalid reference written in the Dockerfile is a Dockerfile
       * error (3), not a usage error of the command line */
      if ((*err)->kind == OB_ERR_USAGE && ob_image_ref_normalize (image, &norm, &nerr) < 0)
        ob_error_set_kind (err, OB_ERR_DOCKERFILE);
      ob_error_free (&nerr);
      {
        /* the source module names the image already: once is enough */
        size_t n = strlen (image);
        char *m = (*err)->msg;
        if (strncmp (m, image, n) == 0 && m[n] == ':' && m[n + 1] == ' ')
          memmove (m, m + n + 2, strlen (m + n + 2) + 1);
      }
      return ob_error_wrap (err, "%s:%d: FROM %s", b->dfname, in->line, image);
    }

  ob_build_env_forget (s); /* a new config */
  if (ob_build_env_lookup (s, "PATH") == NULL)
    ob_build_env_set (s, "PATH", DEFAULT_PATH + 5);

  /* the layers this build did not make: FROM <stage> inherits its base's */
  s->n_base_layers = src ? src->n_base_layers : s->n_layers;
  s->n_base_history = src ? src->n_base_history : json_array_size (json_object_get (s->config, "history"));

  /* the root of the stage's cache keys: what its filesystem starts from */
  {
    struct ob_sha256 *h = ob_sha256_new ();
    ob_build_cache_add (h, "FROM");
    /* a step cached for one platform is never another's, whatever the
     * base (an image without an index is the same bytes for both) */
    if (platform)
      ob_build_cache_add (h, platform);
    if (src)
      ob_build_cache_add (h, src->cache_key);
    else if (s->base_digest)
      ob_build_cache_add (h, s->base_digest);
    else
      {
        ob_build_cache_add (h, json_string_value (json_object_get (s->config, "os")));
        ob_build_cache_add (h, json_string_value (json_object_get (s->config, "architecture")));
      }
    ob_sha256_final (h, s->cache_key);
  }

  /* the base's ONBUILD triggers are the scheduler's to run next
   * (ob_build_take_onbuild); the image built here does not keep them */
  return 0;
}

json_t *
ob_build_take_onbuild (struct stage *s)
{
  json_t *onbuild = json_incref (json_object_get (ob_image_config_runtime (s->config), "OnBuild"));
  json_object_del (ob_image_config_runtime (s->config), "OnBuild");
  if (!json_is_array (onbuild))
    {
      json_decref (onbuild);
      return NULL;
    }
  return onbuild;
}

/* ---- metadata instructions ---- */


int
ob_build_kv (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct ob_buf hist = { 0 };
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_strv char **keys = NULL;
  cleanup_strv char **vals = NULL;
  size_t n_keys = 0, n_vals = 0;
  /* as Docker: every value is expanded with what was set before this
   * instruction (ENV A=1 B=$A gives B the previous A), then all are set */
  for (size_t i = 0; i < in->n_kvs; i++)
    {
      char *k = NULL, *v = NULL;
      if (ob_build_word (b, s, in, in->kvs[i].key, &k, err) < 0)
        return -1;
      if (ob_build_word (b, s, in, in->kvs[i].value ? in->kvs[i].value : "", &v, err) < 0)
        {
          free (k);
          return -1;
        }
      ob_strv_push (&keys, &n_keys, k);
      ob_strv_push (&vals, &n_vals, v);
      if (*k == '\0')
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s names must not be empty",
                                     ob_instr_kind_name (in->kind));
    }
  ob_buf_adds (&hist, in->kind == OB_I_ENV ? "ENV" : "LABEL");
  for (size_t i = 0; keys && keys[i]; i++)
    {
      if (in->kind == OB_I_ENV)
        ob_build_env_set (s, keys[i], vals[i]);
      else
        {
          json_t *labels = json_object_get (rt, "Labels");
          if (!json_is_object (labels))
            {
              labels = json_object ();
              json_object_set_new (rt, "Labels", labels);
            }
          json_object_set_new (labels, keys[i], json_string (vals[i]));
        }
      ob_buf_addc (&hist, ' ');
      ob_buf_adds (&hist, keys[i]);
      ob_buf_addc (&hist, '=');
      ob_buf_adds (&hist, vals[i]);
    }
  ob_build_history (b, s, hist.data, true);
  ob_buf_free (&hist);
  return 0;
}

bool
ob_build_is_proxy_arg (const char *k)
{
  for (size_t i = 0; proxy_args[i]; i++)
    if (strcmp (proxy_args[i], k) == 0)
      return true;
  return false;
}


/* Room for element n of an array of n: doubling at powers of two (one
 * realloc per ARG copied the arrays each time for 100,000 ARGs). */
static void
grow_strs (char ***v, size_t n)
{
  if (n == 0 || (n & (n - 1)) == 0)
    *v = ob_xrealloc (*v, (n ? 2 * n : 1) * sizeof (char *));
}

/* The automatic platform ARGs: BUILD* describe this machine, TARGET* the
 * --platform of the build (this machine without it), as in BuildKit. */
static char *
platform_arg (struct build *b, const char *name)
{
  const char *prefixes[] = { "TARGET", "BUILD" };
  for (size_t i = 0; i < 2; i++)
    {
      const char *os = "linux", *arch = ob_image_host_arch (), *var = ob_image_host_variant ();
      cleanup_free char *pos = NULL, *parch = NULL, *pvar = NULL;
      const char *want = b->o->source.registry.platform;
      size_t pl = strlen (prefixes[i]);
      if (strncmp (name, prefixes[i], pl) != 0)
        continue;
      const char *rest = name + pl;
      if (i == 0 && want)
        {
          ob_error_t perr = NULL;
          if (parse_platform (want, &pos, &parch, &pvar, &perr) == 0)
            {
              os = pos;
              arch = parch;
              var = pvar;
            }
          ob_error_free (&perr);
        }
      if (strcmp (rest, "PLATFORM") == 0)
        return var ? ob_xasprintf ("%s/%s/%s", os, arch, var) : ob_xasprintf ("%s/%s", os, arch);
      if (strcmp (rest, "OS") == 0)
        return ob_xstrdup (os);
      if (strcmp (rest, "ARCH") == 0)
        return ob_xstrdup (arch);
      if (strcmp (rest, "VARIANT") == 0)
        return ob_xstrdup (var ? var : "");
    }
  return NULL;
}

/* BuildKit predefines the platform ARGs in the global scope: FROM lines
 * use them undeclared (FROM --platform=$BUILDPLATFORM, FROM s-$TARGETOS);
 * a stage still sees them only after `ARG NAME`. */
void
ob_build_predefine_platform_args (struct build *b)
{
  static const char *const names[]
      = { "BUILDPLATFORM",  "BUILDOS",  "BUILDARCH",  "BUILDVARIANT",
          "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT" };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    {
      grow_strs (&b->meta_keys, b->n_meta);
      grow_strs (&b->meta_vals, b->n_meta);
      ob_build_index_put (&b->meta_index, names[i], b->n_meta);
      ob_build_index_put (&b->meta_set_index, names[i], b->n_meta);
      b->meta_keys[b->n_meta] = ob_xstrdup (names[i]);
      b->meta_vals[b->n_meta] = platform_arg (b, names[i]);
      b->n_meta++;
    }
}

int
ob_build_declare_arg (struct build *b, struct stage *s, const struct ob_instr *in, const struct ob_kv *kv,
             ob_error_t *err)
{
  cleanup_free char *key = NULL;
  char *val = NULL;
  const char *given;
  bool found;
  struct lookup l = { b, s };

  if (ob_dockerfile_word (kv->key, b->df->escape, ob_build_lookup, &l, &key, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (*key == '\0')
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "ARG names must not be empty");
  if (kv->value && ob_dockerfile_word (kv->value, b->df->escape, ob_build_lookup, &l, &val, err) < 0)
    return ob_error_wrap (err, "%s:%d", b->dfname, in->line);
  if (ob_build_account (b, s, in, strlen (key) + (val ? strlen (val) : 0), err) < 0)
    {
      free (val);
      return -1;
    }
  given = ob_build_arg_value (b, key, &found);
  if (found)
    {
      ob_build_arg_mark_used (b, key);
      if (given && !ob_dockerfile_is_utf8 (given, strlen (given)))
        {
          free (val);
          /* `--build-arg K` takes the value from the environment */
          return ob_error_make (err, OB_ERR_USAGE, 0, "%s:%d: --build-arg %s: invalid UTF-8 in the value",
                                b->dfname, in->line, key);
        }
      if (given)
        {
          free (val);
          val = ob_xstrdup (given);
        }
    }
  if (val == NULL && s == NULL)
    {
      /* global scope: automatic platform args have values */
      val = platform_arg (b, key);
    }
  else if (val == NULL)
    {
      /* inside a stage, an ARG without default inherits the global value */
      long i = ob_build_index_get (b->meta_set_index, key);
      if (i >= 0)
        val = ob_xstrdup (b->meta_vals[i]);
      if (val == NULL)
        val = platform_arg (b, key);
    }
  if (s == NULL)
    {
      grow_strs (&b->meta_keys, b->n_meta);
      grow_strs (&b->meta_vals, b->n_meta);
      ob_build_index_put (&b->meta_index, key, b->n_meta);
      if (val)
        ob_build_index_put (&b->meta_set_index, key, b->n_meta);
      b->meta_keys[b->n_meta] = steal_pointer (&key);
      b->meta_vals[b->n_meta] = val;
      b->n_meta++;
    }
  else
    {
      grow_strs (&s->arg_keys, s->n_args);
      grow_strs (&s->arg_vals, s->n_args);
      /* the name means its last declaration with a value: `ARG x` given
       * no value leaves an earlier `ARG x=1` in effect (BuildKit adds an
       * ARG to the step's environment only when it has a value) */
      long prev = ob_build_index_get (s->arg_index, key);
      if (val || prev < 0 || s->arg_vals[prev] == NULL)
        ob_build_index_put (&s->arg_index, key, s->n_args);
      s->arg_keys[s->n_args] = steal_pointer (&key);
      s->arg_vals[s->n_args] = val;
      s->n_args++;
    }
  return 0;
}

int
ob_build_arg (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  struct ob_buf hist = { 0 };
  ob_buf_adds (&hist, "ARG");
  for (size_t i = 0; i < in->n_kvs; i++)
    {
      if (ob_build_declare_arg (b, s, in, &in->kvs[i], err) < 0)
        {
          ob_buf_free (&hist);
          return -1;
        }
      ob_buf_addc (&hist, ' ');
      ob_buf_adds (&hist, s->arg_keys[s->n_args - 1]);
      if (s->arg_vals[s->n_args - 1])
        {
          ob_buf_addc (&hist, '=');
          ob_buf_adds (&hist, s->arg_vals[s->n_args - 1]);
        }
    }
  ob_build_history (b, s, hist.data, true);
  ob_buf_free (&hist);
  return 0;
}

/* CMD, ENTRYPOINT, SHELL and HEALTHCHECK's command as a JSON array. */
static json_t *
command_array (struct stage *s, const struct ob_instr *in, bool shell_prefix)
{
  json_t *a = json_array ();
  if (in->json)
    {
      for (size_t i = 0; i < in->n_args; i++)
        json_array_append_new (a, json_string (in->args[i]));
      return a;
    }
  if (shell_prefix)
    {
      json_t *sh = json_object_get (ob_image_config_runtime (s->config), "Shell");
      if (json_is_array (sh) && json_array_size (sh) > 0)
        json_array_extend (a, sh);
      else
        {
          json_array_append_new (a, json_string ("/bin/sh"));
          json_array_append_new (a, json_string ("-c"));
        }
    }
  json_array_append_new (a, json_string (in->rest ? in->rest : ""));
  return a;
}

static bool
valid_signal (const char *s)
{
  static const char *const names[]
      = { "HUP",  "INT",    "QUIT",  "ILL",  "TRAP", "ABRT",   "IOT",  "BUS",  "FPE",   "KILL", "USR1",
          "SEGV", "USR2",   "PIPE",  "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP",  "TSTP", "TTIN",
          "TTOU", "URG",    "XCPU",  "XFSZ", "VTALRM", "PROF", "WINCH", "IO",  "POLL",  "PWR",  "SYS",
          NULL };
  char *end;
  long n;
  if (*s == '\0')
    return false;
  n = strtol (s, &end, 10);
  if (*end == '\0')
    return n > 0 && n <= 64;
  if (strncasecmp (s, "SIG", 3) == 0)
    s += 3;
  if (strncasecmp (s, "RTMIN", 5) == 0 || strncasecmp (s, "RTMAX", 5) == 0)
    return true;
  for (size_t i = 0; names[i]; i++)
    if (strcasecmp (s, names[i]) == 0)
      return true;
  return false;
}

int
ob_build_parse_duration (const char *s, int64_t *out, ob_error_t *err)
{
  const char *p = s;
  double total = 0;
  if (*p == '\0')
    return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`", s);
  if (strcmp (s, "0") == 0)
    {
      *out = 0;
      return 0;
    }
  while (*p)
    {
      char *end;
      double v = strtod (p, &end);
      double unit;
      if (end == p || v < 0)
        return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`", s);
      p = end;
      if (strncmp (p, "ns", 2) == 0)
        unit = 1, p += 2;
      else if (strncmp (p, "us", 2) == 0 || strncmp (p, "µs", 3) == 0)
        unit = 1e3, p += (p[0] == 'u' ? 2 : 3);
      else if (strncmp (p, "ms", 2) == 0)
        unit = 1e6, p += 2;
      else if (*p == 's')
        unit = 1e9, p += 1;
      else if (*p == 'm')
        unit = 60e9, p += 1;
      else if (*p == 'h')
        unit = 3600e9, p += 1;
      else
        return ob_error_make (err, OB_ERR_DOCKERFILE, 0, "invalid duration `%s`: missing unit", s);
      total += v * unit;
    }
  *out = (int64_t) total;
  return 0;
}

int
ob_build_healthcheck (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  json_t *hc = json_object ();
  static const char *const opts[][2] = { { "interval", "Interval" }, { "timeout", "Timeout" },
                                         { "start-period", "StartPeriod" },
                                         { "start-interval", "StartInterval" } };
  if (in->healthcheck_none)
    {
      json_t *t = json_array ();
      json_array_append_new (t, json_string ("NONE"));
      json_object_set_new (hc, "Test", t);
    }
  else
    {
      json_t *t = json_array ();
      json_array_append_new (t, json_string (in->json ? "CMD" : "CMD-SHELL"));
      json_t *cmd = command_array (s, in, false);
      json_array_extend (t, cmd);
      json_decref (cmd);
      json_object_set_new (hc, "Test", t);
      for (size_t i = 0; i < 4; i++)
        {
          const struct ob_flag *f = ob_instr_flag (in, opts[i][0]);
          int64_t ns;
          if (f == NULL)
            continue;
          if (ob_build_parse_duration (f->value ? f->value : "", &ns, err) < 0)
            {
              json_decref (hc);
              return ob_error_wrap (err, "%s:%d: HEALTHCHECK --%s", b->dfname, in->line, opts[i][0]);
            }
          if (ns != 0 && ns < 1000000)
            {
              json_decref (hc);
              return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                           "HEALTHCHECK --%s cannot be less than 1ms", opts[i][0]);
            }
          json_object_set_new (hc, opts[i][1], json_integer (ns));
        }
      const struct ob_flag *r = ob_instr_flag (in, "retries");
      if (r)
        {
          char *end;
          long n = strtol (r->value ? r->value : "", &end, 10);
          if (r->value == NULL || *r->value == '\0' || *end || n < 0)
            {
              json_decref (hc);
              return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE,
                                           "HEALTHCHECK --retries must be a non-negative integer");
            }
          json_object_set_new (hc, "Retries", json_integer (n));
        }
    }
  json_object_set_new (ob_image_config_runtime (s->config), "Healthcheck", hc);
  ob_build_history (b, s, in->original, true);
  return 0;
}

/* Expand an EXPOSE word into "port/proto" keys (ranges expanded). */
static int
expose_word (struct build *b, const struct ob_instr *in, const char *w, json_t *ports, ob_error_t *err)
{
  const char *colon = strrchr (w, ':');
  cleanup_free char *c = ob_xstrdup (colon ? colon + 1 : w);
  char *proto;
  if (colon)
    {
      /* ip:host:container or host:container: BuildKit exposes the
       * container port and warns (lint rule ExposeInvalidFormat) */
      ob_build_warn (b, ob_xasprintf ("%s:%d: EXPOSE instruction should not define an IP address or "
                                      "host-port mapping, found '%s'",
                                      b->dfname, in->line, w));
    }
  proto = strchr (c, '/');
  char *dash, *end;
  long lo, hi;
  if (proto)
    {
      *proto++ = '\0';
      for (char *p = proto; *p; p++)
        *p = tolower ((unsigned char) *p);
      if (strcmp (proto, "tcp") != 0 && strcmp (proto, "udp") != 0 && strcmp (proto, "sctp") != 0)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid protocol", w);
    }
  dash = strchr (c, '-');
  if (dash)
    *dash = '\0';
  lo = strtol (c, &end, 10);
  if (*c == '\0' || *end || lo < 0 || lo > 65535)
    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid port", w);
  hi = lo;
  if (dash)
    {
      hi = strtol (dash + 1, &end, 10);
      if (dash[1] == '\0' || *end || hi < lo || hi > 65535)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "EXPOSE %s: invalid port range", w);
    }
  for (long p = lo; p <= hi; p++)
    {
      char key[32];
      snprintf (key, sizeof key, "%ld/%s", p, proto ? proto : "tcp");
      json_object_set_new (ports, key, json_object ());
    }
  return 0;
}

int
ob_build_meta (struct build *b, struct stage *s, const struct ob_instr *in, ob_error_t *err)
{
  json_t *rt = ob_image_config_runtime (s->config);
  cleanup_free char *w = NULL;
  cleanup_free char *hist = NULL;
  cleanup_strv char **words = NULL;

  switch (in->kind)
    {
    case OB_I_CMD:
      json_object_set_new (rt, "Cmd", command_array (s, in, true));
      s->cmd_set = true;
      break;
    case OB_I_ENTRYPOINT:
      json_object_set_new (rt, "Entrypoint", command_array (s, in, true));
      if (!s->cmd_set)
        json_object_del (rt, "Cmd");
      break;
    case OB_I_SHELL:
      if (!in->json || in->n_args == 0)
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "SHELL requires a JSON array");
      json_object_set_new (rt, "Shell", command_array (s, in, false));
      break;
    case OB_I_USER:
    case OB_I_STOPSIGNAL:
    case OB_I_MAINTAINER:
      if (ob_build_word (b, s, in, in->rest ? in->rest : "", &w, err) < 0)
        return -1;
      if (*w == '\0')
        return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s requires an argument",
                                     ob_instr_kind_name (in->kind));
      if (in->kind == OB_I_USER)
        json_object_set_new (rt, "User", json_string (w));
      else if (in->kind == OB_I_MAINTAINER)
        json_object_set_new (s->config, "author", json_string (w));
      else
        {
          if (!valid_signal (w))
            return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "STOPSIGNAL: invalid signal `%s`", w);
          json_object_set_new (rt, "StopSignal", json_string (w));
        }
      hist = ob_xasprintf ("%s %s", ob_instr_kind_name (in->kind), w);
      break;
    case OB_I_EXPOSE:
    case OB_I_VOLUME:
      {
        const char *key = in->kind == OB_I_EXPOSE ? "ExposedPorts" : "Volumes";
        json_t *obj = json_object_get (rt, key);
        struct ob_buf h = { 0 };
        if (ob_build_words (b, s, in, in->kind == OB_I_EXPOSE, &words, err) < 0)
          return -1;
        if (ob_strv_len (words) == 0)
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "%s requires at least one argument",
                                       ob_instr_kind_name (in->kind));
        if (!json_is_object (obj))
          {
            obj = json_object ();
            json_object_set_new (rt, key, obj);
          }
        ob_buf_adds (&h, ob_instr_kind_name (in->kind));
        for (size_t i = 0; words[i]; i++)
          {
            if (in->kind == OB_I_EXPOSE)
              {
                if (expose_word (b, in, words[i], obj, err) < 0)
                  {
                    ob_buf_free (&h);
                    return -1;
                  }
              }
            else
              {
                if (*words[i] == '\0')
                  {
                    ob_buf_free (&h);
                    return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "VOLUME specified can not be an empty string");
                  }
                json_object_set_new (obj, words[i], json_object ());
              }
            ob_buf_addc (&h, ' ');
            ob_buf_adds (&h, words[i]);
          }
        hist = ob_buf_steal (&h);
        break;
      }
    case OB_I_WORKDIR:
      {
        cleanup_free char *abs = NULL;
        char *clean;
        if (ob_build_word (b, s, in, in->rest ? in->rest : "", &w, err) < 0)
          return -1;
        if (*w == '\0')
          return ob_build_instr_error (b, in, err, OB_ERR_DOCKERFILE, "WORKDIR requires an argument");
        abs = ob_build_abs_path (s, w);
        clean = ob_build_clean_abs (abs);
        json_object_set_new (rt, "WorkingDir", json_string (clean));
        hist = ob_xasprintf ("WORKDIR %s", clean);
        free (clean);
        {
          size_t before = s->n_layers;
          if (ob_build_workdir_mkdir (b, s, hist + 8, err) < 0)
            return ob_error_wrap (err, "%s:%d: WORKDIR", b->dfname, in->line);
          if (s->n_layers != before)
            return 0; /* commit_layer wrote the history entry */
        }
        break;
      }
    case OB_I_ONBUILD:
      {
        json_t *ob = json_object_get (rt, "OnBuild");
        if (!json_is_array (ob))
          {
            ob = json_array ();
            json_object_set_new (rt, "OnBuild", ob);
          }
        json_array_append_new (ob, json_string (in->onbuild_text ? in->onbuild_text : ""));
        break;
      }
    default:
      break;
    }
  ob_build_history (b, s, hist ? hist : in->original, true);
  return 0;
}

