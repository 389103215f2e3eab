/* --progress: the renderers of the library's progress events (plain lines,
 * a live terminal view, JSON lines, nothing) for build, pull and push. */
#ifndef OBUILD_PROGRESS_CLI_H
#define OBUILD_PROGRESS_CLI_H

#include <obuild/error.h>
#include <obuild/progress.h>

#include <stdbool.h>

enum cli_progress_mode
{
  CLI_PROGRESS_AUTO,
  CLI_PROGRESS_PLAIN,
  CLI_PROGRESS_TTY,
  CLI_PROGRESS_QUIET,
  CLI_PROGRESS_JSON,
};

/* The mode to use: --progress VALUE (opt, may be NULL), else quiet with -q,
 * else $OBUILD_PROGRESS, else $BUILDKIT_PROGRESS (its "rawjson" is not
 * ours: only auto|plain|tty|quiet are taken from it), else auto; auto is
 * tty when standard error is a terminal whose TERM is not dumb, else plain.
 * OB_ERR_USAGE for an unknown value. */
int cli_progress_mode (const char *opt, bool quiet, int *mode, ob_error_t *err);

struct cli_progress;
struct cli_progress *cli_progress_new (int mode);
/* Whether RUN output should be captured (everything but plain). */
bool cli_progress_captures (const struct cli_progress *p);
/* ob_event_fn, and the line callback of the library's `log`. */
void cli_progress_event (void *p, const struct ob_event *ev);
void cli_progress_line (void *p, const char *line);
/* Standard output between these (the digest, ...): the live view is
 * cleared and not drawn again until resume. */
void cli_progress_pause (struct cli_progress *p);
void cli_progress_resume (struct cli_progress *p);
/* The end: the tty view drawn a last time, then (json) a "done" event with
 * digest when it is not NULL.  Frees p.  An error the command then returns
 * is reported by main, through cli_progress_report_error in json mode. */
void cli_progress_finish (struct cli_progress *p, const char *digest);

/* Set by json mode: main reports the final error through it (a JSON
 * "error" event with the exit code) instead of an "obuild: ..." line. */
extern void (*cli_error_reporter) (const char *msg, int code);
/* s with its control characters shown as \n, \r or \xNN (tabs kept), for
 * a terminal: error messages and instructions quote hostile names (a
 * Dockerfile's, a context's, a layer's), whose escape sequences or line
 * breaks must not reach it as such.  Newly allocated. */
char *cli_visible (const char *s);

#endif
