/* progress: the structured events the build and the registry client report
 * (the library never prints; the CLI renders these as plain lines, a live
 * terminal view or JSON, see src/progress.c).
 *
 * Every event carries the stage it belongs to (stage >= 0), so that stages
 * built side by side can still be told apart.  The callback may be called
 * from more than one thread (registry transfers run in parallel, a RUN's
 * output is read by its own thread): it must be thread-safe.  Pointers in
 * an event are valid only during the call. */
#ifndef OBUILD_PROGRESS_H
#define OBUILD_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ob_event_type
{
  OB_EV_LOG,        /* a line for the log (text): "COMMIT x", "pulled x", ... */
  OB_EV_WARNING,    /* text: the warning, without "warning: " */
  OB_EV_STEP_START, /* a Dockerfile instruction begins */
  OB_EV_STEP_END,   /* ... ends: cached, layer, duration, failed */
  OB_EV_OUTPUT,     /* data/len: what a RUN wrote (stdout and stderr) */
  OB_EV_TRANSFER,   /* a registry blob: xfer, digest, done/total */
};

enum ob_xfer_state
{
  OB_XFER_START,    /* about to be copied: total known */
  OB_XFER_PROGRESS, /* done bytes so far (at most ~10 a second per blob) */
  OB_XFER_DONE,     /* copied: done == total */
  OB_XFER_EXISTS,   /* push: the registry has it already */
  OB_XFER_MOUNTED,  /* push: mounted from another repository */
};

struct ob_event
{
  int type;         /* enum ob_event_type */
  const char *text; /* the line plain output shows for this event, or NULL */
  /* steps (and LOG/OUTPUT lines of a step): stage -1 when none */
  int stage;
  const char *stage_name; /* AS name, or NULL */
  size_t step, total_steps; /* 1-based over the whole build, as "STEP n/m" */
  const char *instruction;  /* the instruction as written */
  bool concurrent;          /* stages were being built side by side (--jobs) */
  bool cached;              /* STEP_END: found in the build cache */
  bool failed;              /* STEP_END: the step failed (the error follows) */
  const char *layer_digest; /* STEP_END: the layer it added, or NULL */
  int64_t layer_size;
  int64_t layer_precompressed; /* STEP_END: tar bytes of it compressed while
                                * the step ran (RUN) */
  int64_t duration_ns;      /* STEP_END */
  const char *data;         /* OUTPUT */
  size_t len;
  /* transfers */
  int xfer;                 /* enum ob_xfer_state */
  bool push;                /* push (else pull) */
  const char *ref;          /* the image: "host/repo:tag" */
  const char *digest;       /* the blob */
  int64_t done, total;      /* bytes */
};

typedef void (*ob_event_fn) (void *data, const struct ob_event *ev);

/* Monotonic clock, nanoseconds (for durations). */
int64_t ob_progress_now (void);

#endif
