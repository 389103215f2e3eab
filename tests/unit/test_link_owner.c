/* Unit tests for link_owner: the record of a symlink's owner on its parent
 * directory (single-ID mode), its format and parser, and what the layer
 * writer and the unpacker make of it. */
#include "config.h"
#include <obuild/layer.h>
#include <obuild/link_owner.h>
#include <obuild/snapshot.h>
#include <obuild/util.h>

#include "tap.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char *tmpdir;
static bool user_xattrs; /* the test directory's file system takes user.* */

static bool
parse (const char *v, const char *target, uint32_t *u, uint32_t *g)
{
  return ob_link_owner_parse (v, strlen (v), target, u, g);
}

TEST (format_and_parse)
{
  char v[OB_LINK_OWNER_VALUE_MAX], big[OB_LINK_OWNER_VALUE_MAX];
  uint32_t u = 1, g = 1;
  ob_link_owner_format (1500, 1501, "/etc/passwd", v);
  /* sha256("/etc/passwd") begins with these 16 hex digits */
  {
    char dg[OB_DIGEST_LEN], want[64];
    ob_sha256_digest ("/etc/passwd", 11, dg);
    snprintf (want, sizeof want, "1500:1501:%.16s", dg + 7);
    CHECK_STR (v, want);
  }
  CHECK (parse (v, "/etc/passwd", &u, &g));
  CHECK_INT (u, 1500);
  CHECK_INT (g, 1501);
  /* another target: not this link's record */
  u = g = 7;
  CHECK (!parse (v, "/etc/passwd2", &u, &g));
  CHECK (!parse (v, "", &u, &g));
  CHECK_INT (u, 7);
  /* the largest ids */
  ob_link_owner_format (UINT32_MAX, UINT32_MAX, "", big);
  CHECK_INT (strlen (big), 38);
  CHECK (strlen (big) < OB_LINK_OWNER_VALUE_MAX);
  CHECK (parse (big, "", &u, &g));
  CHECK_INT (u, UINT32_MAX);
  CHECK_INT (g, UINT32_MAX);
  ob_link_owner_format (0, 0, "x", v);
  CHECK (parse (v, "x", &u, &g));
  CHECK_INT (u, 0);
}

TEST (parse_rejects_malformed)
{
  char v[OB_LINK_OWNER_VALUE_MAX], bad[128];
  const char *fp;
  uint32_t u = 3, g = 3;
  ob_link_owner_format (5, 6, "t", v);
  fp = strrchr (v, ':') + 1;
  /* @: the right fingerprint, #: all but its last digit */
  const char *forms[] = { "5:6", "5:6:", "5:@", ":6:@", "5::@", "-5:6:@", "+5:6:@", "05:6:@",
                          "5:06:@", "4294967296:6:@", "5:4294967296:@", "5:6:@0", "5:6:#",
                          "5 :6:@", "5:6:@ ", "5:6:@\n", "0x5:6:@", "5:6;@", "5:6:@:7" };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
    {
      size_t k = 0;
      for (const char *f = forms[i]; *f && k < sizeof bad - 20; f++)
        if (*f == '@' || *f == '#')
          {
            size_t l = strlen (fp) - (*f == '#');
            memcpy (bad + k, fp, l);
            k += l;
          }
        else
          bad[k++] = *f;
      bad[k] = '\0';
      if (parse (bad, "t", &u, &g))
        {
          printf ("#   accepted `%s`\n", bad);
          tap_case_failed = 1;
        }
    }
  /* upper-case hex is another string */
  snprintf (bad, sizeof bad, "5:6:%s", fp);
  for (char *p = bad; *p; p++)
    if (*p >= 'a' && *p <= 'f')
      *p = (char) (*p - 'a' + 'A');
  CHECK (strcmp (bad, v) == 0 || !parse (bad, "t", &u, &g));
  /* a NUL inside, and the value's length counts */
  CHECK (!ob_link_owner_parse (v, strlen (v) - 1, "t", &u, &g));
  memcpy (bad, v, strlen (v) + 1);
  CHECK (!ob_link_owner_parse (bad, strlen (v) + 1, "t", &u, &g));
  CHECK (!ob_link_owner_parse ("", 0, "t", &u, &g));
  CHECK_INT (u, 3);
  CHECK_INT (g, 3);
}

TEST (names)
{
  char buf[XATTR_NAME_MAX + 1], n[300];
  CHECK_INT (ob_link_owner_name ("l", buf, sizeof buf), 0);
  CHECK_STR (buf, "user.obuild.lowner.l");
  CHECK (ob_link_owner_is_xattr (buf));
  CHECK (!ob_link_owner_is_xattr ("user.obuild.owner"));
  CHECK (!ob_link_owner_is_xattr ("user.obuild.lowner"));
  CHECK (ob_link_owner_is_xattr ("user.obuild.lowner."));
  CHECK_INT (ob_link_owner_name ("", buf, sizeof buf), -1);
  CHECK_INT (ob_link_owner_name (".", buf, sizeof buf), -1);
  CHECK_INT (ob_link_owner_name ("..", buf, sizeof buf), -1);
  CHECK_INT (ob_link_owner_name ("a/b", buf, sizeof buf), -1);
  CHECK_INT (ob_link_owner_name ("...", buf, sizeof buf), 0);
  /* 255 bytes of xattr name at most: 236 of link name */
  memset (n, 'x', sizeof n);
  n[236] = '\0';
  CHECK_INT (ob_link_owner_name (n, buf, sizeof buf), 0);
  CHECK_INT (strlen (buf), XATTR_NAME_MAX);
  n[236] = 'x';
  n[237] = '\0';
  CHECK_INT (ob_link_owner_name (n, buf, sizeof buf), -1);
  n[236] = '\0';
  CHECK_INT (ob_link_owner_name (n, buf, 100), -1); /* buffer too small */
}

TEST (set_get_remove)
{
  char d[PATH_MAX], v[64], n[300];
  uint32_t u = 0, g = 0;
  int dfd;
  if (!user_xattrs)
    {
      printf ("# skip: no user xattrs on %s\n", tmpdir);
      return;
    }
  snprintf (d, sizeof d, "%s/sgr", tmpdir);
  CHECK_INT (mkdir (d, 0755), 0);
  dfd = open (d, O_PATH | O_DIRECTORY);
  CHECK (dfd >= 0);
  CHECK (!ob_link_owner_get (dfd, "l", "t", &u, &g));
  CHECK_INT (ob_link_owner_set (dfd, "l", "t", 7, 8), 0);
  CHECK (ob_link_owner_get (dfd, "l", "t", &u, &g));
  CHECK_INT (u, 7);
  CHECK_INT (g, 8);
  CHECK (!ob_link_owner_get (dfd, "l", "other", &u, &g));
  CHECK (!ob_link_owner_get (dfd, "m", "t", &u, &g));
  CHECK_INT (getxattr (d, "user.obuild.lowner.l", v, sizeof v), 10 + 16 - 6);
  /* another owner replaces it; root removes it */
  CHECK_INT (ob_link_owner_set (dfd, "l", "t", 9, 0), 0);
  CHECK (ob_link_owner_get (dfd, "l", "t", &u, &g) && u == 9 && g == 0);
  CHECK_INT (ob_link_owner_set (dfd, "l", "t", 0, 0), 0);
  CHECK (!ob_link_owner_get (dfd, "l", "t", &u, &g));
  errno = 0;
  CHECK (getxattr (d, "user.obuild.lowner.l", v, sizeof v) < 0 && errno == ENODATA);
  CHECK_INT (ob_link_owner_set (dfd, "l", "t", 0, 0), 0); /* nothing to remove */
  /* a record saying 0:0 (written by hand) is no owner */
  CHECK_INT (setxattr (d, "user.obuild.lowner.z", "0:0:0000000000000000", 20, 0), 0);
  CHECK (!ob_link_owner_get (dfd, "z", "t", &u, &g));
  /* a name too long for an xattr: nothing recorded, no error */
  memset (n, 'y', sizeof n);
  n[250] = '\0';
  CHECK_INT (ob_link_owner_set (dfd, n, "t", 5, 5), 0);
  CHECK (!ob_link_owner_get (dfd, n, "t", &u, &g));
  close (dfd);
}

/* Write a layer of upper's entries (paths) into out; owners unmapped or not. */
static int
write_upper (const char *upper, const char *const *paths, size_t n, const char *out, bool unmapped)
{
  struct ob_change items[8];
  struct ob_changes ch = { items, n };
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  struct ob_layer_result r = { 0 };
  ob_error_t err = NULL;
  int ufd = open (upper, O_RDONLY | O_DIRECTORY);
  int ofd = open (out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int ret;
  for (size_t i = 0; i < n; i++)
    {
      items[i].path = (char *) paths[i];
      items[i].kind = OB_CHANGE_ENTRY;
    }
  ob_layer_set_owners_unmapped (unmapped);
  ret = ob_layer_write (ufd, &ch, ofd, &opts, &r, &err);
  ob_layer_set_owners_unmapped (false);
  if (ret < 0)
    printf ("# %s\n", err ? err->msg : "?");
  ob_error_free (&err);
  close (ufd);
  close (ofd);
  return ret;
}

/* "name uid:gid" of each entry, and "name has xattr X" for each record. */
static char *
list_tar (const char *path)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  char *out = ob_xstrdup ("");
  archive_read_support_format_all (a);
  if (archive_read_open_filename (a, path, 10240) != ARCHIVE_OK)
    return out;
  while (archive_read_next_header (a, &e) == ARCHIVE_OK)
    {
      const char *xn;
      const void *xv;
      size_t xs;
      char *t = ob_xasprintf ("%s%s %lld:%lld\n", out, archive_entry_pathname (e),
                              (long long) archive_entry_uid (e), (long long) archive_entry_gid (e));
      free (out);
      out = t;
      archive_entry_xattr_reset (e);
      while (archive_entry_xattr_next (e, &xn, &xv, &xs) == ARCHIVE_OK)
        {
          t = ob_xasprintf ("%s%s has xattr %s\n", out, archive_entry_pathname (e), xn);
          free (out);
          out = t;
        }
    }
  archive_read_free (a);
  return out;
}

TEST (layer_writer_uses_the_record)
{
  char up[PATH_MAX], d[PATH_MAX], out[PATH_MAX];
  const char *paths[] = { "d", "d/l", "d/m", "d/n" };
  char *got;
  int dfd;
  if (!user_xattrs)
    {
      printf ("# skip: no user xattrs on %s\n", tmpdir);
      return;
    }
  snprintf (up, sizeof up, "%s/up", tmpdir);
  snprintf (d, sizeof d, "%s/up/d", tmpdir);
  snprintf (out, sizeof out, "%s/l.tar", tmpdir);
  CHECK_INT (mkdir (up, 0755), 0);
  CHECK_INT (mkdir (d, 0755), 0);
  dfd = open (d, O_RDONLY | O_DIRECTORY);
  CHECK_INT (symlinkat ("target", dfd, "l"), 0);
  CHECK_INT (symlinkat ("elsewhere", dfd, "m"), 0);
  CHECK_INT (symlinkat ("t", dfd, "n"), 0);
  CHECK_INT (ob_link_owner_set (dfd, "l", "target", 1500, 1501), 0);
  /* m's record is for another target (an earlier link of that name) */
  CHECK_INT (ob_link_owner_set (dfd, "m", "target", 7, 7), 0);
  CHECK_INT (setxattr (d, "user.keep", "v", 1, 0), 0);
  close (dfd);

  CHECK_INT (write_upper (up, paths, 4, out, true), 0);
  got = list_tar (out);
  CHECK_STR (got, "d/ 0:0\nd/ has xattr user.keep\nd/l 1500:1501\nd/m 0:0\nd/n 0:0\n");
  free (got);
  /* the owners the inode has (single-ID mode's namespace: root), but the
   * record's, as a file's OB_LAYER_OWNER_XATTR */
  CHECK_INT (write_upper (up, paths, 4, out, false), 0);
  got = list_tar (out);
  {
    char want[256];
    snprintf (want, sizeof want, "d/ %u:%u\nd/ has xattr user.keep\nd/l 1500:1501\nd/m %u:%u\nd/n %u:%u\n",
              getuid (), getgid (), getuid (), getgid (), getuid (), getgid ());
    CHECK_STR (got, want);
  }
  free (got);
}

/* A tar whose directory carries a forged record for its symlink. */
static void
forged_tar (const char *path)
{
  struct archive *a = archive_write_new ();
  struct archive_entry *e = archive_entry_new ();
  char v[OB_LINK_OWNER_VALUE_MAX];
  ob_link_owner_format (66, 66, "x", v);
  archive_write_set_format_pax (a);
  archive_write_set_format_option (a, "pax", "xattrheader", "SCHILY");
  archive_write_open_filename (a, path);
  archive_entry_set_pathname (e, "d/");
  archive_entry_set_filetype (e, AE_IFDIR);
  archive_entry_set_perm (e, 0755);
  archive_entry_xattr_add_entry (e, "user.obuild.lowner.l", v, strlen (v));
  archive_entry_xattr_add_entry (e, "user.other", "o", 1);
  archive_write_header (a, e);
  archive_entry_clear (e);
  archive_entry_set_pathname (e, "d/l");
  archive_entry_set_filetype (e, AE_IFLNK);
  archive_entry_set_perm (e, 0777);
  archive_entry_set_symlink (e, "x");
  archive_write_header (a, e);
  archive_entry_free (e);
  archive_write_close (a);
  archive_write_free (a);
}

TEST (forged_records_in_archives_ignored)
{
  char tar[PATH_MAX], root[PATH_MAX], d[PATH_MAX], v[64], imp[PATH_MAX];
  ob_error_t err = NULL;
  struct ob_layer_opts opts = { .compression = OB_COMPRESS_NONE };
  struct ob_layer_result r = { 0 };
  int in, rfd, ofd;
  char *got;
  snprintf (tar, sizeof tar, "%s/forged.tar", tmpdir);
  snprintf (root, sizeof root, "%s/root", tmpdir);
  snprintf (d, sizeof d, "%s/root/d", tmpdir);
  snprintf (imp, sizeof imp, "%s/imported.tar", tmpdir);
  forged_tar (tar);
  /* the unpacker never writes a record it reads from an archive */
  CHECK_INT (mkdir (root, 0755), 0);
  in = open (tar, O_RDONLY);
  rfd = open (root, O_RDONLY | O_DIRECTORY);
  CHECK_INT (ob_layer_extract (in, rfd, "/", true, true, &err), 0);
  ob_error_free (&err);
  errno = 0;
  CHECK (getxattr (d, "user.obuild.lowner.l", v, sizeof v) < 0);
  CHECK (errno == ENODATA || errno == ENOTSUP);
  if (user_xattrs)
    CHECK_INT (getxattr (d, "user.other", v, sizeof v), 1);
  close (in);
  close (rfd);
  /* nor does import keep it */
  in = open (tar, O_RDONLY);
  ofd = open (imp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CHECK_INT (ob_layer_import (in, ofd, &opts, &r, &err), 0);
  ob_error_free (&err);
  close (in);
  close (ofd);
  got = list_tar (imp);
  CHECK_STR (got, "d/ 0:0\nd/ has xattr user.other\nd/l 0:0\n");
  free (got);
}

int
main (void)
{
  char tmpl[] = "/tmp/obuild-test-link-owner-XXXXXX";
  tmpdir = mkdtemp (tmpl);
  if (tmpdir == NULL)
    {
      printf ("Bail out! mkdtemp: %s\n", strerror (errno));
      return 1;
    }
  user_xattrs = setxattr (tmpdir, "user.probe", "1", 1, 0) == 0;
  if (user_xattrs)
    removexattr (tmpdir, "user.probe");
  RUN (format_and_parse);
  RUN (parse_rejects_malformed);
  RUN (names);
  RUN (set_get_remove);
  RUN (layer_writer_uses_the_record);
  RUN (forged_records_in_archives_ignored);
  {
    ob_error_t err = NULL;
    int fd = open ("/", O_RDONLY | O_DIRECTORY);
    if (ob_rm_rf_at (fd, tmpdir + 1, &err) < 0)
      ob_error_free (&err);
    close (fd);
  }
  TAP_DONE ();
}
