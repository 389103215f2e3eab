/* --progress renderers (see progress.h and obuild-build(1)).
 *
 * plain: the lines of the library's events as they come, each step's end
 *   with its duration; a RUN's output is the step's own (not captured).
 * tty: a live view redrawn at most ~10 times a second by a thread of its
 *   own: the running steps with their time and their last output lines,
 *   the registry transfers with bytes and rate; finished steps scroll up
 *   as one line each (CACHED, time), a RUN's last lines under it, a failed
 *   step's whole output.
 * quiet: nothing, but a failed step's output (the error itself is main's).
 * json: one object a line on standard error, the format documented in
 *   obuild-build(1) as stable.
 * Everything goes through one mutex: events come from the build, from the
 * RUN output reader and from the registry's transfer threads. */
#include "config.h"
#include "progress.h"
#include <obuild/util.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

void (*cli_error_reporter) (const char *msg, int code);

#define TAIL_LINES 6      /* a running step's last lines, live */
#define KEEP_LINES 5      /* ... kept under it when it is done */
#define FULL_MAX (1 << 20) /* a step's output kept for its failure */

struct pstep
{
  int stage;
  char *stage_name;
  size_t step, total;
  char *instr;
  bool running, failed, cached, shown;
  int64_t start, duration;
  char *tail[TAIL_LINES]; /* ring */
  size_t n_lines;         /* lines seen */
  struct ob_buf full;
  bool full_truncated;
};

struct pxfer
{
  char *digest, *ref;
  bool push, active;
  int64_t done, total, start;
};

struct cli_progress
{
  int mode;
  pthread_mutex_t mu;
  struct pstep *steps;
  size_t n_steps, cap_steps; /* grown by doubling: a Dockerfile may have 100,000 steps */
  struct pxfer *xfers;
  size_t n_xfers;
  struct ob_buf pending; /* lines to print above the live view */
  int live_lines;        /* lines of the live view on screen */
  int64_t t0;
  bool color;
  pthread_t ticker;
  bool ticking;
  volatile int stop;
};

static void json_error (const char *msg, int code);

int
cli_progress_mode (const char *opt, bool quiet, int *mode, ob_error_t *err)
{
  static const char *const names[] = { "auto", "plain", "tty", "quiet", "json" };
  const char *v = opt, *from = "--progress";
  if (opt && *opt == '\0')
    return ob_error_make (err, OB_ERR_USAGE, 0, "--progress ``: expected auto, plain, tty, quiet or json");
  if (v == NULL && quiet)
    v = "quiet";
  if (v == NULL && (v = getenv ("OBUILD_PROGRESS")) && *v)
    from = "OBUILD_PROGRESS";
  else if (v == NULL || *v == '\0')
    {
      v = getenv ("BUILDKIT_PROGRESS");
      from = "BUILDKIT_PROGRESS";
      /* BuildKit's json and rawjson are other formats: not taken for ours */
      if (v == NULL || *v == '\0' || strcmp (v, "json") == 0 || strcmp (v, "rawjson") == 0)
        v = "auto";
    }
  *mode = -1;
  for (int i = 0; i < 5; i++)
    if (strcmp (v, names[i]) == 0)
      *mode = i;
  if (*mode < 0)
    return ob_error_make (err, OB_ERR_USAGE, 0, "%s `%s`: expected auto, plain, tty, quiet or json", from, v);
  if (*mode == CLI_PROGRESS_JSON)
    cli_error_reporter = json_error;
  if (*mode == CLI_PROGRESS_AUTO)
    {
      const char *term = getenv ("TERM");
      *mode = isatty (2) && term && *term && strcmp (term, "dumb") != 0 ? CLI_PROGRESS_TTY : CLI_PROGRESS_PLAIN;
    }
  return 0;
}

bool
cli_progress_captures (const struct cli_progress *p)
{
  return p->mode != CLI_PROGRESS_PLAIN;
}

/* ---- text helpers ---- */

static int
term_width (void)
{
  struct winsize ws;
  if (ioctl (2, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
    return ws.ws_col;
  return 80;
}

/* A line of a RUN's output as one screen line: what follows its last \r
 * (progress bars redraw so), no escape sequence or control character,
 * tabs as spaces, at most width columns (a UTF-8 sequence counted as one). */
static char *
screen_text (const char *s, size_t n, int width)
{
  struct ob_buf b = { 0 };
  const char *cr = NULL;
  int cols = 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' && i + 1 < n)
      cr = s + i + 1;
  if (cr)
    {
      n -= cr - s;
      s = cr;
    }
  for (size_t i = 0; i < n; i++)
    {
      unsigned char c = (unsigned char) s[i];
      if (c == 0x1b)
        {
          /* CSI ... final byte, or ESC + one character */
          if (i + 1 < n && s[i + 1] == '[')
            {
              i += 2;
              while (i < n && !((unsigned char) s[i] >= 0x40 && (unsigned char) s[i] <= 0x7e))
                i++;
            }
          else
            i++;
          continue;
        }
      if (c < 0x20 || c == 0x7f)
        {
          if (c == '\t')
            do
              ob_buf_addc (&b, ' ');
            while (++cols % 8 != 0 && cols < width);
          continue;
        }
      if ((c & 0xc0) != 0x80)
        {
          /* a new character: only when it fits (so no sequence is cut) */
          if (cols >= width)
            break;
          cols++;
        }
      ob_buf_addc (&b, (char) c);
    }
  ob_buf_addc (&b, '\0');
  return ob_buf_steal (&b);
}

char *
cli_visible (const char *s)
{
  struct ob_buf b = { 0 };
  for (; *s; s++)
    {
      unsigned char c = (unsigned char) *s;
      if (c == '\n')
        ob_buf_adds (&b, "\\n");
      else if (c == '\r')
        ob_buf_adds (&b, "\\r");
      else if ((c < 0x20 && c != '\t') || c == 0x7f)
        {
          char hex[8];
          snprintf (hex, sizeof hex, "\\x%02x", c);
          ob_buf_adds (&b, hex);
        }
      else
        ob_buf_addc (&b, (char) c);
    }
  ob_buf_addc (&b, '\0');
  return ob_buf_steal (&b);
}

static char *
human_bytes (int64_t n)
{
  if (n >= 1000000000)
    return ob_xasprintf ("%.2f GB", n / 1e9);
  if (n >= 1000000)
    return ob_xasprintf ("%.1f MB", n / 1e6);
  if (n >= 1000)
    return ob_xasprintf ("%.1f kB", n / 1e3);
  return ob_xasprintf ("%lld B", (long long) n);
}

/* Valid UTF-8 for JSON: each invalid byte becomes U+FFFD. */
static json_t *
json_text (const char *s, size_t n)
{
  struct ob_buf b = { 0 };
  json_t *j;
  for (size_t i = 0; i < n;)
    {
      unsigned char c = (unsigned char) s[i];
      size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      bool ok = k > 0 && i + k <= n && c != 0;
      for (size_t q = 1; ok && q < k; q++)
        ok = ((unsigned char) s[i + q] & 0xc0) == 0x80;
      if (ok && k > 1)
        {
          /* and not overlong, a surrogate or past U+10FFFF: jansson refuses those */
          json_t *probe = json_stringn (s + i, k);
          ok = probe != NULL;
          json_decref (probe);
        }
      if (ok)
        {
          ob_buf_add (&b, s + i, k);
          i += k;
        }
      else
        {
          ob_buf_adds (&b, "\xef\xbf\xbd");
          i++;
        }
    }
  j = json_stringn (b.data ? b.data : "", b.len);
  ob_buf_free (&b);
  return j ? j : json_string ("");
}

static void
json_emit (json_t *o)
{
  char *line;
  struct timespec ts;
  struct tm tm;
  char when[40];
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (when + strlen (when), sizeof when - strlen (when), ".%03ldZ", ts.tv_nsec / 1000000);
  json_object_set_new (o, "time", json_string (when));
  line = json_dumps (o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (line)
    {
      fprintf (stderr, "%s\n", line);
      fflush (stderr);
    }
  free (line);
  json_decref (o);
}

static void
json_error (const char *msg, int code)
{
  json_t *o = json_object ();
  json_object_set_new (o, "event", json_string ("error"));
  json_object_set_new (o, "message", json_text (msg, strlen (msg)));
  json_object_set_new (o, "exit_code", json_integer (code));
  json_emit (o);
}

static const char *const xfer_names[] = { "start", "progress", "done", "exists", "mounted" };

static void
json_event (const struct ob_event *ev)
{
  static const char *const types[] = { "log", "warning", "step_start", "step_end", "output", "transfer" };
  json_t *o = json_object ();
  json_object_set_new (o, "event", json_string (types[ev->type]));
  if (ev->type != OB_EV_TRANSFER)
    {
      json_object_set_new (o, "stage", ev->stage >= 0 ? json_integer (ev->stage) : json_null ());
      json_object_set_new (o, "stage_name", ev->stage_name ? json_text (ev->stage_name, strlen (ev->stage_name)) : json_null ());
    }
  switch (ev->type)
    {
    case OB_EV_LOG:
    case OB_EV_WARNING:
      json_object_set_new (o, "message", json_text (ev->text, strlen (ev->text)));
      break;
    case OB_EV_STEP_START:
    case OB_EV_STEP_END:
    case OB_EV_OUTPUT:
      json_object_set_new (o, "step", json_integer ((json_int_t) ev->step));
      if (ev->type == OB_EV_OUTPUT)
        {
          json_object_set_new (o, "data", json_text (ev->data, ev->len));
          break;
        }
      json_object_set_new (o, "total_steps", json_integer ((json_int_t) ev->total_steps));
      json_object_set_new (o, "instruction", json_text (ev->instruction, strlen (ev->instruction)));
      if (ev->type != OB_EV_STEP_END)
        break;
      json_object_set_new (o, "cached", json_boolean (ev->cached));
      json_object_set_new (o, "failed", json_boolean (ev->failed));
      json_object_set_new (o, "duration_ms", json_integer (ev->duration_ns / 1000000));
      json_object_set_new (o, "layer_digest", ev->layer_digest ? json_string (ev->layer_digest) : json_null ());
      json_object_set_new (o, "layer_size", ev->layer_digest ? json_integer (ev->layer_size) : json_null ());
      json_object_set_new (o, "layer_precompressed",
                           ev->layer_digest ? json_integer (ev->layer_precompressed) : json_null ());
      break;
    case OB_EV_TRANSFER:
      json_object_set_new (o, "action", json_string (ev->push ? "push" : "pull"));
      json_object_set_new (o, "ref", json_text (ev->ref ? ev->ref : "", ev->ref ? strlen (ev->ref) : 0));
      json_object_set_new (o, "digest", json_string (ev->digest));
      json_object_set_new (o, "state", json_string (xfer_names[ev->xfer]));
      json_object_set_new (o, "done", json_integer (ev->done));
      json_object_set_new (o, "total", json_integer (ev->total));
      break;
    }
  json_emit (o);
}

/* ---- state shared by tty and quiet ---- */

static struct pstep *
find_step (struct cli_progress *p, const struct ob_event *ev)
{
  for (size_t i = p->n_steps; i-- > 0;)
    if (p->steps[i].stage == ev->stage && p->steps[i].step == ev->step)
      return &p->steps[i];
  return NULL;
}

static struct pstep *
add_step (struct cli_progress *p, const struct ob_event *ev)
{
  struct pstep *s;
  if (p->n_steps == p->cap_steps)
    {
      p->cap_steps = p->cap_steps ? p->cap_steps * 2 : 16;
      p->steps = ob_xrealloc (p->steps, p->cap_steps * sizeof *p->steps);
    }
  s = &p->steps[p->n_steps++];
  memset (s, 0, sizeof *s);
  s->stage = ev->stage;
  s->stage_name = ev->stage_name ? ob_xstrdup (ev->stage_name) : NULL;
  s->step = ev->step;
  s->total = ev->total_steps;
  s->instr = ob_xstrdup (ev->instruction ? ev->instruction : "");
  s->running = true;
  s->start = ob_progress_now ();
  return s;
}

static void
step_output (struct pstep *s, const char *data, size_t len)
{
  free (s->tail[s->n_lines % TAIL_LINES]);
  s->tail[s->n_lines % TAIL_LINES] = ob_xstrndup (data, len);
  s->n_lines++;
  if (s->full.len + len + 1 > FULL_MAX)
    {
      s->full_truncated = true;
      return;
    }
  ob_buf_add (&s->full, data, len);
  ob_buf_addc (&s->full, '\n');
}

/* "[2/5]", "[build 2/5]", "[stage-1 2/5]" */
static char *
step_label (const struct pstep *s)
{
  if (s->stage_name)
    return ob_xasprintf ("[%s %zu/%zu]", s->stage_name, s->step, s->total);
  if (s->stage > 0)
    return ob_xasprintf ("[stage-%d %zu/%zu]", s->stage, s->step, s->total);
  return ob_xasprintf ("[%zu/%zu]", s->step, s->total);
}

/* A line with the time at the right edge of width columns. */
static void
timed_line (struct ob_buf *out, const char *left, double secs, int width)
{
  char t[32];
  cleanup_free char *l = NULL;
  int tl = snprintf (t, sizeof t, "%.1fs", secs);
  int room = width - tl - 2; /* never the last column: no pending wrap */
  int cols = 0;
  l = screen_text (left, strlen (left), room > 10 ? room : 10);
  for (const char *c = l; *c; c++)
    cols += ((unsigned char) *c & 0xc0) != 0x80;
  ob_buf_adds (out, l);
  for (int i = cols; i < room; i++)
    ob_buf_addc (out, ' ');
  ob_buf_addc (out, ' ');
  ob_buf_adds (out, t);
  ob_buf_addc (out, '\n');
}

static void
pending_line (struct cli_progress *p, const char *pre, const char *text, const char *post)
{
  ob_buf_adds (&p->pending, pre);
  ob_buf_adds (&p->pending, text);
  ob_buf_adds (&p->pending, post);
  ob_buf_addc (&p->pending, '\n');
}

/* A finished step, for the scrolled part: its line, and its output (the
 * last lines, or all of it when it failed). */
static void
step_done_lines (struct cli_progress *p, struct pstep *s)
{
  int width = term_width ();
  cleanup_free char *label = step_label (s);
  cleanup_free char *left = ob_xasprintf ("=> %s%s %s", s->failed ? "ERROR " : s->cached ? "CACHED " : "", label, s->instr);
  s->shown = true;
  if (p->mode == CLI_PROGRESS_TTY)
    {
      if (s->failed && p->color)
        ob_buf_adds (&p->pending, "\033[31m");
      else if (s->cached && p->color)
        ob_buf_adds (&p->pending, "\033[34m");
      timed_line (&p->pending, left, s->duration / 1e9, width);
      if (p->color && (s->failed || s->cached))
        {
          /* the colour ends before the newline timed_line wrote */
          p->pending.len--;
          ob_buf_adds (&p->pending, "\033[0m\n");
        }
    }
  if (s->failed && s->n_lines > 0)
    {
      /* the whole output of a failed step: what one needs to fix it */
      cleanup_free char *hdr = ob_xasprintf (" > %s %s:", label, s->instr);
      const char *q = s->full.data, *end = s->full.data + s->full.len;
      pending_line (p, "", "------", "");
      pending_line (p, "", hdr, "");
      if (s->full_truncated)
        pending_line (p, "", " (the first MiB of the output)", "");
      while (q && q < end)
        {
          const char *nl = memchr (q, '\n', end - q);
          cleanup_free char *t = screen_text (q, nl - q, 1 << 20);
          pending_line (p, " ", t, "");
          q = nl + 1;
        }
      pending_line (p, "", "------", "");
    }
  else if (p->mode == CLI_PROGRESS_TTY && s->n_lines > 0)
    {
      size_t keep = s->n_lines < KEEP_LINES ? s->n_lines : KEEP_LINES;
      if (s->n_lines > keep)
        {
          cleanup_free char *more = ob_xasprintf ("   | (%zu earlier lines; --progress=plain shows all)", s->n_lines - keep);
          pending_line (p, "", more, "");
        }
      for (size_t i = s->n_lines - keep; i < s->n_lines; i++)
        {
          const char *t = s->tail[i % TAIL_LINES];
          cleanup_free char *line = screen_text (t, strlen (t), width - 6);
          pending_line (p, p->color ? "\033[2m   | " : "   | ", line, p->color ? "\033[0m" : "");
        }
    }
  for (size_t i = 0; i < TAIL_LINES; i++)
    {
      free (s->tail[i]);
      s->tail[i] = NULL;
    }
  ob_buf_free (&s->full);
}

static struct pxfer *
find_xfer (struct cli_progress *p, const struct ob_event *ev)
{
  for (size_t i = 0; i < p->n_xfers; i++)
    if (p->xfers[i].push == ev->push && strcmp (p->xfers[i].digest, ev->digest) == 0
        && strcmp (p->xfers[i].ref, ev->ref ? ev->ref : "") == 0)
      return &p->xfers[i];
  p->xfers = ob_xrealloc (p->xfers, (p->n_xfers + 1) * sizeof *p->xfers);
  memset (&p->xfers[p->n_xfers], 0, sizeof *p->xfers);
  p->xfers[p->n_xfers].digest = ob_xstrdup (ev->digest);
  p->xfers[p->n_xfers].ref = ob_xstrdup (ev->ref ? ev->ref : "");
  p->xfers[p->n_xfers].push = ev->push;
  p->xfers[p->n_xfers].start = ob_progress_now ();
  return &p->xfers[p->n_xfers++];
}

static char *
xfer_text (const struct pxfer *x, bool done)
{
  cleanup_free char *d = human_bytes (x->done);
  cleanup_free char *t = human_bytes (x->total);
  double secs = (ob_progress_now () - x->start) / 1e9;
  cleanup_free char *rate = human_bytes (secs > 0.05 ? (int64_t) (x->done / secs) : 0);
  if (done)
    return ob_xasprintf ("=> %s %.19s %s", x->push ? "pushed" : "pulled", x->digest, t);
  return ob_xasprintf ("=> %s %.19s %s / %s %s/s", x->push ? "pushing" : "pulling", x->digest, d, t, rate);
}

static void
tty_event (struct cli_progress *p, const struct ob_event *ev)
{
  struct pstep *s;
  switch (ev->type)
    {
    case OB_EV_LOG:
      if (p->mode == CLI_PROGRESS_TTY)
        pending_line (p, "", ev->text, "");
      break;
    case OB_EV_WARNING:
      if (p->mode == CLI_PROGRESS_TTY)
        pending_line (p, p->color ? "\033[33mWARNING: " : "WARNING: ", ev->text, p->color ? "\033[0m" : "");
      else
        fprintf (stderr, "obuild: warning: %s\n", ev->text);
      break;
    case OB_EV_STEP_START:
      add_step (p, ev);
      break;
    case OB_EV_STEP_END:
      s = find_step (p, ev);
      if (s == NULL)
        s = add_step (p, ev);
      s->running = false;
      s->failed = ev->failed;
      s->cached = ev->cached;
      s->duration = ev->duration_ns;
      if (p->mode == CLI_PROGRESS_TTY || s->failed)
        step_done_lines (p, s);
      else
        ob_buf_free (&s->full);
      break;
    case OB_EV_OUTPUT:
      s = find_step (p, ev);
      if (s == NULL)
        s = add_step (p, ev);
      step_output (s, ev->data, ev->len);
      break;
    case OB_EV_TRANSFER:
      {
        struct pxfer *x = find_xfer (p, ev);
        x->total = ev->total;
        x->done = ev->done;
        x->active = ev->xfer == OB_XFER_START || ev->xfer == OB_XFER_PROGRESS;
        if (!x->active && p->mode == CLI_PROGRESS_TTY)
          {
            cleanup_free char *t = NULL;
            if (ev->xfer == OB_XFER_DONE)
              {
                cleanup_free char *l = xfer_text (x, true);
                timed_line (&p->pending, l, (ob_progress_now () - x->start) / 1e9, term_width ());
              }
            else
              {
                t = ob_xasprintf ("=> %.19s %s", x->digest, ev->xfer == OB_XFER_EXISTS ? "already there" : "mounted");
                pending_line (p, "", t, "");
              }
          }
        break;
      }
    }
  /* quiet: the failed step's output at once (nothing redraws) */
  if (p->mode == CLI_PROGRESS_QUIET && p->pending.len > 0)
    {
      fwrite (p->pending.data, 1, p->pending.len, stderr);
      fflush (stderr);
      p->pending.len = 0;
    }
}

/* Draw: clear the live view, print what scrolls up, draw the view again. */
static void
tty_redraw (struct cli_progress *p, bool final)
{
  struct ob_buf out = { 0 };
  int width = term_width (), lines = 0;
  int64_t now = ob_progress_now ();
  size_t done = 0, total = 0;
  if (p->live_lines > 0)
    {
      cleanup_free char *up = ob_xasprintf ("\r\033[%dA\033[J", p->live_lines);
      ob_buf_adds (&out, up);
    }
  if (p->pending.len > 0)
    {
      ob_buf_add (&out, p->pending.data, p->pending.len);
      p->pending.len = 0;
    }
  for (size_t i = 0; i < p->n_steps; i++)
    {
      total = p->steps[i].total;
      done += !p->steps[i].running;
    }
  if (!final)
    {
      cleanup_free char *hdr = ob_xasprintf ("[+] %s %.1fs (%zu/%zu)", total ? "Building" : "Working", (now - p->t0) / 1e9,
                                             done, total);
      if (p->color)
        ob_buf_adds (&out, "\033[1m");
      ob_buf_adds (&out, hdr);
      ob_buf_adds (&out, p->color ? "\033[0m\n" : "\n");
      lines++;
      for (size_t i = 0; i < p->n_steps; i++)
        {
          struct pstep *s = &p->steps[i];
          cleanup_free char *label = NULL;
          cleanup_free char *left = NULL;
          size_t k;
          if (!s->running)
            continue;
          label = step_label (s);
          left = ob_xasprintf ("=> %s %s", label, s->instr);
          timed_line (&out, left, (now - s->start) / 1e9, width);
          lines++;
          k = s->n_lines < TAIL_LINES ? s->n_lines : TAIL_LINES;
          for (size_t j = s->n_lines - k; j < s->n_lines; j++)
            {
              const char *t = s->tail[j % TAIL_LINES];
              cleanup_free char *line = screen_text (t, strlen (t), width - 7);
              ob_buf_adds (&out, p->color ? "\033[2m => # " : " => # ");
              ob_buf_adds (&out, line);
              ob_buf_adds (&out, p->color ? "\033[0m\n" : "\n");
              lines++;
            }
        }
      for (size_t i = 0; i < p->n_xfers; i++)
        if (p->xfers[i].active)
          {
            cleanup_free char *l = xfer_text (&p->xfers[i], false);
            timed_line (&out, l, (now - p->xfers[i].start) / 1e9, width);
            lines++;
          }
    }
  p->live_lines = lines;
  if (out.len > 0)
    {
      fwrite (out.data, 1, out.len, stderr);
      fflush (stderr);
    }
  ob_buf_free (&out);
}

static void *
ticker (void *u)
{
  struct cli_progress *p = u;
  while (!p->stop)
    {
      struct timespec ts = { 0, 100 * 1000 * 1000 };
      nanosleep (&ts, NULL);
      pthread_mutex_lock (&p->mu);
      if (!p->stop)
        tty_redraw (p, false);
      pthread_mutex_unlock (&p->mu);
    }
  return NULL;
}

/* ---- plain ---- */

static void
plain_event (const struct ob_event *ev)
{
  /* stages built side by side (--jobs): each line says whose it is */
  char pre[96] = "";
  if (ev->concurrent && ev->stage >= 0)
    {
      if (ev->stage_name)
        snprintf (pre, sizeof pre, "[%.80s] ", ev->stage_name);
      else
        snprintf (pre, sizeof pre, "[#%d] ", ev->stage);
    }
  switch (ev->type)
    {
    case OB_EV_WARNING:
      fprintf (stderr, "obuild: warning: %s\n", ev->text);
      break;
    case OB_EV_STEP_END:
      fprintf (stderr, "%s--> %s %.2fs\n", pre, ev->failed ? "ERROR" : ev->cached ? "CACHED" : "DONE",
               ev->duration_ns / 1e9);
      break;
    case OB_EV_OUTPUT:
      fprintf (stderr, "%s%.*s\n", pre, (int) ev->len, ev->data);
      break;
    default:
      if (ev->text)
        fprintf (stderr, "%s%s\n", pre, ev->text);
      break;
    }
}

/* ---- entry points ---- */

struct cli_progress *
cli_progress_new (int mode)
{
  struct cli_progress *p = ob_xmalloc0 (sizeof *p);
  const char *no_color = getenv ("NO_COLOR");
  p->mode = mode;
  p->t0 = ob_progress_now ();
  p->color = !(no_color && *no_color);
  pthread_mutex_init (&p->mu, NULL);
  if (mode == CLI_PROGRESS_TTY && pthread_create (&p->ticker, NULL, ticker, p) == 0)
    p->ticking = true;
  return p;
}

void
cli_progress_event (void *data, const struct ob_event *ev)
{
  struct cli_progress *p = data;
  struct ob_event shown = *ev; /* its texts as cli_visible shows them */
  char *text = NULL, *instr = NULL, *stage = NULL;
  if (p->mode != CLI_PROGRESS_JSON)
    {
      if (ev->text)
        shown.text = text = cli_visible (ev->text);
      if (ev->instruction)
        shown.instruction = instr = cli_visible (ev->instruction);
      if (ev->stage_name)
        shown.stage_name = stage = cli_visible (ev->stage_name);
    }
  pthread_mutex_lock (&p->mu);
  switch (p->mode)
    {
    case CLI_PROGRESS_PLAIN:
      plain_event (&shown);
      break;
    case CLI_PROGRESS_JSON:
      json_event (ev);
      break;
    default:
      tty_event (p, &shown);
      break;
    }
  pthread_mutex_unlock (&p->mu);
  free (text);
  free (instr);
  free (stage);
}

void
cli_progress_line (void *data, const char *line)
{
  struct ob_event ev = { .type = OB_EV_LOG, .text = line, .stage = -1 };
  cli_progress_event (data, &ev);
}

void
cli_progress_pause (struct cli_progress *p)
{
  pthread_mutex_lock (&p->mu);
  if (p->mode == CLI_PROGRESS_TTY)
    tty_redraw (p, true);
}

void
cli_progress_resume (struct cli_progress *p)
{
  fflush (stdout);
  pthread_mutex_unlock (&p->mu);
}

void
cli_progress_finish (struct cli_progress *p, const char *digest)
{
  if (p == NULL)
    return;
  if (p->ticking)
    {
      p->stop = 1;
      pthread_join (p->ticker, NULL);
    }
  pthread_mutex_lock (&p->mu);
  if (p->mode == CLI_PROGRESS_TTY)
    {
      /* steps still running (an interrupt, an error between steps) end here */
      for (size_t i = 0; i < p->n_steps; i++)
        if (p->steps[i].running)
          {
            p->steps[i].running = false;
            p->steps[i].failed = digest == NULL;
            p->steps[i].duration = ob_progress_now () - p->steps[i].start;
            step_done_lines (p, &p->steps[i]);
          }
      tty_redraw (p, true);
    }
  if (p->mode == CLI_PROGRESS_JSON && digest)
    {
      json_t *o = json_object ();
      json_object_set_new (o, "event", json_string ("done"));
      json_object_set_new (o, "digest", json_string (digest));
      json_emit (o);
    }
  pthread_mutex_unlock (&p->mu);
  for (size_t i = 0; i < p->n_steps; i++)
    {
      free (p->steps[i].stage_name);
      free (p->steps[i].instr);
      for (size_t k = 0; k < TAIL_LINES; k++)
        free (p->steps[i].tail[k]);
      ob_buf_free (&p->steps[i].full);
    }
  for (size_t i = 0; i < p->n_xfers; i++)
    {
      free (p->xfers[i].digest);
      free (p->xfers[i].ref);
    }
  free (p->steps);
  free (p->xfers);
  ob_buf_free (&p->pending);
  pthread_mutex_destroy (&p->mu);
  free (p);
}
