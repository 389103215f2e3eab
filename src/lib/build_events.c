/* The build's progress events (include/obuild/progress.h): step start and
 * end, log lines, warnings, and a RUN's output read from a pipe by a
 * thread of its own while the step runs. */
#include "config.h"
#include "build_priv.h"
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t
ob_progress_now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
fill_stage (struct ob_event *ev, const struct stage *s)
{
  ev->stage = s ? (int) s->index : -1;
  ev->stage_name = s ? s->name : NULL;
}

void
ob_build_emit_text (struct build *b, int type, const char *text)
{
  struct ob_event ev = { .type = type, .text = text, .concurrent = b->concurrent };
  if (b->quiet)
    return;
  fill_stage (&ev, b->cur_stage);
  b->o->event (b->o->event_data, &ev);
}

void
ob_build_emit_step (struct build *b, struct stage *s, const struct ob_instr *in, int type, int64_t t0,
                    size_t layers_before, bool failed)
{
  struct ob_event ev = { .type = type, .concurrent = b->concurrent };
  cleanup_free char *text = NULL;
  if (b->o->event == NULL || b->quiet)
    return;
  fill_stage (&ev, s);
  ev.step = b->step;
  ev.total_steps = b->total_steps;
  ev.instruction = in->original;
  if (type == OB_EV_STEP_START)
    ev.text = text = ob_xasprintf ("STEP %zu/%zu: %s", b->step, b->total_steps, in->original);
  else
    {
      ev.cached = s->step_cached;
      ev.failed = failed;
      ev.duration_ns = ob_progress_now () - t0;
      /* FROM brings the base's layers: not a layer of this step */
      if (!failed && in->kind != OB_I_FROM && s->n_layers == layers_before + 1)
        {
          ev.layer_digest = s->layers[s->n_layers - 1].digest;
          ev.layer_size = s->layers[s->n_layers - 1].size;
          ev.layer_precompressed = s->last_precompressed;
        }
    }
  b->o->event (b->o->event_data, &ev);
}

/* ---- a RUN's output ---- */

struct ob_build_output
{
  struct build *b;
  struct stage *s;
  const struct ob_instr *in;
  size_t step;
  int rfd;
  pthread_t thread;
  volatile int stop; /* the step is over: read what is there, then end */
  char line[4096];
  size_t n;
};

static void
flush_line (struct ob_build_output *c)
{
  struct ob_event ev = { .type = OB_EV_OUTPUT, .concurrent = c->b->concurrent };
  fill_stage (&ev, c->s);
  ev.step = c->step;
  ev.total_steps = c->b->total_steps;
  ev.instruction = c->in->original;
  ev.data = c->line;
  ev.len = c->n;
  c->b->o->event (c->b->o->event_data, &ev);
  c->n = 0;
}

static void *
output_reader (void *u)
{
  struct ob_build_output *c = u;
  char buf[4096];
  for (;;)
    {
      struct pollfd pfd = { c->rfd, POLLIN, 0 };
      ssize_t n;
      /* a process of the step that escaped it could hold the pipe open:
       * once the step is over, what is not already there is not waited for */
      int pr = poll (&pfd, 1, c->stop ? 0 : 100);
      if (pr < 0 && errno == EINTR)
        continue;
      if (pr <= 0)
        {
          if (c->stop)
            break;
          continue;
        }
      n = read (c->rfd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n; i++)
        {
          if (buf[i] == '\n')
            flush_line (c);
          else
            {
              c->line[c->n++] = buf[i];
              if (c->n == sizeof c->line)
                flush_line (c);
            }
        }
    }
  if (c->n > 0)
    flush_line (c);
  return NULL;
}

int
ob_build_output_start (struct build *b, struct stage *s, const struct ob_instr *in, struct ob_build_output **out,
                       int *wfd, ob_error_t *err)
{
  struct ob_build_output *c;
  int fds[2];
  *out = NULL;
  *wfd = -1;
  if (!b->o->capture_output || b->o->event == NULL)
    return 0;
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return ob_error_make (err, OB_ERR_STORE, errno, "pipe");
  c = ob_xmalloc0 (sizeof *c);
  c->b = b;
  c->s = s;
  c->in = in;
  c->step = b->step;
  c->rfd = fds[0];
  fcntl (c->rfd, F_SETFL, O_NONBLOCK);
  if (pthread_create (&c->thread, NULL, output_reader, c) != 0)
    {
      close (fds[0]);
      close (fds[1]);
      free (c);
      return ob_error_make (err, OB_ERR_GENERIC, errno, "start the RUN output reader");
    }
  *out = c;
  *wfd = fds[1];
  return 0;
}

void
ob_build_output_finish (struct ob_build_output **cp, int *wfd)
{
  struct ob_build_output *c = *cp;
  if (*wfd >= 0)
    close (*wfd);
  *wfd = -1;
  if (c == NULL)
    return;
  c->stop = 1;
  pthread_join (c->thread, NULL);
  close (c->rfd);
  free (c);
  *cp = NULL;
}
