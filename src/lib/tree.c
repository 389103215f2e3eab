#include "config.h"
#include <obuild/layer.h>
#include <obuild/tree.h>
#include <obuild/util.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

/* A node's children are an array in the order the layers gave them (what
 * ob_tree_children lists), and, once there are more than KIDS_LINEAR of
 * them, a balanced search tree too (tsearch): a directory of a million
 * entries, in any order and with any names, costs O(log n) a lookup, and no
 * crafted names can make it O(n) the way they could a hash. */
#define KIDS_LINEAR 8

struct node
{
  struct ob_tree_stat st;
  char *link;
  struct node **kids;
  size_t n_kids, cap_kids;
  void *index;  /* tsearch root over kids, or NULL */
  size_t pos;   /* in the parent's kids */
  size_t name_len;
  char name[];  /* NUL-terminated */
};

struct ob_tree
{
  struct node *root;
  /* the directory the last entry went into (layers list a directory's
   * entries together): its path as written and its node; NULL after any
   * removal */
  struct ob_buf last_dir;
  struct node *last_node;
  struct ob_buf scratch; /* apply's copy of an entry's name */
};

static int
node_cmp (const void *a, const void *b)
{
  const struct node *x = a, *y = b;
  if (x->name_len != y->name_len)
    return x->name_len < y->name_len ? -1 : 1;
  return memcmp (x->name, y->name, x->name_len);
}

static void
no_free (void *p)
{
  (void) p;
}

static struct node *
node_new (const char *name, size_t len)
{
  struct node *c = ob_xmalloc0 (sizeof *c + len + 1);
  memcpy (c->name, name, len);
  c->name_len = len;
  c->st.mode = S_IFDIR | 0755;
  return c;
}

/* Free every node below n (an explicit stack, not recursion: a layer's
 * path may be hundreds of thousands of directories deep). */
static void
node_free_children (struct node *n)
{
  struct node **stack = NULL;
  size_t depth = 0, cap = 0;
  struct node *c = n;
  for (;;)
    {
      if (c->index)
        tdestroy (c->index, no_free);
      c->index = NULL;
      if (depth + c->n_kids > cap)
        {
          cap = (depth + c->n_kids) * 2;
          stack = ob_xrealloc (stack, cap * sizeof *stack);
        }
      if (c->n_kids > 0)
        memcpy (stack + depth, c->kids, c->n_kids * sizeof *stack);
      depth += c->n_kids;
      free (c->kids);
      c->kids = NULL;
      c->n_kids = c->cap_kids = 0;
      if (c != n)
        {
          free (c->link);
          free (c);
        }
      if (depth == 0)
        break;
      c = stack[--depth];
    }
  free (stack);
}

struct ob_tree *
ob_tree_new (void)
{
  struct ob_tree *t = ob_xmalloc0 (sizeof *t);
  t->root = node_new ("", 0);
  return t;
}

void
ob_tree_free (struct ob_tree *t)
{
  if (t == NULL)
    return;
  node_free_children (t->root);
  free (t->root);
  ob_buf_free (&t->last_dir);
  ob_buf_free (&t->scratch);
  free (t);
}

static struct node *
child (struct node *n, const char *name, size_t len)
{
  if (n->index)
    {
      /* a probe: node_cmp reads only name_len and name */
      _Alignas (struct node) char buf[sizeof (struct node) + 64];
      struct node *probe = (struct node *) buf;
      cleanup_free struct node *big = NULL;
      if (len >= 64)
        probe = big = ob_xmalloc (sizeof *big + len + 1);
      probe->name_len = len;
      memcpy (probe->name, name, len);
      probe->name[len] = '\0';
      void **hit = tfind (probe, &n->index, node_cmp);
      return hit ? *hit : NULL;
    }
  for (size_t i = 0; i < n->n_kids; i++)
    if (n->kids[i]->name_len == len && memcmp (n->kids[i]->name, name, len) == 0)
      return n->kids[i];
  return NULL;
}

static void
index_add (struct node *n, struct node *c)
{
  if (tsearch (c, &n->index, node_cmp) == NULL)
    ob_oom ();
}

static struct node *
add_child (struct node *n, const char *name, size_t len)
{
  struct node *c = node_new (name, len);
  if (n->n_kids == n->cap_kids)
    {
      n->cap_kids = n->cap_kids ? n->cap_kids * 2 : 8;
      n->kids = ob_xrealloc (n->kids, n->cap_kids * sizeof *n->kids);
    }
  c->pos = n->n_kids;
  n->kids[n->n_kids++] = c;
  if (n->index)
    index_add (n, c);
  else if (n->n_kids > KIDS_LINEAR)
    for (size_t i = 0; i < n->n_kids; i++)
      index_add (n, n->kids[i]);
  return c;
}

static void
remove_child (struct node *n, struct node *c)
{
  size_t i = c->pos;
  if (i >= n->n_kids || n->kids[i] != c)
    return;
  if (n->index)
    tdelete (c, &n->index, node_cmp);
  node_free_children (c);
  free (c->link);
  free (c);
  if (i < --n->n_kids)
    {
      n->kids[i] = n->kids[n->n_kids];
      n->kids[i]->pos = i;
    }
}

/* Walk a relative, cleaned path; create missing directories when create. */
static struct node *
walk (struct ob_tree *t, const char *path, bool create, struct node **parent_out)
{
  struct node *n = t->root, *parent = NULL;
  const char *p = path;
  while (*p == '/')
    p++;
  while (*p)
    {
      const char *e = strchr (p, '/');
      size_t len = e ? (size_t) (e - p) : strlen (p);
      if (len == 0 || (len == 1 && p[0] == '.'))
        {
          p += len + (e ? 1 : 0);
          continue;
        }
      struct node *c = child (n, p, len);
      if (c == NULL)
        {
          if (!create)
            return NULL;
          c = add_child (n, p, len);
        }
      parent = n;
      n = c;
      p += len;
      while (*p == '/')
        p++;
    }
  if (parent_out)
    *parent_out = parent;
  return n;
}

/* One tar entry, as the tree needs it. */
struct rec
{
  const char *name;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  int64_t mtime, size;
  const char *symlink;  /* or NULL */
  const char *hardlink; /* or NULL */
};

/* The node of `dir` (a cleaned relative path whose last component starts at
 * `base`), made if missing: its parent is found from the root once per
 * directory, not once per entry. */
static struct node *
entry_node (struct ob_tree *t, const char *dir, const char *base)
{
  size_t plen = base > dir ? (size_t) (base - dir - 1) : 0;
  size_t blen = strlen (base);
  struct node *parent, *c;
  if (blen == 1 && base[0] == '.')
    return walk (t, dir, true, NULL);
  if (t->last_node && t->last_dir.len == plen && memcmp (t->last_dir.data, dir, plen) == 0)
    parent = t->last_node;
  else
    {
      t->last_dir.len = 0;
      ob_buf_add (&t->last_dir, dir, plen);
      parent = walk (t, t->last_dir.data, true, NULL);
      t->last_node = parent;
    }
  c = child (parent, base, blen);
  return c ? c : add_child (parent, base, blen);
}

static void
apply (struct ob_tree *t, const struct rec *r)
{
  const char *name = r->name;
  char *dir, *base;
  size_t len;
  struct node *n, *parent;

  while (name[0] == '.' && name[1] == '/')
    name += 2;
  while (*name == '/')
    name++;
  len = strlen (name);
  while (len > 0 && name[len - 1] == '/')
    len--;
  if (len == 0 || (len == 1 && name[0] == '.'))
    return;
  t->scratch.len = 0;
  ob_buf_add (&t->scratch, name, len);
  dir = t->scratch.data;
  base = memrchr (dir, '/', len);
  base = base ? base + 1 : dir;
  if (base[0] == '.' && strncmp (base, ".wh.", 4) == 0)
    {
      t->last_node = NULL;
      if (strcmp (base, ".wh..wh..opq") == 0)
        {
          dir[base - dir] = '\0';
          n = walk (t, dir, false, NULL);
          if (n)
            node_free_children (n);
          return;
        }
      memmove (base, base + 4, strlen (base + 4) + 1);
      n = walk (t, dir, false, &parent);
      if (n && parent)
        remove_child (parent, n);
      return;
    }
  if (r->hardlink)
    {
      /* A hardlink has the metadata of its target. */
      const char *target = r->hardlink;
      while (ob_str_has_prefix (target, "./"))
        target += 2;
      struct node *tn = walk (t, target, false, NULL);
      n = walk (t, dir, true, NULL);
      if (tn && tn != n)
        n->st = tn->st;
      n->st.link = NULL;
      free (n->link);
      n->link = NULL;
      return;
    }
  n = entry_node (t, dir, base);
  if (!S_ISDIR (r->mode) && n->n_kids)
    {
      t->last_node = NULL;
      node_free_children (n);
    }
  n->st.mode = r->mode;
  n->st.uid = r->uid;
  n->st.gid = r->gid;
  n->st.mtime = r->mtime;
  n->st.size = r->size;
  free (n->link);
  n->link = r->symlink ? ob_xstrdup (r->symlink) : NULL;
  n->st.link = n->link;
}

/* The index of a layer: one line per tar entry, in order:
 * "mode uid gid mtime size\tname\tsymlink\thardlink", with \\, \t and \n
 * escaped in the strings. */
static void
put_escaped (struct ob_buf *b, const char *s)
{
  for (; s && *s; s++)
    {
      if (*s == '\\')
        ob_buf_adds (b, "\\\\");
      else if (*s == '\t')
        ob_buf_adds (b, "\\t");
      else if (*s == '\n')
        ob_buf_adds (b, "\\n");
      else
        ob_buf_addc (b, *s);
    }
}

static char *
unescape (char *s)
{
  char *o, *r = strchr (s, '\\');
  if (r == NULL)
    return s;
  for (o = r; *r; r++)
    {
      if (*r == '\\' && r[1])
        {
          r++;
          *o++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
        }
      else
        *o++ = *r;
    }
  *o = '\0';
  return s;
}

static void
index_line (struct ob_buf *index, const struct rec *rc)
{
  char head[128];
  snprintf (head, sizeof head, "%o %u %u %lld %lld\t", (unsigned) rc->mode, (unsigned) rc->uid,
            (unsigned) rc->gid, (long long) rc->mtime, (long long) rc->size);
  ob_buf_adds (index, head);
  put_escaped (index, rc->name);
  ob_buf_addc (index, '\t');
  put_escaped (index, rc->symlink);
  ob_buf_addc (index, '\t');
  put_escaped (index, rc->hardlink);
  ob_buf_addc (index, '\n');
}

static int
read_tar (struct ob_tree *t, int fd, struct ob_buf *index, ob_error_t *err)
{
  struct archive *a = archive_read_new ();
  struct archive_entry *e;
  int r;

  ob_layer_reader_filters (a); /* never all: see layer.h */
  archive_read_support_format_tar (a);
  archive_read_support_format_gnutar (a);
  if (lseek (fd, 0, SEEK_SET) < 0 || ob_layer_archive_open (a, fd) != ARCHIVE_OK)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "read layer: %s", archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  while ((r = archive_read_next_header (a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      struct rec rc = {
        .name = archive_entry_pathname (e),
        .mode = archive_entry_mode (e),
        .uid = archive_entry_uid (e),
        .gid = archive_entry_gid (e),
        .mtime = archive_entry_mtime (e),
        .size = archive_entry_size (e),
        .symlink = archive_entry_symlink (e),
        .hardlink = archive_entry_hardlink (e),
      };
      if (rc.name == NULL)
        continue;
      apply (t, &rc);
      if (index)
        index_line (index, &rc);
    }
  if (r != ARCHIVE_EOF)
    {
      ob_error_make (err, OB_ERR_IMAGE, 0, "read layer: %s", archive_error_string (a));
      archive_read_free (a);
      return -1;
    }
  archive_read_free (a);
  return 0;
}

/* An index file: "obuild-tree-v2 <diff_id>\n", the lines, then
 * "obuild-tree-end <hex>\n" with the sha256 of everything before it.  It
 * is written without fsync (a layer commit paid a journal commit for it):
 * what a crash can leave (an empty or torn file, or on a file system
 * without a journal the old blocks of another index) fails the check and
 * the layer is read again.  Version 1 files (no checksum) are not read. */
#define INDEX_HEAD "obuild-tree-v2 "
#define INDEX_END "obuild-tree-end "
#define INDEX_END_LEN (sizeof INDEX_END - 1 + OB_SHA256_HEX_LEN + 1)

static void
save_index (const struct ob_buf *body, const char *index_dir, const char *path, const char *diff_id)
{
  ob_error_t e2 = NULL;
  struct ob_buf f = { 0 };
  char sum[OB_DIGEST_LEN];
  ob_buf_adds (&f, INDEX_HEAD);
  ob_buf_adds (&f, diff_id);
  ob_buf_addc (&f, '\n');
  if (body->len > 0)
    ob_buf_add (&f, body->data, body->len);
  ob_sha256_digest (f.data, f.len, sum);
  ob_buf_adds (&f, INDEX_END);
  ob_buf_adds (&f, sum + 7);
  ob_buf_addc (&f, '\n');
  if (ob_mkdir_p_at (AT_FDCWD, index_dir, 0700, &e2) == 0)
    ob_write_file_unsynced_at (AT_FDCWD, path, f.data, f.len, 0600, &e2);
  ob_error_free (&e2);
  ob_buf_free (&f);
}

/* The lines of a whole index file of diff_id (NUL-terminated in data, in
 * place), or NULL. */
static char *
index_body (char *data, size_t len, const char *diff_id)
{
  size_t head = sizeof INDEX_HEAD - 1 + strlen (diff_id) + 1;
  char sum[OB_DIGEST_LEN];
  if (len < head + INDEX_END_LEN || strncmp (data, INDEX_HEAD, sizeof INDEX_HEAD - 1) != 0
      || strncmp (data + sizeof INDEX_HEAD - 1, diff_id, strlen (diff_id)) != 0 || data[head - 1] != '\n')
    return NULL;
  char *end = data + len - INDEX_END_LEN;
  if (strncmp (end, INDEX_END, sizeof INDEX_END - 1) != 0 || data[len - 1] != '\n' || (end > data && end[-1] != '\n'))
    return NULL;
  ob_sha256_digest (data, (size_t) (end - data), sum);
  if (strncmp (end + sizeof INDEX_END - 1, sum + 7, OB_SHA256_HEX_LEN) != 0)
    return NULL;
  *end = '\0';
  return data + head;
}

int
ob_tree_add_layer (struct ob_tree *t, int fd, ob_error_t *err)
{
  return read_tar (t, fd, NULL, err);
}

/* One number of a line's head, up to a space (sep) or the end (NUL):
 * digits of base 8 or 10 only, at most max, a '-' where neg is allowed. */
static bool
parse_num (const char **sp, unsigned base, bool neg_ok, unsigned long long max, char sep,
           long long *out)
{
  const char *s = *sp;
  bool neg = neg_ok && *s == '-';
  unsigned long long v = 0;
  s += neg;
  if (*s < '0' || *s >= (char) ('0' + base))
    return false;
  for (; *s >= '0' && *s < (char) ('0' + base); s++)
    {
      if (__builtin_mul_overflow (v, base, &v) || __builtin_add_overflow (v, (unsigned) (*s - '0'), &v) || v > max)
        return false;
    }
  if (*s != sep)
    return false;
  *out = neg ? -(long long) v : (long long) v;
  *sp = s + (sep != '\0');
  return true;
}

/* "mode uid gid mtime size" as index_line writes it (sscanf, then strtoul,
 * took most of a cached build's time) */
static bool
parse_head (const char *s, unsigned *mode, unsigned *uid, unsigned *gid, long long *mtime, long long *size)
{
  long long m, u, g;
  if (!parse_num (&s, 8, false, 0xffffffffULL, ' ', &m) || !parse_num (&s, 10, false, 0xffffffffULL, ' ', &u)
      || !parse_num (&s, 10, false, 0xffffffffULL, ' ', &g)
      || !parse_num (&s, 10, true, (unsigned long long) LLONG_MAX, ' ', mtime)
      || !parse_num (&s, 10, true, (unsigned long long) LLONG_MAX, '\0', size))
    return false;
  *mode = (unsigned) m;
  *uid = (unsigned) u;
  *gid = (unsigned) g;
  return true;
}

/* Apply the lines of an index (NUL-terminated, changed in place); a line
 * that does not parse is skipped. */
static void
apply_lines (struct ob_tree *t, char *body)
{
  for (char *line = body, *next; *line; line = next)
    {
      char *f[4] = { NULL, NULL, NULL, NULL }, *p = line;
      next = strchr (line, '\n');
      if (next)
        *next++ = '\0';
      else
        next = line + strlen (line);
      if (*line == '\0')
        continue;
      unsigned mode, uid, gid;
      long long mtime, size;
      for (int i = 0; i < 4; i++)
        {
          f[i] = p;
          p = p ? strchr (p, '\t') : NULL;
          if (p)
            *p++ = '\0';
        }
      if (f[1] == NULL || !parse_head (f[0], &mode, &uid, &gid, &mtime, &size))
        continue;
      struct rec rc = { unescape (f[1]), mode, uid, gid, mtime, size,
                        f[2] && *f[2] ? unescape (f[2]) : NULL, f[3] && *f[3] ? unescape (f[3]) : NULL };
      apply (t, &rc);
    }
}

int
ob_tree_add_layer_indexed (struct ob_tree *t, const char *index_dir, const char *diff_id, int fd,
                           ob_error_t *err)
{
  cleanup_free char *path = NULL;
  cleanup_free char *data = NULL;
  struct ob_buf idx = { 0 };
  size_t len;
  ob_error_t e2 = NULL;

  if (!ob_digest_valid (diff_id))
    return read_tar (t, fd, NULL, err);
  path = ob_xasprintf ("%s/%s", index_dir, diff_id + 7);
  char *body;
  if (ob_read_file_at (AT_FDCWD, path, &data, &len, &e2) == 0 && (body = index_body (data, len, diff_id)) != NULL)
    {
      apply_lines (t, body);
      return 0;
    }
  ob_error_free (&e2);
  /* first time: read the layer and keep its index for the next builds */
  if (read_tar (t, fd, &idx, err) < 0)
    {
      ob_buf_free (&idx);
      return -1;
    }
  save_index (&idx, index_dir, path, diff_id);
  ob_buf_free (&idx);
  return 0;
}

struct ob_tree_index
{
  struct ob_buf b;
};

struct ob_tree_index *
ob_tree_index_new (void)
{
  return ob_xmalloc0 (sizeof (struct ob_tree_index));
}

void
ob_tree_index_note (void *index, const struct ob_layer_entry_info *e)
{
  struct ob_tree_index *x = index;
  struct rec rc = { e->name, e->mode, e->uid, e->gid, e->mtime, e->size, e->symlink, e->hardlink };
  index_line (&x->b, &rc);
}

void
ob_tree_add_index (struct ob_tree *t, const struct ob_tree_index *x)
{
  cleanup_free char *copy = NULL;
  if (x == NULL || x->b.len == 0)
    return;
  copy = ob_xstrndup (x->b.data, x->b.len);
  apply_lines (t, copy);
}

void
ob_tree_index_save (struct ob_tree_index *x, const char *index_dir, const char *diff_id)
{
  cleanup_free char *path = NULL;
  struct stat st;
  if (x == NULL || !ob_digest_valid (diff_id))
    return;
  path = ob_xasprintf ("%s/%s", index_dir, diff_id + 7);
  if (stat (path, &st) == 0)
    return;
  save_index (&x->b, index_dir, path, diff_id);
}

void
ob_tree_index_free (struct ob_tree_index *x)
{
  if (x == NULL)
    return;
  ob_buf_free (&x->b);
  free (x);
}

const struct ob_tree_stat *
ob_tree_lookup (struct ob_tree *t, const char *path)
{
  struct node *n = walk (t, path, false, NULL);
  return n ? &n->st : NULL;
}

long
ob_tree_children (struct ob_tree *t, const char *path, void (*fn) (void *data, const char *name),
                  void *data)
{
  struct node *n = walk (t, path, false, NULL);
  if (n == NULL || !S_ISDIR (n->st.mode))
    return -1;
  for (size_t i = 0; i < n->n_kids; i++)
    fn (data, n->kids[i]->name);
  return (long) n->n_kids;
}

/* Components of a path, resolved into a stack of names, each with its node
 * (NULL where the image has nothing): a step costs a lookup among one
 * directory's children, whatever the depth, and the path is never copied
 * but where a symlink replaces a part of it (at most 40 times). */
char *
ob_tree_resolve (struct ob_tree *t, const char *path, bool follow_last)
{
  struct comp
  {
    char *name;
    struct node *node;
  } *stack = NULL;
  size_t depth = 0, cap = 0, pos = 0;
  int links = 0;
  char *rest = ob_xstrdup (path);
  struct ob_buf out = { 0 };

  for (;;)
    {
      while (rest[pos] == '/')
        pos++;
      if (rest[pos] == '\0')
        break;
      const char *p = rest + pos;
      const char *e = strchr (p, '/');
      size_t len = e ? (size_t) (e - p) : strlen (p);
      pos += len;
      bool last = rest[pos + strspn (rest + pos, "/")] == '\0';
      if (len == 1 && p[0] == '.')
        continue;
      if (len == 2 && p[0] == '.' && p[1] == '.')
        {
          if (depth > 0)
            free (stack[--depth].name);
          continue;
        }
      struct node *parent = depth > 0 ? stack[depth - 1].node : t->root;
      struct node *n = parent ? child (parent, p, len) : NULL;
      if (n && S_ISLNK (n->st.mode) && n->link && (!last || follow_last) && links < 40)
        {
          links++;
          char *nrest = ob_xasprintf ("%s/%s", n->link, rest + pos);
          if (n->link[0] == '/')
            while (depth > 0)
              free (stack[--depth].name);
          free (rest);
          rest = nrest;
          pos = 0;
          continue;
        }
      if (depth == cap)
        {
          cap = cap ? cap * 2 : 16;
          stack = ob_xrealloc (stack, cap * sizeof *stack);
        }
      stack[depth].name = ob_xstrndup (p, len);
      stack[depth++].node = n;
    }
  free (rest);
  for (size_t i = 0; i < depth; i++)
    {
      ob_buf_addc (&out, '/');
      ob_buf_adds (&out, stack[i].name);
      free (stack[i].name);
    }
  free (stack);
  if (out.len == 0)
    ob_buf_addc (&out, '/');
  return ob_buf_steal (&out);
}
