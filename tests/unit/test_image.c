#include "config.h"
#include "tap.h"
#include <obuild/image.h>
#include <obuild/util.h>

static void
norm_ok (const char *in, const char *want)
{
  ob_error_t err = NULL;
  char *out = NULL;
  if (ob_image_ref_normalize (in, &out, &err) < 0)
    {
      printf ("#   %s: unexpected error %s\n", in, err->msg);
      tap_case_failed = 1;
      ob_error_free (&err);
      return;
    }
  CHECK_STR (out, want);
  free (out);
}

static void
norm_bad (const char *in)
{
  ob_error_t err = NULL;
  char *out = NULL;
  if (ob_image_ref_normalize (in, &out, &err) == 0)
    {
      printf ("#   %s: accepted as %s\n", in, out);
      tap_case_failed = 1;
      free (out);
      return;
    }
  CHECK_INT (err->kind, OB_ERR_USAGE);
  CHECK (strstr (err->msg, "invalid tag") != NULL);
  ob_error_free (&err);
}

TEST (test_ref_valid)
{
  norm_ok ("my-service:1.0", "my-service:1.0");
  norm_ok ("app", "app:latest");
  norm_ok ("org/app_x/sub.name:v1.2-rc_3", "org/app_x/sub.name:v1.2-rc_3");
  norm_ok ("localhost:5000/app", "localhost:5000/app:latest");
  norm_ok ("registry.example.com/team/app:2", "registry.example.com/team/app:2");
  norm_ok ("a__b", "a__b:latest");
  norm_ok ("a---b:_tag", "a---b:_tag");
  norm_ok ("Registry.Example.com/app:X", "Registry.Example.com/app:X");
}

TEST (test_ref_invalid)
{
  norm_bad ("");
  norm_bad ("Upper");
  norm_bad ("app:");
  norm_bad ("app:-bad");
  norm_bad ("app:has space");
  norm_bad ("-app");
  norm_bad ("app-");
  norm_bad ("a___b");
  norm_bad ("a//b");
  norm_bad ("app@sha256:abc");
  norm_bad ("app:" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
}

TEST (test_config_roundtrip_canonical)
{
  json_t *cfg = ob_image_config_new ("linux", "amd64", NULL);
  ob_error_t err = NULL;
  json_t *back = NULL;
  ob_image_config_add_diff_id (cfg, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  ob_image_config_add_history (cfg, "2023-11-14T22:13:20Z", "COPY a /", NULL, false);
  ob_image_config_add_history (cfg, "2023-11-14T22:13:20Z", "ENV a=b", NULL, true);
  CHECK (ob_image_config_check (cfg, &err) == 0);
  char *s = ob_json_canonical (cfg);
  CHECK_STR (s, "{\"architecture\":\"amd64\",\"config\":{},\"history\":[{\"created\":\"2023-11-14T22:13:20Z\","
                "\"created_by\":\"COPY a /\"},{\"created\":\"2023-11-14T22:13:20Z\",\"created_by\":\"ENV a=b\","
                "\"empty_layer\":true}],\"os\":\"linux\",\"rootfs\":{\"diff_ids\":[\"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"],"
                "\"type\":\"layers\"}}");
  CHECK (ob_image_config_parse (s, strlen (s), &back, &err) == 0);
  char *s2 = ob_json_canonical (back);
  CHECK_STR (s2, s);
  ob_image_config_add_history (cfg, NULL, "COPY b /", NULL, false);
  CHECK (ob_image_config_check (cfg, &err) < 0);
  ob_error_free (&err);
  free (s);
  free (s2);
  json_decref (cfg);
  json_decref (back);
}

TEST (test_config_parse_rejects_bad)
{
  ob_error_t err = NULL;
  json_t *c = NULL;
  const char *bad1 = "{\"rootfs\":{\"diff_ids\":[\"sha256:xyz\"]}}";
  const char *bad2 = "not json";
  const char *bad3 = "{\"os\":\"linux\"}";
  CHECK (ob_image_config_parse (bad1, strlen (bad1), &c, &err) < 0);
  CHECK_INT (err->kind, OB_ERR_IMAGE);
  ob_error_free (&err);
  CHECK (ob_image_config_parse (bad2, strlen (bad2), &c, &err) < 0);
  ob_error_free (&err);
  CHECK (ob_image_config_parse (bad3, strlen (bad3), &c, &err) < 0);
  ob_error_free (&err);
}

TEST (test_manifest_build_and_parse)
{
  struct ob_descriptor cfg = { (char *) OB_MT_OCI_CONFIG, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 10 };
  struct ob_descriptor l = { (char *) "application/vnd.oci.image.layer.v1.tar+gzip",
                             "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", 20 };
  json_t *m = ob_image_manifest_new (&cfg, &l, 1, NULL);
  char *s = ob_json_canonical (m);
  struct ob_manifest *pm = NULL;
  ob_error_t err = NULL;
  CHECK (ob_image_manifest_parse (s, strlen (s), &pm, &err) == 0);
  CHECK_INT (pm->n_layers, 1);
  CHECK_STR (pm->layers[0].digest, l.digest);
  CHECK_INT (pm->layers[0].size, 20);
  CHECK_STR (pm->config.media_type, OB_MT_OCI_CONFIG);
  CHECK (strstr (s, "\"schemaVersion\":2") != NULL);
  CHECK (strstr (s, "\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"") != NULL);
  ob_manifest_free (pm);
  free (s);
  json_decref (m);
}

TEST (test_manifest_rejects_schema1_and_bad_digest)
{
  const char *s1 = "{\"schemaVersion\":1,\"fsLayers\":[]}";
  const char *s2 = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:../../x\",\"size\":1},\"layers\":[]}";
  struct ob_manifest *m = NULL;
  ob_error_t err = NULL;
  CHECK (ob_image_manifest_parse (s1, strlen (s1), &m, &err) < 0);
  CHECK (strstr (err->msg, "schema1") != NULL);
  ob_error_free (&err);
  CHECK (ob_image_manifest_parse (s2, strlen (s2), &m, &err) < 0);
  CHECK (strstr (err->msg, "invalid digest") != NULL);
  ob_error_free (&err);
}

TEST (test_manifest_refuses_huge_config)
{
  struct ob_descriptor cfg = { (char *) OB_MT_OCI_CONFIG, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 0 };
  int64_t sizes[] = { OB_MAX_JSON_BLOB, (int64_t) OB_MAX_JSON_BLOB + 1, 1000000000000000LL };
  for (int i = 0; i < 3; i++)
    {
      struct ob_manifest *m = NULL;
      ob_error_t err = NULL;
      json_t *j;
      char *s;
      cfg.size = sizes[i];
      j = ob_image_manifest_new (&cfg, NULL, 0, NULL);
      s = ob_json_canonical (j);
      if (i == 0)
        CHECK (ob_image_manifest_parse (s, strlen (s), &m, &err) == 0);
      else
        {
          /* refused before anyone downloads or reads it */
          CHECK (ob_image_manifest_parse (s, strlen (s), &m, &err) < 0);
          CHECK (err && err->kind == OB_ERR_IMAGE && strstr (err->msg, "bytes allowed") != NULL);
        }
      ob_manifest_free (m);
      ob_error_free (&err);
      free (s);
      json_decref (j);
    }
}

TEST (test_timestamp)
{
  char *t = ob_image_timestamp (1700000000);
  CHECK_STR (t, "2023-11-14T22:13:20Z");
  free (t);
  t = ob_image_timestamp (0);
  CHECK_STR (t, "1970-01-01T00:00:00Z");
  free (t);
}

int
main (void)
{
  RUN (test_ref_valid);
  RUN (test_ref_invalid);
  RUN (test_config_roundtrip_canonical);
  RUN (test_config_parse_rejects_bad);
  RUN (test_manifest_build_and_parse);
  RUN (test_manifest_rejects_schema1_and_bad_digest);
  RUN (test_manifest_refuses_huge_config);
  RUN (test_timestamp);
  TAP_DONE ();
}
