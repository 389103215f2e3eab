/* dockerfile: lexer and parser for Dockerfiles/Containerfiles, plus the
 * shell-word processing (quote removal + variable expansion) that the build
 * applies to instruction arguments.  No filesystem access, no side effects.
 *
 * The parser keeps arguments RAW (quotes and $variables still in them):
 * expansion depends on ARG/ENV values known only while building, so the build
 * calls ob_dockerfile_word()/ob_dockerfile_words() on the raw text with a
 * lookup function.  Exec-form (JSON) arguments are decoded JSON strings. */
#ifndef OBUILD_DOCKERFILE_H
#define OBUILD_DOCKERFILE_H

#include <obuild/error.h>

#include <stdbool.h>
#include <stddef.h>

enum ob_instr_kind
{
  OB_I_FROM,
  OB_I_RUN,
  OB_I_CMD,
  OB_I_LABEL,
  OB_I_MAINTAINER,
  OB_I_EXPOSE,
  OB_I_ENV,
  OB_I_ADD,
  OB_I_COPY,
  OB_I_ENTRYPOINT,
  OB_I_VOLUME,
  OB_I_USER,
  OB_I_WORKDIR,
  OB_I_ARG,
  OB_I_ONBUILD,
  OB_I_STOPSIGNAL,
  OB_I_HEALTHCHECK,
  OB_I_SHELL,
};

/* "--name=value" or "--name" (value NULL).  Values are unexpanded; as in
 * BuildKit, quotes and backslash escapes in a flag word are already removed
 * (--mount=target="/a b" gives "target=/a b"). */
struct ob_flag
{
  char *name; /* without the dashes, e.g. "from", "chown", "mount" */
  char *value;
};

/* A key/value of ENV, LABEL or ARG.  Both raw: quotes not yet removed,
 * variables not yet expanded.  value is NULL for `ARG name` without default. */
struct ob_kv
{
  char *key;
  char *value;
};

struct ob_heredoc
{
  char *name;    /* delimiter word, e.g. "EOF" */
  char *content; /* body, lines joined with "\n", trailing "\n" included */
  bool expand;   /* false when the delimiter was quoted ('EOF' or "EOF") */
  bool chomp;    /* <<- : leading tabs were stripped from the body */
};

struct ob_instr
{
  enum ob_instr_kind kind;
  int line;       /* line number of the first line of the instruction */
  int end_line;   /* last line (continuations, heredoc bodies) */
  char *original; /* instruction as written: continuations joined, the form
                     used for history "created_by"; heredoc bodies excluded */

  struct ob_flag *flags; /* leading --flags, in order */
  size_t n_flags;

  /* Exec form: JSON array given (RUN, CMD, ENTRYPOINT, SHELL, COPY, ADD,
   * VOLUME, HEALTHCHECK CMD).  args holds the decoded strings. */
  bool json;
  char **args; /* NULL-terminated, never NULL.  Shell form: see per-kind notes */
  size_t n_args;

  /* Raw text after the flags (shell form), with continuations joined. */
  char *rest;

  /* ENV / LABEL / ARG pairs (raw).  MAINTAINER: none (use rest). */
  struct ob_kv *kvs;
  size_t n_kvs;

  struct ob_heredoc *heredocs;
  size_t n_heredocs;

  /* FROM: image (raw), stage name (AS name, lower-cased) or NULL.
   * --platform is in flags. */
  char *from_image;
  char *from_stage;

  /* HEALTHCHECK: none=true for "HEALTHCHECK NONE"; otherwise the options
   * (--interval etc.) are in flags and the CMD is in json/args/rest. */
  bool healthcheck_none;

  /* ONBUILD: the trigger instruction, parsed (never FROM/ONBUILD/MAINTAINER). */
  struct ob_instr *onbuild;
  /* ONBUILD: the trigger text as written after ONBUILD, e.g. "RUN echo hi" */
  char *onbuild_text;
};

/* Per-kind shape of args for the SHELL FORM (json == false):
 *   RUN, CMD, ENTRYPOINT, HEALTHCHECK CMD: args = { rest } (one element: the
 *       command line, for the shell), rest = the same text.  A bare `CMD` or
 *       `ENTRYPOINT` (allowed, as in Docker) has no args.  HEALTHCHECK: rest is
 *       the text after "CMD".  RUN/COPY/ADD with heredocs: rest is the first
 *       line (e.g. "python3 <<EOF"), bodies in heredocs.
 *   COPY, ADD, EXPOSE, VOLUME: args empty; the build splits `rest` into words
 *       with ob_dockerfile_words().
 *   USER, WORKDIR, STOPSIGNAL, MAINTAINER: rest only.
 *   FROM: from_image/from_stage.  ENV/LABEL/ARG: kvs. */

struct ob_dockerfile
{
  char *filename; /* as given to the parser, used in messages */
  char escape;    /* '\\' or '`' */
  char *syntax;   /* "# syntax=" directive, or NULL */
  struct ob_instr *instrs;
  size_t n_instrs;
};

/* Parse a Dockerfile.  name is used in error messages, which always read
 * "<name>:<line>: <what>", e.g. `Dockerfile:7: unknown instruction "RUNN"`.
 * Errors are OB_ERR_DOCKERFILE.  A NUL byte anywhere, or invalid UTF-8 in an
 * instruction (its lines, continuations and heredoc bodies; comments may
 * hold any bytes) is an error: C strings and JSON would silently cut or drop
 * it.  A UTF-8 byte order mark at the start is skipped. */
int ob_dockerfile_parse (const char *name, const char *text, size_t len,
                         struct ob_dockerfile **out, ob_error_t *err);
void ob_dockerfile_free (struct ob_dockerfile *df);

/* Parse one instruction line (used for ONBUILD triggers at build time). */
int ob_dockerfile_parse_instr (const char *name, int line, const char *text, char escape,
                               struct ob_instr **out, ob_error_t *err);
void ob_instr_free (struct ob_instr *in);

const char *ob_instr_kind_name (enum ob_instr_kind kind); /* "COPY" */

/* Find a flag by name (last one wins); NULL if absent.  A value-less flag
 * ("--link") is found with value NULL.  Only the repeatable flags (--mount,
 * --exclude) can appear more than once: walk in->flags for all of them. */
const struct ob_flag *ob_instr_flag (const struct ob_instr *in, const char *name);

/* Variable lookup for expansion: return the value or NULL when unset. */
typedef const char *(*ob_lookup_fn) (void *data, const char *name);

/* Limits of the expansion, against hostile Dockerfiles (documented in
 * obuild-build(1)): ${...} nested at most this deep... */
#define OB_DOCKERFILE_MAX_NESTING 64
/* ...and one expanded word (or the words of one COPY line) at most 1 MiB. */
#define OB_DOCKERFILE_MAX_WORD (1 << 20)
/* ...and the pattern operators ${v#p} ${v%p} ${v/p/r} of one word take at
 * most this many steps (a step: one byte against one pattern token). */
#define OB_DOCKERFILE_MAX_WORK (1 << 26)
/* RUN --mount options one RUN may give: each is a mount made for the step
 * (100,000 tmpfs mounts took minutes to make and to undo) */
#define OB_DOCKERFILE_MAX_MOUNTS 256

/* Process one word as Docker's shell lexer does for WORKDIR, USER, ENV values
 * etc.: remove quotes, process the escape character, expand $v ${v}
 * ${v:-w} ${v:+w} ${v-w} ${v+w} (and report ${v?w} / ${v:?w} as errors when
 * unset/empty).  Whitespace is NOT a separator.  Errors: OB_ERR_DOCKERFILE,
 * message without file:line (the caller wraps). */
int ob_dockerfile_word (const char *raw, char escape, ob_lookup_fn lookup, void *data,
                        char **out, ob_error_t *err);

/* Like ob_dockerfile_word but splits on unquoted whitespace into words
 * (COPY/ADD/EXPOSE/VOLUME shell form).  Expansions are not re-split. */
int ob_dockerfile_words (const char *raw, char escape, ob_lookup_fn lookup, void *data,
                         char ***out, ob_error_t *err);

/* Like ob_dockerfile_words, but the results of unquoted expansions are split
 * on whitespace too, as BuildKit's ProcessWords (which EXPOSE uses:
 * PORTS="80 53/udp" then `EXPOSE $PORTS` gives two ports). */
int ob_dockerfile_words_split (const char *raw, char escape, ob_lookup_fn lookup, void *data,
                               char ***out, ob_error_t *err);

/* Is word a heredoc marker, as BuildKit's ParseHeredoc sees it: "[n]<<[-]NAME"
 * with NAME one shell word, possibly quoted ("<<EOF", "<<-'EOF'", "3<<X")?
 * If so, *name (when name is not NULL) gets the delimiter with its quotes
 * removed (caller frees), *expand is false when any part of it was quoted,
 * *chomp is true for "<<-".  The build uses it to tell the heredoc sources of
 * COPY/ADD (the words of rest) from paths; contents are in in->heredocs under
 * the same name.  Any pointer may be NULL. */
bool ob_dockerfile_heredoc_word (const char *word, char **name, bool *expand, bool *chomp);

/* Is s[0, n) valid UTF-8 as JSON strings need it (no overlong forms, no
 * surrogates, nothing past U+10FFFF)? */
bool ob_dockerfile_is_utf8 (const char *s, size_t n);

/* Does the build expand variables in this instruction's arguments (as Docker
 * does: ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG
 * ONBUILD-no, RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK-no)? */
bool ob_instr_expands (enum ob_instr_kind kind);

#endif
