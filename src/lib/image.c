#include "config.h"
#include <obuild/image.h>
#include <obuild/util.h>

#include <ctype.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

char *
ob_json_canonical (json_t *j)
{
  char *s = json_dumps (j, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
  if (s == NULL)
    ob_oom ();
  return s;
}

const char *
ob_image_host_arch (void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__arm__)
  return "arm";
#elif defined(__i386__)
  return "386";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

const char *
ob_image_host_variant (void)
{
#if defined(__aarch64__)
  return "v8";
#elif defined(__arm__)
  return "v7";
#else
  return NULL;
#endif
}

bool
ob_image_media_type_is_index (const char *mt)
{
  return mt && (strcmp (mt, OB_MT_OCI_INDEX) == 0 || strcmp (mt, OB_MT_DOCKER_LIST) == 0);
}

char *
ob_image_entry_platform (json_t *entry)
{
  json_t *p = json_object_get (entry, "platform");
  const char *os = json_string_value (json_object_get (p, "os"));
  const char *arch = json_string_value (json_object_get (p, "architecture"));
  const char *v = json_string_value (json_object_get (p, "variant"));
  if (os == NULL || arch == NULL)
    return ob_xstrdup ("no platform");
  return v ? ob_xasprintf ("%s/%s/%s", os, arch, v) : ob_xasprintf ("%s/%s", os, arch);
}

int
ob_image_platform_parse (const char *p, char **os, char **arch, char **variant, ob_error_t *err)
{
  const char *a = strchr (p, '/');
  const char *v = a ? strchr (a + 1, '/') : NULL;
  *os = *arch = *variant = NULL;
  if (a == NULL || a == p || a[1] == '\0' || a[1] == '/' || (v && (v[1] == '\0' || strchr (v + 1, '/'))))
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid platform \"%s\": expected os/arch[/variant]", p);
  *os = ob_xstrndup (p, a - p);
  *arch = v ? ob_xstrndup (a + 1, v - a - 1) : ob_xstrdup (a + 1);
  *variant = v ? ob_xstrdup (v + 1) : NULL;
  return 0;
}

json_t *
ob_image_config_new (const char *os, const char *arch, const char *variant)
{
  json_t *cfg = json_object ();
  json_object_set_new (cfg, "architecture", json_string (arch));
  json_object_set_new (cfg, "os", json_string (os));
  if (variant)
    json_object_set_new (cfg, "variant", json_string (variant));
  json_object_set_new (cfg, "config", json_object ());
  json_t *rootfs = json_object ();
  json_object_set_new (rootfs, "type", json_string ("layers"));
  json_object_set_new (rootfs, "diff_ids", json_array ());
  json_object_set_new (cfg, "rootfs", rootfs);
  json_object_set_new (cfg, "history", json_array ());
  return cfg;
}

int
ob_image_config_parse (const char *data, size_t len, json_t **out, ob_error_t *err)
{
  json_error_t jerr;
  json_t *cfg = json_loadb (data, len, 0, &jerr);
  json_t *rootfs, *ids;
  if (cfg == NULL)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid image config: %s", jerr.text);
  rootfs = json_object_get (cfg, "rootfs");
  ids = rootfs ? json_object_get (rootfs, "diff_ids") : NULL;
  if (!json_is_object (cfg) || !json_is_array (ids))
    {
      json_decref (cfg);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid image config: no rootfs.diff_ids");
    }
  for (size_t i = 0; i < json_array_size (ids); i++)
    if (!ob_digest_valid (json_string_value (json_array_get (ids, i))))
      {
        json_decref (cfg);
        return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid image config: bad diff_id #%zu", i);
      }
  if (!json_is_object (json_object_get (cfg, "config")))
    json_object_set_new (cfg, "config", json_object ());
  if (!json_is_array (json_object_get (cfg, "history")))
    json_object_set_new (cfg, "history", json_array ());
  *out = cfg;
  return 0;
}

json_t *
ob_image_config_runtime (json_t *cfg)
{
  json_t *c = json_object_get (cfg, "config");
  if (!json_is_object (c))
    {
      c = json_object ();
      json_object_set_new (cfg, "config", c);
    }
  return c;
}

void
ob_image_config_add_diff_id (json_t *cfg, const char *diff_id)
{
  json_array_append_new (json_object_get (json_object_get (cfg, "rootfs"), "diff_ids"),
                         json_string (diff_id));
}

void
ob_image_config_add_history (json_t *cfg, const char *created, const char *created_by,
                             const char *comment, bool empty_layer)
{
  json_t *h = json_object ();
  if (created)
    json_object_set_new (h, "created", json_string (created));
  if (created_by)
    json_object_set_new (h, "created_by", json_string (created_by));
  if (comment)
    json_object_set_new (h, "comment", json_string (comment));
  if (empty_layer)
    json_object_set_new (h, "empty_layer", json_true ());
  json_array_append_new (json_object_get (cfg, "history"), h);
}

void
ob_image_config_set_created (json_t *cfg, const char *created)
{
  json_object_set_new (cfg, "created", json_string (created));
}

int
ob_image_config_check (json_t *cfg, ob_error_t *err)
{
  json_t *hist = json_object_get (cfg, "history");
  json_t *ids = json_object_get (json_object_get (cfg, "rootfs"), "diff_ids");
  size_t nonempty = 0, i;
  json_t *h;
  json_array_foreach (hist, i, h)
    if (!json_is_true (json_object_get (h, "empty_layer")))
      nonempty++;
  if (json_array_size (hist) > 0 && nonempty != json_array_size (ids))
    return ob_error_make (err, OB_ERR_IMAGE, 0,
                          "image config: %zu non-empty history entries for %zu layers",
                          nonempty, json_array_size (ids));
  return 0;
}

char *
ob_image_timestamp (int64_t t)
{
  struct tm tm;
  time_t tt = (time_t) t;
  char buf[64];
  gmtime_r (&tt, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return ob_xstrdup (buf);
}

json_t *
ob_descriptor_to_json (const struct ob_descriptor *d)
{
  json_t *j = json_object ();
  json_object_set_new (j, "mediaType", json_string (d->media_type));
  json_object_set_new (j, "digest", json_string (d->digest));
  json_object_set_new (j, "size", json_integer (d->size));
  return j;
}

int
ob_descriptor_from_json (json_t *j, struct ob_descriptor *d, ob_error_t *err)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  const char *dg = json_string_value (json_object_get (j, "digest"));
  json_t *sz = json_object_get (j, "size");
  if (!ob_digest_valid (dg))
    return ob_error_make (err, OB_ERR_IMAGE, 0, "descriptor with invalid digest `%s`",
                          dg ? dg : "(none)");
  if (!json_is_integer (sz) || json_integer_value (sz) < 0)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "descriptor %s: invalid size", dg);
  d->media_type = ob_xstrdup (mt ? mt : "");
  strcpy (d->digest, dg);
  d->size = json_integer_value (sz);
  return 0;
}

void
ob_descriptor_clear (struct ob_descriptor *d)
{
  free (d->media_type);
  d->media_type = NULL;
}

json_t *
ob_image_manifest_new (const struct ob_descriptor *config, const struct ob_descriptor *layers,
                       size_t n_layers, json_t *annotations)
{
  json_t *m = json_object ();
  json_t *ls = json_array ();
  json_object_set_new (m, "schemaVersion", json_integer (2));
  json_object_set_new (m, "mediaType", json_string (OB_MT_OCI_MANIFEST));
  json_object_set_new (m, "config", ob_descriptor_to_json (config));
  for (size_t i = 0; i < n_layers; i++)
    json_array_append_new (ls, ob_descriptor_to_json (&layers[i]));
  json_object_set_new (m, "layers", ls);
  if (annotations && json_object_size (annotations) > 0)
    json_object_set (m, "annotations", annotations);
  return m;
}

void
ob_manifest_free (struct ob_manifest *m)
{
  if (m == NULL)
    return;
  ob_descriptor_clear (&m->config);
  for (size_t i = 0; i < m->n_layers; i++)
    ob_descriptor_clear (&m->layers[i]);
  free (m->layers);
  free (m);
}

int
ob_image_manifest_parse (const char *data, size_t len, struct ob_manifest **out, ob_error_t *err)
{
  json_error_t jerr;
  json_t *j = json_loadb (data, len, 0, &jerr);
  json_t *layers;
  struct ob_manifest *m;
  size_t i;
  json_t *l;

  if (j == NULL)
    return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid manifest: %s", jerr.text);
  if (json_integer_value (json_object_get (j, "schemaVersion")) != 2)
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0,
                            "unsupported manifest (schemaVersion is not 2; schema1 images "
                            "are not supported)");
    }
  layers = json_object_get (j, "layers");
  if (!json_is_object (json_object_get (j, "config")) || !json_is_array (layers))
    {
      json_decref (j);
      return ob_error_make (err, OB_ERR_IMAGE, 0, "invalid manifest: no config or layers");
    }
  m = ob_xmalloc0 (sizeof *m);
  if (ob_descriptor_from_json (json_object_get (j, "config"), &m->config, err) < 0)
    {
      ob_manifest_free (m);
      json_decref (j);
      return ob_error_wrap (err, "manifest config");
    }
  if (m->config.size > OB_MAX_JSON_BLOB)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "manifest config %s: size %lld is more than the %d bytes allowed",
                     m->config.digest, (long long) m->config.size, OB_MAX_JSON_BLOB);
      ob_manifest_free (m);
      json_decref (j);
      return -1;
    }
  m->layers = ob_xmalloc0 (sizeof (struct ob_descriptor) * (json_array_size (layers) + 1));
  json_array_foreach (layers, i, l)
    {
      if (ob_descriptor_from_json (l, &m->layers[i], err) < 0)
        {
          ob_manifest_free (m);
          json_decref (j);
          return ob_error_wrap (err, "manifest layer #%zu", i);
        }
      m->n_layers++;
    }
  json_decref (j);
  *out = m;
  return 0;
}

/* ---- references ---- */

static bool
is_alnum_lower (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+ */
bool
ob_ref_valid_component (const char *s, size_t n)
{
  size_t i = 0;
  if (n == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[n - 1]))
    return false;
  while (i < n)
    {
      if (is_alnum_lower (s[i]))
        {
          i++;
          continue;
        }
      /* a separator */
      size_t j = i;
      if (s[i] == '.')
        j++;
      else if (s[i] == '_')
        j += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
      else if (s[i] == '-')
        while (j < n && s[j] == '-')
          j++;
      else
        return false;
      if (j >= n || !is_alnum_lower (s[j]))
        return false;
      i = j;
    }
  return true;
}


/* host[:port] with DNS labels, or [ipv6][:port]. */
bool
ob_ref_valid_domain (const char *s, size_t n)
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

bool
ob_ref_valid_tag (const char *t)
{
  size_t n = strlen (t);
  if (n == 0 || n > 128)
    return false;
  if (!(isalnum ((unsigned char) t[0]) || t[0] == '_'))
    return false;
  for (size_t i = 1; i < n; i++)
    if (!(isalnum ((unsigned char) t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
      return false;
  return true;
}

int
ob_image_ref_normalize (const char *in, char **out, ob_error_t *err)
{
  cleanup_free char *s = ob_xstrdup (in);
  const char *tag = "latest";
  char *last_slash, *colon, *name;
  size_t i, start;

  if (*s == '\0')
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid tag \"\": empty name");
  if (strchr (s, '@'))
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid tag \"%s\": a tag cannot contain a digest", in);
  last_slash = strrchr (s, '/');
  colon = strrchr (last_slash ? last_slash : s, ':');
  if (colon)
    {
      *colon = '\0';
      tag = colon + 1;
      if (!ob_ref_valid_tag (tag))
        return ob_error_make (err, OB_ERR_USAGE, 0,
                              "invalid tag \"%s\": tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", in);
    }
  name = s;
  if (strlen (name) > 255)
    return ob_error_make (err, OB_ERR_USAGE, 0, "invalid tag \"%s\": name longer than 255 characters", in);
  /* The first component is a domain if it contains '.' or ':' or is localhost. */
  start = 0;
  {
    char *slash = strchr (name, '/');
    if (slash)
      {
        size_t dl = slash - name;
        bool upper = false;
        for (size_t k = 0; k < dl; k++)
          upper = upper || isupper ((unsigned char) name[k]);
        if (memchr (name, '.', dl) || memchr (name, ':', dl) || upper
            || (dl == 9 && memcmp (name, "localhost", 9) == 0))
          {
            if (!ob_ref_valid_domain (name, dl))
              return ob_error_make (err, OB_ERR_USAGE, 0, "invalid tag \"%s\": bad registry host", in);
            start = dl + 1;
          }
      }
  }
  for (i = start;; i++)
    {
      if (name[i] == '/' || name[i] == '\0')
        {
          if (!ob_ref_valid_component (name + start, i - start))
            return ob_error_make (err, OB_ERR_USAGE, 0,
                                  "invalid tag \"%s\": name components must be lower-case "
                                  "letters, digits and separators (. _ __ -)",
                                  in);
          if (name[i] == '\0')
            break;
          start = i + 1;
        }
    }
  *out = ob_xasprintf ("%s:%s", name, tag);
  return 0;
}
