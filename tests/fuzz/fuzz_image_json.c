/* libFuzzer harness: the OCI documents obuild reads from outside — image
 * index (index.json and nested indexes), manifest (OCI and Docker schema2),
 * config — and the platform choice, as a FROM oci:DIR does.
 *
 * Input: documents separated by a line "----":
 *   part 0       index.json of an OCI layout
 *   parts 1..8   blobs of that layout
 * so that documents can point at each other, a part may write "@N" for the
 * digest ("sha256:<hex>") and "#N" for the size of a LATER part N (parts are
 * finished from the last one back; a reference to itself or an earlier part
 * stays as written).
 *
 * Every part goes through the pure parsers (ob_image_manifest_parse,
 * ob_image_config_parse, ob_descriptor_from_json on index entries); then the
 * layout is written to the scratch directory (see fuzz_common.h) and read
 * back with ob_layout_list / ob_layout_resolve for each entry, and with
 * ob_source_resolve("oci:DIR[:TAG]") into a transaction of a private store,
 * which copies and verifies the whole image (layer sizes and diff_ids). */
#include "config.h"
#include <obuild/image.h>
#include <obuild/source.h>
#include <obuild/store.h>
#include <obuild/util.h>

#include "fuzz_common.h"

#include <stdint.h>

#define MAX_PARTS 9
#define SEP "\n----\n"

static struct ob_store *store;
static char *layout_path;
static struct ob_source_opts source_opts;

int LLVMFuzzerInitialize (int *argc, char ***argv);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  ob_error_t err = NULL;
  cleanup_free char *root = NULL;
  (void) argc;
  (void) argv;
  fuzz_scratch_init ("fuzz_image_json", "64m");
  root = ob_xasprintf ("%s/store", fuzz_scratch);
  layout_path = ob_xasprintf ("%s/layout", fuzz_scratch);
  if (ob_store_open (root, &store, &err) < 0)
    fuzz_fail ("store: %s", err->msg);
  source_opts.pull = OB_PULL_NEVER;
  ob_registry_opts_init (&source_opts.registry);
  return 0;
}

static void
check_err (int r, ob_error_t *err)
{
  if (r < 0)
    {
      if (*err == NULL || (*err)->msg == NULL || (*err)->kind == 0)
        fuzz_fail ("an error without a message");
      if (fuzz_verbose)
        fprintf (stderr, "%s: error %d: %s\n", fuzz_name, (*err)->kind, (*err)->msg);
      ob_error_free (err);
    }
  else if (*err != NULL)
    fuzz_fail ("success with an error set: %s", (*err)->msg);
}

struct part
{
  const char *raw; /* in the input */
  size_t raw_len;
  struct ob_buf text; /* with @N / #N replaced */
  char digest[OB_DIGEST_LEN];
};

static void
finish_part (struct part *p, size_t self, struct part *parts, size_t n)
{
  for (size_t i = 0; i < p->raw_len; i++)
    {
      char c = p->raw[i];
      if ((c == '@' || c == '#') && i + 1 < p->raw_len && p->raw[i + 1] >= '1'
          && p->raw[i + 1] <= '8' && (size_t) (p->raw[i + 1] - '0') > self
          && (size_t) (p->raw[i + 1] - '0') < n)
        {
          struct part *q = &parts[p->raw[i + 1] - '0'];
          if (c == '@')
            ob_buf_adds (&p->text, q->digest);
          else
            {
              char num[32];
              snprintf (num, sizeof num, "%zu", q->text.len);
              ob_buf_adds (&p->text, num);
            }
          i++;
          continue;
        }
      ob_buf_addc (&p->text, c);
    }
  /* an empty ob_buf has no data yet */
  ob_buf_add (&p->text, "", 0);
  ob_sha256_digest (p->text.data ? p->text.data : "", p->text.len, p->digest);
}

static void
parse_pure (const char *data, size_t len)
{
  ob_error_t err = NULL;
  struct ob_manifest *m = NULL;
  json_t *cfg = NULL, *j, *e;
  size_t i;
  int r;

  r = ob_image_manifest_parse (data, len, &m, &err);
  check_err (r, &err);
  if (r == 0)
    {
      json_t *mj = ob_image_manifest_new (&m->config, m->layers, m->n_layers, NULL);
      char *canon = ob_json_canonical (mj);
      struct ob_manifest *m2 = NULL;
      /* what obuild writes from a parsed manifest parses again */
      if (ob_image_manifest_parse (canon, strlen (canon), &m2, &err) < 0)
        fuzz_fail ("a rebuilt manifest does not parse: %s", err->msg);
      if (m2->n_layers != m->n_layers || strcmp (m2->config.digest, m->config.digest) != 0)
        fuzz_fail ("a rebuilt manifest differs");
      ob_manifest_free (m2);
      free (canon);
      json_decref (mj);
      ob_manifest_free (m);
    }

  r = ob_image_config_parse (data, len, &cfg, &err);
  check_err (r, &err);
  if (r == 0)
    {
      char *canon;
      json_t *rt = ob_image_config_runtime (cfg);
      if (!json_is_object (rt))
        fuzz_fail ("config.config is not an object");
      check_err (ob_image_config_check (cfg, &err), &err);
      canon = ob_json_canonical (cfg);
      free (canon);
      json_decref (cfg);
    }

  j = json_loadb (data, len, 0, NULL);
  json_array_foreach (json_object_get (j, "manifests"), i, e)
    {
      struct ob_descriptor d = { 0 };
      const char *ref = json_string_value (
          json_object_get (json_object_get (e, "annotations"), OB_ANNOT_REF_NAME));
      r = ob_descriptor_from_json (e, &d, &err);
      check_err (r, &err);
      if (r == 0)
        {
          json_t *back = ob_descriptor_to_json (&d);
          struct ob_descriptor d2 = { 0 };
          if (ob_descriptor_from_json (back, &d2, &err) < 0)
            fuzz_fail ("a descriptor does not survive a round trip: %s", err->msg);
          json_decref (back);
          ob_descriptor_clear (&d2);
        }
      ob_descriptor_clear (&d);
      if (ref)
        {
          char *norm = NULL;
          r = ob_image_ref_normalize (ref, &norm, &err);
          check_err (r, &err);
          free (norm);
        }
    }
  json_decref (j);
}

static void
write_file (int dfd, const char *name, const void *data, size_t len)
{
  int fd = openat (dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || (len > 0 && write (fd, data, len) != (ssize_t) len))
    fuzz_fail ("write %s: %s", name, strerror (errno));
  close (fd);
}

static void
resolve_in_layout (void)
{
  struct ob_layout *l = NULL;
  struct ob_layout_entry *es = NULL;
  size_t n = 0;
  ob_error_t err = NULL;
  int r;

  r = ob_layout_open (layout_path, false, &l, &err);
  check_err (r, &err);
  if (r < 0)
    return;
  r = ob_layout_list (l, &es, &n, &err);
  check_err (r, &err);
  for (size_t i = 0; r == 0 && i < n && i < 8; i++)
    {
      const char *refs[2] = { es[i].desc.digest, es[i].tag };
      for (size_t k = 0; k < 2; k++)
        {
          struct ob_descriptor d = { 0 };
          int rr;
          if (refs[k] == NULL)
            continue;
          rr = ob_layout_resolve (l, refs[k], &d, &err);
          check_err (rr, &err);
          /* as from_layout does: cleared whatever the outcome */
          ob_descriptor_clear (&d);
        }
    }
  if (r == 0)
    ob_layout_entries_free (es, n);
  ob_layout_close (l);
}

static void
source_resolve (const char *ref)
{
  struct ob_txn *txn = NULL;
  struct ob_source src;
  ob_error_t err = NULL;
  int r;

  if (ob_txn_begin (store->oci, store->tmp, &txn, &err) < 0)
    fuzz_fail ("txn: %s", err->msg);
  r = ob_source_resolve (store, txn, ref, &source_opts, &src, &err);
  check_err (r, &err);
  if (r == 0)
    {
      if (!ob_digest_valid (src.manifest.digest))
        fuzz_fail ("resolved to an invalid digest");
      ob_source_clear (&src);
    }
  ob_txn_free (txn);
}

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct part parts[MAX_PARTS];
  size_t n = 0;
  const char *p = (const char *) data, *end = p + size;
  int dfd, bfd, fds_before;

  memset (parts, 0, sizeof parts);
  while (n < MAX_PARTS)
    {
      const char *s = n + 1 < MAX_PARTS ? memmem (p, end - p, SEP, strlen (SEP)) : NULL;
      parts[n].raw = p;
      parts[n].raw_len = s ? (size_t) (s - p) : (size_t) (end - p);
      n++;
      if (s == NULL)
        break;
      p = s + strlen (SEP);
    }
  for (size_t i = n; i-- > 0;)
    finish_part (&parts[i], i, parts, n);

  for (size_t i = 0; i < n; i++)
    parse_pure (parts[i].text.data, parts[i].text.len);

  fds_before = fuzz_count_fds ();
  if (mkdir (layout_path, 0755) < 0)
    fuzz_fail ("mkdir %s: %s", layout_path, strerror (errno));
  dfd = open (layout_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || mkdirat (dfd, "blobs", 0755) < 0 || mkdirat (dfd, "blobs/sha256", 0755) < 0
      || (bfd = openat (dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    fuzz_fail ("layout %s: %s", layout_path, strerror (errno));
  write_file (dfd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
  write_file (dfd, "index.json", parts[0].text.data, parts[0].text.len);
  for (size_t i = 1; i < n; i++)
    write_file (bfd, parts[i].digest + 7, parts[i].text.data, parts[i].text.len);
  close (bfd);
  close (dfd);

  resolve_in_layout ();
  {
    cleanup_free char *ref = ob_xasprintf ("oci:%s", layout_path);
    cleanup_free char *tagged = ob_xasprintf ("oci:%s:latest", layout_path);
    source_resolve (ref);
    source_resolve (tagged);
  }
  if (fuzz_count_fds () != fds_before)
    fuzz_fail ("%d file descriptors before, %d after", fds_before, fuzz_count_fds ());

  fuzz_rm_tree (layout_path);
  for (size_t i = 0; i < n; i++)
    ob_buf_free (&parts[i].text);
  return 0;
}
