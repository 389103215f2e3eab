/* build: stages side by side (--jobs N), the scheduler's second half.
 *
 * Before the build's own pass over its stages, the stages the target needs
 * (except the target) are built by child processes, each a fork of the
 * build taken when every stage it needs is done, up to N at once.  A child
 * shares the build's user and mount namespaces and its transaction's
 * staging directory; it replays the stages it needs (all their steps are
 * in the cache by then), builds its own, and sends back over a pipe, in
 * messages: its progress events (the renderer stays in the parent), the
 * blobs it staged, the cache entries it recorded and the upper directories
 * to keep as unpacked layers; or its error.  The parent adopts blobs and
 * entries into its own transaction and cache, so that its pass finds every
 * step of those stages done (ob_cache_in_session: counted as run by this
 * build, even with --no-cache), and nothing is published unless the whole
 * build succeeds.  The image is the one `--jobs 1` gives: the same steps,
 * keys and timestamps (a child is a fork: the same `created`).
 *
 * The first failure stops the others (SIGTERM, which a child handles as an
 * interrupt: its step's sandbox ends, its mounts go) and is the build's
 * error.  Not used with --isolation=container (one root for all). */
#include "config.h"
#include "build_priv.h"
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum
{
  M_EVENT,
  M_LOG,
  M_BLOB,
  M_CACHE,
  M_ADOPT,
  M_ERROR,
  M_DONE,
};

/* A message is a 4-byte length, then a kind byte and the payload. */
#define MSG_MAX (64u << 20)

/* ---- the child's side ---- */

struct chan
{
  int fd;
  pthread_mutex_t mu; /* the RUN output reader thread sends too */
};

static void
chan_send (struct chan *c, int kind, const void *data, size_t len)
{
  uint32_t n = (uint32_t) len + 1;
  unsigned char k = (unsigned char) kind;
  struct ob_buf b = { 0 };
  if (len + 1 > MSG_MAX)
    return;
  ob_buf_add (&b, &n, sizeof n);
  ob_buf_add (&b, &k, 1);
  ob_buf_add (&b, data, len);
  pthread_mutex_lock (&c->mu);
  for (size_t off = 0; off < b.len;)
    {
      ssize_t w = write (c->fd, b.data + off, b.len - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        break; /* the parent is gone: it kills us anyway */
      off += (size_t) w;
    }
  pthread_mutex_unlock (&c->mu);
  ob_buf_free (&b);
}

static void
put_u64 (struct ob_buf *b, uint64_t v)
{
  ob_buf_add (b, &v, sizeof v);
}

/* A string as its length (all ones: NULL) and its bytes with their NUL. */
static void
put_str (struct ob_buf *b, const char *s, size_t len)
{
  put_u64 (b, s ? (uint64_t) len : UINT64_MAX);
  if (s)
    {
      ob_buf_add (b, s, len);
      ob_buf_addc (b, '\0');
    }
}

static void
put_cstr (struct ob_buf *b, const char *s)
{
  put_str (b, s, s ? strlen (s) : 0);
}

static void
child_event (void *data, const struct ob_event *ev)
{
  struct ob_buf b = { 0 };
  put_u64 (&b, (uint64_t) ev->type);
  put_cstr (&b, ev->text);
  put_u64 (&b, (uint64_t) (int64_t) ev->stage);
  put_cstr (&b, ev->stage_name);
  put_u64 (&b, ev->step);
  put_u64 (&b, ev->total_steps);
  put_cstr (&b, ev->instruction);
  put_u64 (&b, ev->cached);
  put_u64 (&b, ev->failed);
  put_cstr (&b, ev->layer_digest);
  put_u64 (&b, (uint64_t) ev->layer_size);
  put_u64 (&b, (uint64_t) ev->layer_precompressed);
  put_u64 (&b, (uint64_t) ev->duration_ns);
  put_str (&b, ev->data, ev->len);
  put_u64 (&b, (uint64_t) ev->xfer);
  put_u64 (&b, ev->push);
  put_cstr (&b, ev->ref);
  put_cstr (&b, ev->digest);
  put_u64 (&b, (uint64_t) ev->done);
  put_u64 (&b, (uint64_t) ev->total);
  chan_send (data, M_EVENT, b.data, b.len);
  ob_buf_free (&b);
}

static void
child_log (void *data, const char *line)
{
  chan_send (data, M_LOG, line, strlen (line));
}

static void
child_send_strs (struct chan *c, int kind, char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    chan_send (c, kind, v[i], strlen (v[i]));
}

/* More stages than this are built one after another: the dependency
 * closure below is n x n. */
#define MAX_STAGES 256

/* closure[a * n + d]: stage a needs stage d, directly or not.  Computed once
 * in the stages' order (a stage needs only earlier ones): a recursive walk
 * per question would follow every path, and a Dockerfile whose stages each
 * need the two before them has exponentially many. */
static bool *
dep_closure (struct build *b)
{
  size_t n = b->n_stages;
  bool *c = ob_xmalloc0 (n * n * sizeof *c);
  for (size_t a = 0; a < n; a++)
    for (size_t i = 0; i < b->stages[a].n_deps; i++)
      {
        size_t d = b->stages[a].deps[i];
        c[a * n + d] = true;
        for (size_t k = 0; k < n; k++)
          c[a * n + k] |= c[d * n + k];
      }
  return c;
}

static bool
needs (struct build *b, size_t a, size_t dep)
{
  return b->dep_closure[a * b->n_stages + dep];
}

/* The number of the stage's first step, as the build's pass numbers it. */
static size_t
first_step (struct build *b, size_t si)
{
  size_t n = 0;
  for (size_t i = 0; i < si; i++)
    if (b->stages[i].needed)
      n += b->stages[i].end - b->stages[i].first;
  return n;
}

static __attribute__ ((noreturn)) void
child_main (struct build *b, size_t si, int fd)
{
  struct chan ch = { .fd = fd };
  struct ob_build_opts co = *b->o;
  ob_error_t err = NULL;
  int r = 0;

  pthread_mutex_init (&ch.mu, NULL);
  /* everything the renderer shows comes back as events; a RUN's output too,
   * so that its lines carry the stage */
  if (co.event)
    {
      co.event = child_event;
      co.event_data = &ch;
      co.capture_output = true;
    }
  co.source.registry.event = co.source.registry.event ? child_event : NULL;
  co.source.registry.event_data = &ch;
  co.log = co.log ? child_log : NULL;
  co.log_data = &ch;
  b->o = &co;
  b->concurrent = true;
  for (size_t i = 0; r == 0 && i < si; i++)
    if (b->stages[i].needed && needs (b, si, i))
      {
        b->quiet = true;
        r = ob_build_build_stage (b, &b->stages[i], &err);
      }
  b->quiet = false;
  b->step = first_step (b, si);
  if (r == 0)
    r = ob_build_build_stage (b, &b->stages[si], &err);
  if (r < 0)
    {
      struct ob_buf m = { 0 };
      put_u64 (&m, (uint64_t) (err ? err->kind : OB_ERR_GENERIC));
      put_cstr (&m, err ? err->msg : "failed");
      chan_send (&ch, M_ERROR, m.data, m.len);
      ob_build_stage_unmount_all (b);
      _exit (1);
    }
  {
    cleanup_strv char **blobs = ob_txn_staged (b->txn);
    cleanup_strv char **entries = ob_cache_pending (b->cache);
    child_send_strs (&ch, M_BLOB, blobs);
    child_send_strs (&ch, M_CACHE, entries);
    child_send_strs (&ch, M_ADOPT, b->adopt_dirs);
  }
  ob_build_stage_unmount_all (b);
  chan_send (&ch, M_DONE, "", 0);
  /* nothing of the parent's to tear down: its transaction, scratch
   * directories and cache stay the parent's */
  _exit (0);
}

/* ---- the parent's side ---- */

struct job
{
  size_t stage;
  pid_t pid;
  int fd;
  struct ob_buf in;
  bool done;   /* sent M_DONE */
  bool failed; /* sent M_ERROR */
};

struct reader
{
  const unsigned char *p, *end;
  bool bad;
};

static uint64_t
get_u64 (struct reader *r)
{
  uint64_t v = 0;
  if ((size_t) (r->end - r->p) < sizeof v)
    {
      r->bad = true;
      return 0;
    }
  memcpy (&v, r->p, sizeof v);
  r->p += sizeof v;
  return v;
}

static const char *
get_str (struct reader *r, size_t *len)
{
  uint64_t n = get_u64 (r);
  const char *s;
  if (len)
    *len = 0;
  if (r->bad || n == UINT64_MAX)
    return NULL;
  if (n >= (uint64_t) (r->end - r->p) || r->p[n] != '\0')
    {
      r->bad = true;
      return NULL;
    }
  s = (const char *) r->p;
  r->p += n + 1;
  if (len)
    *len = (size_t) n;
  return s;
}

static void
relay_event (struct build *b, const unsigned char *p, size_t len)
{
  struct reader r = { p, p + len, false };
  struct ob_event ev;
  memset (&ev, 0, sizeof ev);
  ev.type = (int) get_u64 (&r);
  ev.text = get_str (&r, NULL);
  ev.stage = (int) (int64_t) get_u64 (&r);
  ev.stage_name = get_str (&r, NULL);
  ev.step = (size_t) get_u64 (&r);
  ev.total_steps = (size_t) get_u64 (&r);
  ev.instruction = get_str (&r, NULL);
  ev.cached = get_u64 (&r) != 0;
  ev.failed = get_u64 (&r) != 0;
  ev.layer_digest = get_str (&r, NULL);
  ev.layer_size = (int64_t) get_u64 (&r);
  ev.layer_precompressed = (int64_t) get_u64 (&r);
  ev.duration_ns = (int64_t) get_u64 (&r);
  ev.data = get_str (&r, &ev.len);
  ev.xfer = (int) get_u64 (&r);
  ev.push = get_u64 (&r) != 0;
  ev.ref = get_str (&r, NULL);
  ev.digest = get_str (&r, NULL);
  ev.done = (int64_t) get_u64 (&r);
  ev.total = (int64_t) get_u64 (&r);
  ev.concurrent = true;
  if (r.bad)
    return;
  /* transfers are the registry client's: to the callback it was given */
  if (ev.type == OB_EV_TRANSFER)
    {
      if (b->o->source.registry.event)
        b->o->source.registry.event (b->o->source.registry.event_data, &ev);
    }
  else if (b->o->event)
    b->o->event (b->o->event_data, &ev);
}

/* Handle the complete messages in j->in; -1 (err set) when the child
 * reported its failure or sent something this build cannot take. */
static int
dispatch (struct build *b, struct job *j, ob_error_t *err)
{
  size_t off = 0;
  int r = 0;
  while (r == 0 && j->in.len - off >= 5)
    {
      uint32_t n;
      const unsigned char *p;
      cleanup_free char *s = NULL;
      memcpy (&n, j->in.data + off, sizeof n);
      if (n == 0 || n > MSG_MAX)
        {
          r = ob_error_make (err, OB_ERR_GENERIC, 0, "stage %zu: bad message from its build process", j->stage);
          break;
        }
      if (j->in.len - off - 4 < n)
        break;
      p = (const unsigned char *) j->in.data + off + 4;
      off += 4 + n;
      if (p[0] != M_EVENT && p[0] != M_ERROR)
        s = ob_xstrndup ((const char *) p + 1, n - 1);
      switch (p[0])
        {
        case M_EVENT:
          relay_event (b, p + 1, n - 1);
          break;
        case M_LOG:
          if (b->o->log)
            b->o->log (b->o->log_data, s);
          break;
        case M_BLOB:
          r = ob_txn_adopt (b->txn, s, err);
          break;
        case M_CACHE:
          r = ob_cache_adopt (b->cache, s, err);
          break;
        case M_ADOPT:
          {
            bool have = false;
            for (size_t i = 0; !have && b->adopt_dirs && b->adopt_dirs[i]; i++)
              have = strcmp (b->adopt_dirs[i], s) == 0;
            if (!have)
              ob_strv_add (&b->adopt_dirs, s);
            break;
          }
        case M_ERROR:
          {
            struct reader rd = { p + 1, p + n, false };
            int kind = (int) get_u64 (&rd);
            const char *msg = get_str (&rd, NULL);
            j->failed = true;
            r = ob_error_make (err, rd.bad ? OB_ERR_GENERIC : kind, 0, "%s",
                               rd.bad || msg == NULL ? "a stage's build process failed" : msg);
            break;
          }
        case M_DONE:
          j->done = true;
          break;
        default:
          r = ob_error_make (err, OB_ERR_GENERIC, 0, "stage %zu: bad message from its build process", j->stage);
          break;
        }
    }
  memmove (j->in.data, j->in.data + off, j->in.len - off);
  j->in.len -= off;
  return r;
}

static const char *
stage_label (struct build *b, size_t si, char buf[32])
{
  if (b->stages[si].name)
    return b->stages[si].name;
  snprintf (buf, 32, "#%zu", si);
  return buf;
}

/* Wait for the child, which has closed its end; -1 (err set) unless it
 * finished its stage. */
static int
reap (struct build *b, struct job *j, ob_error_t *err)
{
  int st = 0;
  char buf[32];
  while (waitpid (j->pid, &st, 0) < 0 && errno == EINTR)
    ;
  j->pid = 0;
  close (j->fd);
  j->fd = -1;
  if (j->done && WIFEXITED (st) && WEXITSTATUS (st) == 0)
    return 0;
  if (j->failed)
    return -1;
  if (WIFSIGNALED (st))
    return ob_error_make (err, OB_ERR_GENERIC, 0, "stage %s: its build process was killed by signal %d",
                         stage_label (b, j->stage, buf), WTERMSIG (st));
  return ob_error_make (err, OB_ERR_GENERIC, 0, "stage %s: its build process ended without its result (status %d)",
                       stage_label (b, j->stage, buf), WIFEXITED (st) ? WEXITSTATUS (st) : -1);
}

/* Stop the children still running and wait for them: each ends its step
 * as on an interrupt (its mounts and processes go). */
static void
stop_all (struct job *jobs, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (jobs[i].pid > 0)
      kill (jobs[i].pid, SIGTERM);
  for (size_t i = 0; i < n; i++)
    if (jobs[i].pid > 0)
      {
        int st;
        while (waitpid (jobs[i].pid, &st, 0) < 0 && errno == EINTR)
          ;
        jobs[i].pid = 0;
        close (jobs[i].fd);
        jobs[i].fd = -1;
      }
}

static int
start (struct build *b, struct job *j, size_t si, ob_error_t *err)
{
  int fds[2];
  pid_t pid;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return ob_error_make (err, OB_ERR_GENERIC, errno, "pipe");
  fflush (NULL);
  pid = fork ();
  if (pid < 0)
    {
      int e = errno;
      close (fds[0]);
      close (fds[1]);
      return ob_error_make (err, OB_ERR_GENERIC, e, "fork");
    }
  if (pid == 0)
    {
      close (fds[0]);
      child_main (b, si, fds[1]);
    }
  close (fds[1]);
  memset (j, 0, sizeof *j);
  j->stage = si;
  j->pid = pid;
  j->fd = fds[0];
  return 0;
}

int
ob_build_jobs_prebuild (struct build *b, size_t target, ob_error_t *err)
{
  size_t n = b->n_stages, left = 0, running = 0, max = b->o->jobs;
  bool *done, *todo, side_by_side = false;
  struct job *jobs;
  int r = 0;

  if (max < 2 || b->o->container || n > MAX_STAGES)
    return 0;
  free (b->dep_closure);
  b->dep_closure = dep_closure (b);
  /* worth it only where two stages can be built at once */
  for (size_t i = 0; i < n && !side_by_side; i++)
    for (size_t k = i + 1; k < n && !side_by_side; k++)
      side_by_side = i != target && k != target && b->stages[i].needed && b->stages[k].needed && !needs (b, k, i);
  if (!side_by_side)
    return 0;
  done = ob_xmalloc0 (n * sizeof *done);
  todo = ob_xmalloc0 (n * sizeof *todo);
  jobs = ob_xmalloc0 (max * sizeof *jobs);
  for (size_t i = 0; i < max; i++)
    jobs[i].fd = -1;
  for (size_t i = 0; i < n; i++)
    if (i != target && b->stages[i].needed && !needs (b, i, target))
      {
        todo[i] = true;
        left++;
      }
  while (r == 0 && (left > 0 || running > 0))
    {
      struct pollfd pfd[64];
      size_t np = 0;
      /* start what is ready, in the stages' order */
      for (size_t i = 0; i < n && running < max; i++)
        {
          bool ready = todo[i];
          for (size_t d = 0; ready && d < b->stages[i].n_deps; d++)
            ready = done[b->stages[i].deps[d]];
          if (!ready)
            continue;
          for (size_t k = 0; k < max; k++)
            if (jobs[k].pid == 0 || jobs[k].fd < 0)
              {
                if ((r = start (b, &jobs[k], i, err)) == 0)
                  {
                    todo[i] = false;
                    left--;
                    running++;
                  }
                break;
              }
          if (r < 0)
            break;
        }
      if (r < 0 || running == 0)
        break;
      for (size_t k = 0; k < max && np < 64; k++)
        if (jobs[k].pid > 0)
          {
            pfd[np].fd = jobs[k].fd;
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            np++;
          }
      if (poll (pfd, np, 100) < 0 && errno != EINTR)
        {
          r = ob_error_make (err, OB_ERR_GENERIC, errno, "poll");
          break;
        }
      if (b->o->interrupted && *b->o->interrupted)
        {
          r = ob_error_make (err, OB_ERR_INTERRUPTED, 0, "interrupted");
          break;
        }
      for (size_t q = 0; r == 0 && q < np; q++)
        {
          struct job *j = NULL;
          char buf[65536];
          ssize_t got;
          if (pfd[q].revents == 0)
            continue;
          for (size_t k = 0; k < max; k++)
            if (jobs[k].pid > 0 && jobs[k].fd == pfd[q].fd)
              j = &jobs[k];
          got = read (j->fd, buf, sizeof buf);
          if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
          if (got > 0)
            {
              ob_buf_add (&j->in, buf, (size_t) got);
              r = dispatch (b, j, err);
              continue;
            }
          /* end of its messages: it has exited or is about to */
          r = reap (b, j, err);
          running--;
          if (r == 0)
            {
              done[j->stage] = true;
              b->stages[j->stage].prebuilt = true;
            }
          ob_buf_free (&j->in);
        }
    }
  if (r < 0)
    stop_all (jobs, max);
  for (size_t k = 0; k < max; k++)
    ob_buf_free (&jobs[k].in);
  free (jobs);
  free (done);
  free (todo);
  return r;
}
