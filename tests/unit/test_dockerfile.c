/* Unit tests for the Dockerfile parser and shell-word processing.  Expected
 * behaviour is BuildKit's (frontend/dockerfile parser and shell lexer). */
#include "config.h"
#include <obuild/dockerfile.h>
#include <obuild/util.h>

#include "tap.h"

/* ---- helpers ---- */

static struct ob_dockerfile *
parse_ok (const char *text)
{
  struct ob_dockerfile *df = NULL;
  ob_error_t err = NULL;

  if (ob_dockerfile_parse ("Dockerfile", text, strlen (text), &df, &err) < 0)
    {
      printf ("#   unexpected error: %s\n", err->msg);
      ob_error_free (&err);
      tap_case_failed = 1;
      return NULL;
    }
  return df;
}

/* The error message of parsing text (caller frees), or NULL if it parsed. */
static char *
parse_err (const char *text)
{
  struct ob_dockerfile *df = NULL;
  ob_error_t err = NULL;
  char *msg;

  if (ob_dockerfile_parse ("Dockerfile", text, strlen (text), &df, &err) == 0)
    {
      ob_dockerfile_free (df);
      return NULL;
    }
  CHECK_INT (err->kind, OB_ERR_DOCKERFILE);
  msg = ob_xstrdup (err->msg);
  ob_error_free (&err);
  return msg;
}

#define CHECK_ERR(text, msg)                                                        \
  do                                                                               \
    {                                                                              \
      char *_m = parse_err (text);                                                 \
      CHECK_STR (_m, msg);                                                         \
      free (_m);                                                                   \
    }                                                                              \
  while (0)

static const char *env_table[] = {
  "a", "A", "b", "B", "empty", "", "sp", "x y", "path", "/usr/local/bin", "file", "archive.tar.gz",
  NULL,
};

static const char *
lookup (void *data, const char *name)
{
  const char **kv = data;
  for (; kv[0]; kv += 2)
    if (strcmp (kv[0], name) == 0)
      return kv[1];
  return NULL;
}

/* Process one word with env_table; returns the result or "ERR: message". */
static char *
word_esc (const char *raw, char escape)
{
  char *out = NULL;
  ob_error_t err = NULL;
  if (ob_dockerfile_word (raw, escape, lookup, env_table, &out, &err) < 0)
    {
      out = ob_xasprintf ("ERR: %s", err->msg);
      ob_error_free (&err);
    }
  return out;
}

#define CHECK_WORD_ESC(raw, esc, expected)                                          \
  do                                                                               \
    {                                                                              \
      char *_w = word_esc (raw, esc);                                              \
      CHECK_STR (_w, expected);                                                    \
      free (_w);                                                                   \
    }                                                                              \
  while (0)
#define CHECK_WORD(raw, expected) CHECK_WORD_ESC (raw, '\\', expected)

/* Words joined with "|" (or "ERR: message"). */
static char *
words_joined_fn (int (*fn) (const char *, char, ob_lookup_fn, void *, char ***, ob_error_t *),
                 const char *raw, char escape)
{
  char **v = NULL;
  ob_error_t err = NULL;
  struct ob_buf b = { 0 };

  if (fn (raw, escape, lookup, env_table, &v, &err) < 0)
    {
      char *r = ob_xasprintf ("ERR: %s", err->msg);
      ob_error_free (&err);
      return r;
    }
  for (size_t i = 0; v[i]; i++)
    {
      if (i)
        ob_buf_addc (&b, '|');
      ob_buf_adds (&b, v[i]);
    }
  ob_strv_free (v);
  return ob_buf_steal (&b);
}

static char *
words_joined (const char *raw, char escape)
{
  return words_joined_fn (ob_dockerfile_words, raw, escape);
}

#define CHECK_WORDS(raw, expected)                                                  \
  do                                                                               \
    {                                                                              \
      char *_w = words_joined (raw, '\\');                                         \
      CHECK_STR (_w, expected);                                                    \
      free (_w);                                                                   \
    }                                                                              \
  while (0)

#define CHECK_WORDS_SPLIT(raw, expected)                                            \
  do                                                                               \
    {                                                                              \
      char *_w = words_joined_fn (ob_dockerfile_words_split, raw, '\\');           \
      CHECK_STR (_w, expected);                                                    \
      free (_w);                                                                   \
    }                                                                              \
  while (0)

static const char *
flag_value (const struct ob_instr *in, const char *name)
{
  const struct ob_flag *f = ob_instr_flag (in, name);
  return f ? f->value : "(absent)";
}

/* ---- FROM ---- */

TEST (from_simple)
{
  struct ob_dockerfile *df = parse_ok ("FROM alpine:3.19\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 1);
  CHECK_INT (df->instrs[0].kind, OB_I_FROM);
  CHECK_STR (df->instrs[0].from_image, "alpine:3.19");
  CHECK (df->instrs[0].from_stage == NULL);
  CHECK_INT (df->instrs[0].line, 1);
  CHECK_STR (df->filename, "Dockerfile");
  CHECK_INT (df->escape, '\\');
  CHECK (df->syntax == NULL);
  ob_dockerfile_free (df);
}

TEST (from_as_stage_lowercased)
{
  struct ob_dockerfile *df = parse_ok ("FROM img as Build-Stage.1\nfrom img2 AS final\n");
  if (!df)
    return;
  CHECK_STR (df->instrs[0].from_stage, "build-stage.1");
  CHECK_STR (df->instrs[1].from_image, "img2");
  CHECK_STR (df->instrs[1].from_stage, "final");
  ob_dockerfile_free (df);
}

TEST (from_platform_flag)
{
  struct ob_dockerfile *df = parse_ok ("FROM --platform=$BUILDPLATFORM golang AS b\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[0].n_flags, 1);
  CHECK_STR (df->instrs[0].flags[0].name, "platform");
  CHECK_STR (df->instrs[0].flags[0].value, "$BUILDPLATFORM");
  CHECK_STR (df->instrs[0].from_image, "golang");
  CHECK_STR (df->instrs[0].from_stage, "b");
  ob_dockerfile_free (df);
}

TEST (from_errors)
{
  CHECK_ERR ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments");
  CHECK_ERR ("FROM a AS\n", "Dockerfile:1: FROM requires either one or three arguments");
  CHECK_ERR ("FROM a AS b c\n", "Dockerfile:1: FROM requires either one or three arguments");
  CHECK_ERR ("FROM a FOR b\n", "Dockerfile:1: FROM requires either one or three arguments");
  CHECK_ERR ("\n\nFROM\n", "Dockerfile:3: FROM requires either one or three arguments");
  CHECK_ERR ("FROM a AS 1st\n",
             "Dockerfile:1: invalid name for build stage: \"1st\", name can't start with a "
             "number or contain symbols");
  CHECK_ERR ("FROM a AS x$y\n",
             "Dockerfile:1: invalid name for build stage: \"x$y\", name can't start with a "
             "number or contain symbols");
}

TEST (keywords_case_insensitive)
{
  struct ob_dockerfile *df = parse_ok ("from a\nRun echo 1\nwOrKdIr /x\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 3);
  CHECK_INT (df->instrs[1].kind, OB_I_RUN);
  CHECK_INT (df->instrs[2].kind, OB_I_WORKDIR);
  CHECK_STR (df->instrs[2].rest, "/x");
  ob_dockerfile_free (df);
}

/* ---- RUN / CMD / ENTRYPOINT: shell and exec form ---- */

TEST (run_shell_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN   apt-get update && echo \"$HOME\"  \n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK (!in->json);
  CHECK_INT (in->n_args, 1);
  CHECK_STR (in->args[0], "apt-get update && echo \"$HOME\"");
  CHECK_STR (in->args[1], NULL);
  CHECK_STR (in->rest, "apt-get update && echo \"$HOME\"");
  ob_dockerfile_free (df);
}

TEST (run_exec_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN [\"/bin/echo\", \"a b\", \"\\u00e9\\n\"]\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK (in->json);
  CHECK_INT (in->n_args, 3);
  CHECK_STR (in->args[0], "/bin/echo");
  CHECK_STR (in->args[1], "a b");
  CHECK_STR (in->args[2], "\xc3\xa9\n");
  CHECK (in->args[3] == NULL);
  ob_dockerfile_free (df);
}

/* Docker: text starting with "[" that is not valid JSON is shell form. */
TEST (invalid_json_is_shell_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCMD [\"a\"\nRUN [ -f /x ] && echo y\n"
                                       "ENTRYPOINT ['sh', '-c']\n");
  if (!df)
    return;
  CHECK (!df->instrs[1].json);
  CHECK_STR (df->instrs[1].args[0], "[\"a\"");
  CHECK (!df->instrs[2].json);
  CHECK_STR (df->instrs[2].args[0], "[ -f /x ] && echo y");
  CHECK (!df->instrs[3].json);
  CHECK_STR (df->instrs[3].args[0], "['sh', '-c']");
  ob_dockerfile_free (df);
}

TEST (json_non_string_is_error)
{
  CHECK_ERR ("FROM a\nCMD [\"a\", 1]\n",
             "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings "
             "only");
  CHECK_ERR ("FROM a\nCOPY [\"a\", null]\n",
             "Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings "
             "only");
}

/* Current BuildKit (json.Unmarshal): the whole line must be the array, so
 * text after it makes the shell form; blanks after it do not. */
TEST (json_trailing_text_is_shell_form)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nCMD [\"a\"] # note\nRUN [\"echo\",\"hello\"]this is invalid\n"
                  "ENTRYPOINT [\"b\"]  \t\nCMD [\"a\", 1] x\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 5);
  if (df->n_instrs != 5)
    {
      ob_dockerfile_free (df);
      return;
    }
  CHECK (!df->instrs[1].json);
  CHECK_STR (df->instrs[1].args[0], "[\"a\"] # note");
  CHECK (!df->instrs[2].json);
  CHECK_STR (df->instrs[2].args[0], "[\"echo\",\"hello\"]this is invalid");
  CHECK (df->instrs[3].json);
  CHECK_INT (df->instrs[3].n_args, 1);
  /* not JSON at all, so not "arrays must be comprised of strings" */
  CHECK (!df->instrs[4].json);
  ob_dockerfile_free (df);
}

TEST (cmd_entrypoint_empty_allowed)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCMD\nENTRYPOINT []\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_args, 0);
  CHECK (df->instrs[1].args != NULL && df->instrs[1].args[0] == NULL);
  CHECK (!df->instrs[1].json);
  CHECK (df->instrs[2].json);
  CHECK_INT (df->instrs[2].n_args, 0);
  ob_dockerfile_free (df);
}

TEST (run_empty_is_error)
{
  CHECK_ERR ("FROM a\nRUN\n", "Dockerfile:2: RUN requires at least one argument");
}

TEST (entrypoint_exec_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nENTRYPOINT [\"/init\",\"--\"]\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].kind, OB_I_ENTRYPOINT);
  CHECK (df->instrs[1].json);
  CHECK_STR (df->instrs[1].args[1], "--");
  ob_dockerfile_free (df);
}

/* ---- LABEL / MAINTAINER / EXPOSE / ENV ---- */

TEST (label_pairs)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nLABEL a=b \"c d\"=\"e f\" x='$y' multi=\"1\\\n  2\"\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_kvs, 4);
  CHECK_STR (in->kvs[0].key, "a");
  CHECK_STR (in->kvs[0].value, "b");
  CHECK_STR (in->kvs[1].key, "\"c d\"");
  CHECK_STR (in->kvs[1].value, "\"e f\"");
  CHECK_STR (in->kvs[2].value, "'$y'");
  CHECK_STR (in->kvs[3].value, "\"1  2\"");
  ob_dockerfile_free (df);
}

/* BuildKit's parseNameVal accepts the legacy "LABEL key value" form. */
TEST (label_legacy_and_errors)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nLABEL version 1.0 beta\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_kvs, 1);
  CHECK_STR (df->instrs[1].kvs[0].key, "version");
  CHECK_STR (df->instrs[1].kvs[0].value, "1.0 beta");
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nLABEL\n", "Dockerfile:2: LABEL requires at least one argument");
  CHECK_ERR ("FROM a\nLABEL foo\n", "Dockerfile:2: LABEL must have two arguments");
  CHECK_ERR ("FROM a\nLABEL =x\n", "Dockerfile:2: LABEL names can not be blank");
}

TEST (maintainer_expose)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nMAINTAINER Jane <j@x>\nEXPOSE 80/tcp  443\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].kind, OB_I_MAINTAINER);
  CHECK_STR (df->instrs[1].rest, "Jane <j@x>");
  CHECK_INT (df->instrs[2].kind, OB_I_EXPOSE);
  CHECK_STR (df->instrs[2].rest, "80/tcp  443");
  CHECK_INT (df->instrs[2].n_args, 0);
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument");
  CHECK_ERR ("FROM a\nMAINTAINER\n", "Dockerfile:2: MAINTAINER requires exactly one argument");
}

TEST (env_legacy_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nENV PATH   /opt/bin:$PATH  and \"more\"\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_kvs, 1);
  CHECK_STR (df->instrs[1].kvs[0].key, "PATH");
  CHECK_STR (df->instrs[1].kvs[0].value, "/opt/bin:$PATH  and \"more\"");
  ob_dockerfile_free (df);
}

TEST (env_pairs_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nENV k=v k2=\"a b\" k3=a\\ b k4= k5=''\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_kvs, 5);
  CHECK_STR (in->kvs[0].key, "k");
  CHECK_STR (in->kvs[0].value, "v");
  CHECK_STR (in->kvs[1].value, "\"a b\"");
  CHECK_STR (in->kvs[2].key, "k3");
  CHECK_STR (in->kvs[2].value, "a\\ b");
  CHECK_STR (in->kvs[3].value, "");
  CHECK_STR (in->kvs[4].value, "''");
  ob_dockerfile_free (df);
}

TEST (env_errors)
{
  CHECK_ERR ("FROM a\nENV foo\n", "Dockerfile:2: ENV must have two arguments");
  CHECK_ERR ("FROM a\nENV\n", "Dockerfile:2: ENV requires at least one argument");
  CHECK_ERR ("FROM a\nENV =v\n", "Dockerfile:2: ENV names can not be blank");
  CHECK_ERR ("FROM a\nENV a=1 b\n",
             "Dockerfile:2: Syntax error - can't find = in \"b\". Must be of the form: "
             "name=value");
}

/* ---- ADD / COPY ---- */

TEST (add_shell_form_flags)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nADD --chown=1:2 --chmod=644 --link "
                                       "--checksum=sha256:abc --keep-git-dir=true "
                                       "https://x/y.tgz /dst/\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->kind, OB_I_ADD);
  CHECK_INT (in->n_flags, 5);
  CHECK_STR (flag_value (in, "chown"), "1:2");
  CHECK_STR (flag_value (in, "chmod"), "644");
  CHECK (ob_instr_flag (in, "link") != NULL);
  CHECK_STR (flag_value (in, "link"), NULL);
  CHECK_STR (flag_value (in, "checksum"), "sha256:abc");
  CHECK_STR (flag_value (in, "keep-git-dir"), "true");
  CHECK (ob_instr_flag (in, "from") == NULL);
  CHECK_STR (in->rest, "https://x/y.tgz /dst/");
  CHECK (!in->json);
  CHECK_INT (in->n_args, 0);
  ob_dockerfile_free (df);
}

TEST (copy_exec_form)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCOPY [\"a b\", \"c\", \"/d e/\"]\n");
  if (!df)
    return;
  CHECK (df->instrs[1].json);
  CHECK_INT (df->instrs[1].n_args, 3);
  CHECK_STR (df->instrs[1].args[2], "/d e/");
  ob_dockerfile_free (df);
}

TEST (copy_flags)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCOPY --from=build --chown=app --chmod=755 "
                                       "--link=false --parents --exclude=*.md --exclude=.git "
                                       "src/ /app/\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_flags, 7);
  CHECK_STR (flag_value (in, "from"), "build");
  CHECK_STR (flag_value (in, "link"), "false");
  CHECK_STR (flag_value (in, "parents"), NULL);
  CHECK_STR (in->flags[5].value, "*.md");
  CHECK_STR (in->flags[6].value, ".git");
  CHECK_STR (flag_value (in, "exclude"), ".git");
  CHECK_STR (in->rest, "src/ /app/");
  ob_dockerfile_free (df);
}

TEST (copy_needs_two_args)
{
  CHECK_ERR ("FROM a\nCOPY onlyone\n",
             "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
             "Destination could not be determined");
  CHECK_ERR ("FROM a\nADD [\"x\"]\n",
             "Dockerfile:2: ADD requires at least two arguments, but only one was provided. "
             "Destination could not be determined");
  CHECK_ERR ("FROM a\nCOPY --from=x\n", "Dockerfile:2: COPY requires at least two arguments");
}

/* COPY --from takes no variables: BuildKit refuses the word when it differs
 * once processed without variables. */
TEST (copy_from_no_variables)
{
  const char *msg = "variable expansion is not supported for --from, define a new stage with FROM "
                    "using ARG from global scope as a workaround";
  cleanup_free char *m1 = ob_xasprintf ("Dockerfile:3: %s", msg);
  cleanup_free char *m2 = ob_xasprintf ("Dockerfile:2: %s", msg);
  CHECK_ERR ("FROM a\nARG X=a\nCOPY --from=$X /f /g\n", m1);
  CHECK_ERR ("FROM a\nCOPY --from=${X:-a} /f /g\n", m2);
  CHECK_ERR ("FROM a\nCOPY --from=st$X /f /g\n", m2);
  /* ADD has no --from; a literal name, an index, an image are fine */
  struct ob_dockerfile *df = parse_ok ("FROM a\nCOPY --from=build /f /g\nCOPY --from=0 /f /g\n"
                                       "COPY --from=docker.io/library/x:1@sha256:" 
                                       "0000000000000000000000000000000000000000000000000000000000000000 /f /g\n");
  ob_dockerfile_free (df);
}

/* RUN flags BuildKit checks when parsing: mount from= without variables,
 * --security values, --device (not supported by obuild). */
TEST (run_flags_checked)
{
  CHECK_ERR ("FROM a\nRUN --mount=type=bind,from=$X,target=/x true\n",
             "Dockerfile:2: 'from' doesn't support variable expansion, define alias stage instead");
  CHECK_ERR ("FROM a\nRUN --mount=from=s${X}t,target=/x true\n",
             "Dockerfile:2: 'from' doesn't support variable expansion, define alias stage instead");
  CHECK_ERR ("FROM a\nRUN --security=insecure true\n",
             "Dockerfile:2: RUN --security=insecure is not supported: every step runs in the sandbox");
  CHECK_ERR ("FROM a\nRUN --security=other true\n", "Dockerfile:2: security \"other\" is not valid");
  CHECK_ERR ("FROM a\nRUN --device=/dev/fuse true\n", "Dockerfile:2: RUN --device is not supported");
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN --security=sandbox --mount=type=bind,from=st$,target=/x "
                                       "--mount=type=cache,target=$DIR true\n");
  ob_dockerfile_free (df);
}

/* ADD --unpack is BuildKit's boolean flag; COPY has none. */
TEST (add_unpack_flag)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nADD --unpack=false x.tar /d/\nADD --unpack http://h/x.tar /d/\n");
  if (!df)
    return;
  CHECK_STR (flag_value (&df->instrs[1], "unpack"), "false");
  CHECK_INT (df->instrs[2].n_flags, 1);
  CHECK_STR (df->instrs[2].flags[0].name, "unpack");
  CHECK_STR (flag_value (&df->instrs[2], "unpack"), NULL);
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nADD --unpack=maybe x /d/\n",
             "Dockerfile:2: expecting boolean value for flag --unpack, not: maybe");
  CHECK_ERR ("FROM a\nCOPY --unpack x /d/\n", "Dockerfile:2: unknown flag --unpack for COPY");
}

TEST (unknown_flags)
{
  CHECK_ERR ("FROM a\nCOPY --foo=1 a b\n", "Dockerfile:2: unknown flag --foo for COPY");
  CHECK_ERR ("FROM a\nCOPY --keep-git-dir a b\n",
             "Dockerfile:2: unknown flag --keep-git-dir for COPY");
  CHECK_ERR ("FROM a\nADD --from=x a b\n", "Dockerfile:2: unknown flag --from for ADD");
  CHECK_ERR ("FROM a\nENV --x=1 a=b\n", "Dockerfile:2: unknown flag --x for ENV");
  CHECK_ERR ("FROM a\nRUN --mount=type=cache,target=/c --netwrk=none true\n",
             "Dockerfile:2: unknown flag --netwrk for RUN");
  CHECK_ERR ("FROM --plat=x a\n", "Dockerfile:1: unknown flag --plat for FROM");
  CHECK_ERR ("FROM a\nWORKDIR --x /\n", "Dockerfile:2: unknown flag --x for WORKDIR");
}

TEST (flag_value_errors)
{
  CHECK_ERR ("FROM a\nCOPY --from x y\n", "Dockerfile:2: missing a value on flag --from");
  CHECK_ERR ("FROM a\nCOPY --link= x y\n", "Dockerfile:2: missing a value on flag --link");
  CHECK_ERR ("FROM a\nCOPY --link=yes x y\n",
             "Dockerfile:2: expecting boolean value for flag --link, not: yes");
  CHECK_ERR ("FROM a\nCOPY --from=a --from=b x y\n",
             "Dockerfile:2: duplicate flag specified: --from");
}

TEST (run_flags_mount_repeated)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nRUN --mount=type=cache,target=/root/.cache "
                  "--network=none --mount=type=secret,id=tok --security=sandbox make\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_flags, 4);
  CHECK_STR (in->flags[0].name, "mount");
  CHECK_STR (in->flags[0].value, "type=cache,target=/root/.cache");
  CHECK_STR (in->flags[1].value, "none");
  CHECK_STR (in->flags[2].name, "mount");
  CHECK_STR (in->flags[2].value, "type=secret,id=tok");
  CHECK_STR (flag_value (in, "security"), "sandbox");
  CHECK_STR (in->args[0], "make");
  ob_dockerfile_free (df);
}

/* extractBuilderFlags removes quotes and backslashes; "--" ends the flags;
 * a word not starting with "--" ends them too. */
TEST (flag_quoting_and_end)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN --mount=type=bind,target=\"/a b\" "
                                       "-- --not-a-flag\nRUN echo --mount=x\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_flags, 1);
  CHECK_STR (df->instrs[1].flags[0].value, "type=bind,target=/a b");
  CHECK_STR (df->instrs[1].rest, "--not-a-flag");
  CHECK_INT (df->instrs[2].n_flags, 0);
  CHECK_STR (df->instrs[2].rest, "echo --mount=x");
  ob_dockerfile_free (df);
}

/* ---- VOLUME / USER / WORKDIR / STOPSIGNAL ---- */

TEST (volume_forms)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nVOLUME /data /logs\nVOLUME [\"/v 1\"]\n");
  if (!df)
    return;
  CHECK (!df->instrs[1].json);
  CHECK_STR (df->instrs[1].rest, "/data /logs");
  CHECK (df->instrs[2].json);
  CHECK_STR (df->instrs[2].args[0], "/v 1");
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nVOLUME\n", "Dockerfile:2: VOLUME requires at least one argument");
  CHECK_ERR ("FROM a\nVOLUME []\n", "Dockerfile:2: VOLUME requires at least one argument");
  CHECK_ERR ("FROM a\nVOLUME [\" \"]\n",
             "Dockerfile:2: VOLUME specified can not be an empty string");
}

TEST (user_workdir_stopsignal)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nUSER app:app\nWORKDIR /src/$NAME\nSTOPSIGNAL SIGTERM\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].kind, OB_I_USER);
  CHECK_STR (df->instrs[1].rest, "app:app");
  CHECK_STR (df->instrs[2].rest, "/src/$NAME");
  CHECK_INT (df->instrs[3].kind, OB_I_STOPSIGNAL);
  CHECK_STR (df->instrs[3].rest, "SIGTERM");
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument");
  CHECK_ERR ("FROM a\nUSER  \n", "Dockerfile:2: USER requires exactly one argument");
  CHECK_ERR ("FROM a\nSTOPSIGNAL\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument");
}

/* ---- ARG ---- */

TEST (arg_forms)
{
  struct ob_dockerfile *df
      = parse_ok ("ARG base\nARG tag=latest\nFROM $base:$tag\nARG a=1 b=2 c \"d\"=\"x y\"\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[0].kind, OB_I_ARG);
  CHECK_STR (df->instrs[0].kvs[0].key, "base");
  CHECK (df->instrs[0].kvs[0].value == NULL);
  CHECK_STR (df->instrs[1].kvs[0].value, "latest");
  CHECK_STR (df->instrs[2].from_image, "$base:$tag");
  struct ob_instr *in = &df->instrs[3];
  CHECK_INT (in->n_kvs, 4);
  CHECK_STR (in->kvs[0].key, "a");
  CHECK_STR (in->kvs[0].value, "1");
  CHECK_STR (in->kvs[1].value, "2");
  CHECK_STR (in->kvs[2].key, "c");
  CHECK (in->kvs[2].value == NULL);
  CHECK_STR (in->kvs[3].key, "\"d\"");
  CHECK_STR (in->kvs[3].value, "\"x y\"");
  ob_dockerfile_free (df);
}

TEST (arg_errors)
{
  CHECK_ERR ("ARG =x\nFROM a\n", "Dockerfile:1: ARG names can not be blank");
  CHECK_ERR ("FROM a\nARG\n", "Dockerfile:2: ARG requires at least one argument");
}

/* ---- ONBUILD ---- */

TEST (onbuild_trigger)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nONBUILD  COPY --chown=1 . /app\n"
                                       "onbuild run [\"make\"]\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->kind, OB_I_ONBUILD);
  CHECK (in->onbuild != NULL);
  CHECK_INT (in->onbuild->kind, OB_I_COPY);
  CHECK_STR (flag_value (in->onbuild, "chown"), "1");
  CHECK_STR (in->onbuild->rest, ". /app");
  CHECK_INT (in->onbuild->line, 2);
  CHECK_STR (in->onbuild_text, "COPY --chown=1 . /app");
  CHECK (df->instrs[2].onbuild->json);
  CHECK_STR (df->instrs[2].onbuild->args[0], "make");
  CHECK_STR (df->instrs[2].onbuild_text, "run [\"make\"]");
  ob_dockerfile_free (df);
}

TEST (onbuild_errors)
{
  CHECK_ERR ("FROM a\nONBUILD ONBUILD RUN x\n",
             "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  CHECK_ERR ("FROM a\nONBUILD from b\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger");
  CHECK_ERR ("FROM a\nONBUILD MAINTAINER me\n",
             "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger");
  CHECK_ERR ("FROM a\nONBUILD\n", "Dockerfile:2: ONBUILD requires at least one argument");
  CHECK_ERR ("FROM a\nONBUILD RUNN x\n", "Dockerfile:2: unknown instruction \"RUNN\"");
  CHECK_ERR ("FROM a\nONBUILD COPY x\n",
             "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
             "Destination could not be determined");
}

TEST (onbuild_heredoc)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN x\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 3);
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->onbuild->n_heredocs, 1);
  CHECK_STR (in->onbuild->heredocs[0].content, "echo hi\n");
  CHECK_STR (in->onbuild_text, "RUN <<EOF\necho hi\nEOF");
  CHECK_INT (in->end_line, 4);
  /* the stored text parses back to the same trigger */
  struct ob_instr *t = NULL;
  ob_error_t err = NULL;
  CHECK_INT (ob_dockerfile_parse_instr ("Dockerfile", 2, in->onbuild_text, '\\', &t, &err), 0);
  if (t)
    {
      CHECK_INT (t->n_heredocs, 1);
      CHECK_STR (t->heredocs[0].content, "echo hi\n");
      ob_instr_free (t);
    }
  ob_error_free (&err);
  ob_dockerfile_free (df);
}

/* ---- HEALTHCHECK ---- */

TEST (healthcheck_none)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nHEALTHCHECK none\n");
  if (!df)
    return;
  CHECK (df->instrs[1].healthcheck_none);
  CHECK_INT (df->instrs[1].n_args, 0);
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments");
}

TEST (healthcheck_cmd_shell_with_options)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nHEALTHCHECK --interval=30s --timeout=3s --start-period=5s "
                  "--start-interval=1s --retries=3 CMD curl -f http://localhost/ || exit 1\n");
  if (!df)
    return;
  struct ob_instr *in = &df->instrs[1];
  CHECK (!in->healthcheck_none);
  CHECK_INT (in->n_flags, 5);
  CHECK_STR (flag_value (in, "interval"), "30s");
  CHECK_STR (flag_value (in, "start-interval"), "1s");
  CHECK_STR (flag_value (in, "retries"), "3");
  CHECK (!in->json);
  CHECK_STR (in->args[0], "curl -f http://localhost/ || exit 1");
  CHECK_STR (in->rest, "curl -f http://localhost/ || exit 1");
  ob_dockerfile_free (df);
}

TEST (healthcheck_cmd_exec)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nHEALTHCHECK cmd [\"/bin/check\", \"-q\"]\n");
  if (!df)
    return;
  CHECK (df->instrs[1].json);
  CHECK_INT (df->instrs[1].n_args, 2);
  CHECK_STR (df->instrs[1].args[1], "-q");
  ob_dockerfile_free (df);
}

TEST (healthcheck_errors)
{
  CHECK_ERR ("FROM a\nHEALTHCHECK\n", "Dockerfile:2: HEALTHCHECK requires at least one argument");
  CHECK_ERR ("FROM a\nHEALTHCHECK CMD\n", "Dockerfile:2: Missing command after HEALTHCHECK CMD");
  CHECK_ERR ("FROM a\nHEALTHCHECK CMD []\n",
             "Dockerfile:2: Missing command after HEALTHCHECK CMD");
  CHECK_ERR ("FROM a\nHEALTHCHECK RUN x\n",
             "Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)");
  CHECK_ERR ("FROM a\nHEALTHCHECK --every=3s CMD x\n",
             "Dockerfile:2: unknown flag --every for HEALTHCHECK");
}

/* ---- SHELL ---- */

TEST (shell_json_required)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].kind, OB_I_SHELL);
  CHECK (df->instrs[1].json);
  CHECK_INT (df->instrs[1].n_args, 4);
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nSHELL /bin/bash -c\n",
             "Dockerfile:2: SHELL requires the arguments to be in JSON form");
  CHECK_ERR ("FROM a\nSHELL []\n", "Dockerfile:2: SHELL requires at least one argument");
  CHECK_ERR ("FROM a\nSHELL\n", "Dockerfile:2: SHELL requires at least one argument");
}

/* ---- unknown instruction, FROM checks ---- */

TEST (unknown_instruction)
{
  CHECK_ERR ("FROM a\n\n# c\nRUNN make\n", "Dockerfile:4: unknown instruction \"RUNN\"");
  CHECK_ERR ("FROM a\ncopy-it a b\n", "Dockerfile:2: unknown instruction \"copy-it\"");
}

TEST (no_from)
{
  CHECK_ERR ("", "Dockerfile: no FROM instruction");
  CHECK_ERR ("# only a comment\n\n", "Dockerfile: no FROM instruction");
  CHECK_ERR ("ARG a=1\nARG b\n", "Dockerfile: no FROM instruction");
  CHECK_ERR ("ARG a=1\n\nRUN echo\nFROM a\n", "Dockerfile:3: no build stage in current context");
  CHECK_ERR ("LABEL a=b\n", "Dockerfile:1: no build stage in current context");
}

/* ---- parser directives ---- */

TEST (directive_syntax)
{
  struct ob_dockerfile *df = parse_ok ("# syntax=docker/dockerfile:1.7\nFROM a\n");
  if (!df)
    return;
  CHECK_STR (df->syntax, "docker/dockerfile:1.7");
  CHECK_INT (df->instrs[0].line, 2);
  ob_dockerfile_free (df);
}

TEST (directive_escape_backtick)
{
  struct ob_dockerfile *df = parse_ok ("# escape=`\nFROM windows\nRUN dir c:\\ `\n  /s\n"
                                       "ENV p=c:\\dir x=a`\"b\n");
  if (!df)
    return;
  CHECK_INT (df->escape, '`');
  CHECK_STR (df->instrs[1].args[0], "dir c:\\   /s");
  CHECK_INT (df->instrs[2].n_kvs, 2);
  CHECK_STR (df->instrs[2].kvs[0].value, "c:\\dir");
  CHECK_STR (df->instrs[2].kvs[1].value, "a`\"b");
  ob_dockerfile_free (df);
}

TEST (directive_case_and_whitespace)
{
  struct ob_dockerfile *df
      = parse_ok ("#  ESCAPE = `  \n# Syntax\t=\tfoo/bar \n# check=skip=all\nFROM a\n");
  if (!df)
    return;
  CHECK_INT (df->escape, '`');
  CHECK_STR (df->syntax, "foo/bar");
  ob_dockerfile_free (df);
}

TEST (directive_invalid_escape)
{
  CHECK_ERR ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token 'x' does not match ` or \\");
  CHECK_ERR ("# syntax=a\n# escape=\\\\\nFROM a\n",
             "Dockerfile:2: invalid escape token '\\\\' does not match ` or \\");
}

TEST (directive_duplicate)
{
  CHECK_ERR ("# escape=`\n# escape=\\\nFROM a\n",
             "Dockerfile:2: only one escape parser directive can be used");
}

/* A directive after a comment, an empty line or an instruction is a comment. */
TEST (directive_only_at_top)
{
  struct ob_dockerfile *df = parse_ok ("# hello\n# escape=`\nFROM a\nRUN a \\\n b\n");
  if (!df)
    return;
  CHECK_INT (df->escape, '\\');
  CHECK_STR (df->instrs[1].args[0], "a  b");
  ob_dockerfile_free (df);
  df = parse_ok ("\n# escape=`\nFROM a\n");
  if (df)
    CHECK_INT (df->escape, '\\');
  ob_dockerfile_free (df);
  df = parse_ok ("# foo=bar\n# escape=`\nFROM a\n# syntax=x\n");
  if (df)
    {
      CHECK_INT (df->escape, '\\');
      CHECK (df->syntax == NULL);
    }
  ob_dockerfile_free (df);
}

/* ---- comments, continuations, line endings ---- */

TEST (comments)
{
  struct ob_dockerfile *df = parse_ok ("# top\nFROM a\n   # indented comment\nRUN echo # not "
                                       "a comment\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 2);
  CHECK_STR (df->instrs[1].args[0], "echo # not a comment");
  CHECK_INT (df->instrs[1].line, 4);
  ob_dockerfile_free (df);
}

TEST (continuation_with_comments_and_empty_lines)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN apt-get update && \\\n"
                                       "# a comment\n"
                                       "\n"
                                       "    # indented comment\n"
                                       "   \t \n"
                                       "    apt-get install -y x \\\n"
                                       "    && rm -rf /var/lib/apt\n"
                                       "USER app\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 3);
  struct ob_instr *in = &df->instrs[1];
  CHECK_STR (in->args[0], "apt-get update &&     apt-get install -y x     && rm -rf /var/lib/apt");
  CHECK_STR (in->original,
             "RUN apt-get update &&     apt-get install -y x     && rm -rf /var/lib/apt");
  CHECK_INT (in->line, 2);
  CHECK_INT (in->end_line, 8);
  CHECK_INT (df->instrs[2].line, 9);
  ob_dockerfile_free (df);
}

TEST (continuation_trailing_whitespace)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN echo a \\  \t\n  b\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 2);
  CHECK_STR (df->instrs[1].args[0], "echo a   b");
  ob_dockerfile_free (df);
}

TEST (escape_at_eof)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN echo hi \\");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 2);
  CHECK_STR (df->instrs[1].args[0], "echo hi");
  CHECK_STR (df->instrs[1].original, "RUN echo hi ");
  ob_dockerfile_free (df);
  df = parse_ok ("FROM a\nRUN echo hi \\\n\n# c\n");
  if (df)
    {
      CHECK_INT (df->n_instrs, 2);
      CHECK_INT (df->instrs[1].end_line, 4);
    }
  ob_dockerfile_free (df);
  df = parse_ok ("FROM a\n\\\n");
  if (df)
    CHECK_INT (df->n_instrs, 1);
  ob_dockerfile_free (df);
}

/* BuildKit: an escape preceded by an escape ends the line (its regex
 * ([^\\])\\[ \t]*$), so `trailing\\` does not swallow the next line. */
TEST (escaped_escape_at_end_of_line)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nENV C trailing\\\\\nLABEL a=x\\\\  \nLABEL b=y\n"
                                       "RUN echo \\\\\\\nUSER app\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 6);
  if (df->n_instrs != 6)
    {
      ob_dockerfile_free (df);
      return;
    }
  CHECK_STR (df->instrs[1].kvs[0].value, "trailing\\\\");
  CHECK_INT (df->instrs[2].kind, OB_I_LABEL);
  CHECK_STR (df->instrs[2].kvs[0].value, "x\\\\");
  CHECK_INT (df->instrs[3].kind, OB_I_LABEL);
  CHECK_STR (df->instrs[3].kvs[0].key, "b");
  /* three escapes: not a continuation in BuildKit either */
  CHECK_STR (df->instrs[4].original, "RUN echo \\\\\\");
  CHECK_INT (df->instrs[5].kind, OB_I_USER);
  ob_dockerfile_free (df);
  /* with `# escape=\``, the same for backticks */
  df = parse_ok ("# escape=`\nFROM a\nENV C x``\nUSER app\nRUN a `\n b\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 4);
  if (df->n_instrs != 4)
    {
      ob_dockerfile_free (df);
      return;
    }
  CHECK_STR (df->instrs[1].kvs[0].value, "x``");
  CHECK_INT (df->instrs[2].kind, OB_I_USER);
  CHECK_STR (df->instrs[3].args[0], "a  b");
  ob_dockerfile_free (df);
}

TEST (crlf_line_endings)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\r\nRUN echo a \\\r\n  b\r\nENV x=1\r\n"
                                       "RUN <<EOF\r\nline\r\nEOF\r\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 4);
  CHECK_STR (df->instrs[0].from_image, "a");
  CHECK_STR (df->instrs[1].args[0], "echo a   b");
  CHECK_STR (df->instrs[2].kvs[0].value, "1");
  CHECK_INT (df->instrs[3].n_heredocs, 1);
  CHECK_STR (df->instrs[3].heredocs[0].content, "line\n");
  ob_dockerfile_free (df);
}

TEST (utf8_bom_skipped)
{
  struct ob_dockerfile *df = parse_ok ("\xef\xbb\xbf# syntax=x/y\nFROM a\n");
  if (!df)
    return;
  CHECK_STR (df->syntax, "x/y");
  CHECK_INT (df->instrs[0].line, 2);
  ob_dockerfile_free (df);
}

TEST (original_and_lines)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\n\n  COPY --chown=1 \\\n  a b\n");
  if (!df)
    return;
  CHECK_STR (df->instrs[1].original, "COPY --chown=1   a b");
  CHECK_INT (df->instrs[1].line, 3);
  CHECK_INT (df->instrs[1].end_line, 4);
  ob_dockerfile_free (df);
}

/* ---- heredocs ---- */

TEST (heredoc_run)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN <<EOF\nset -e\n  echo \"$HOME\"\n\n# kept\nEOF\n"
                                       "USER x\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 3);
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_heredocs, 1);
  CHECK_STR (in->heredocs[0].name, "EOF");
  CHECK_STR (in->heredocs[0].content, "set -e\n  echo \"$HOME\"\n\n# kept\n");
  CHECK (in->heredocs[0].expand);
  CHECK (!in->heredocs[0].chomp);
  CHECK_STR (in->rest, "<<EOF");
  CHECK_STR (in->original, "RUN <<EOF");
  CHECK_INT (in->line, 2);
  CHECK_INT (in->end_line, 7);
  CHECK_INT (df->instrs[2].line, 8);
  ob_dockerfile_free (df);
}

TEST (heredoc_chomp)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN <<-EOT\n\t\techo a\n\t  b\n\tEOT\n");
  if (!df)
    return;
  CHECK (df->instrs[1].heredocs[0].chomp);
  CHECK_STR (df->instrs[1].heredocs[0].name, "EOT");
  CHECK_STR (df->instrs[1].heredocs[0].content, "echo a\n  b\n");
  ob_dockerfile_free (df);
}

TEST (heredoc_quoted_no_expand)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN <<'EOF'\n$x\nEOF\nRUN <<\"END\"\n$y\nEND\n"
                                       "RUN <<E\"O\"F\nz\nEOF\n");
  if (!df)
    return;
  CHECK_STR (df->instrs[1].heredocs[0].name, "EOF");
  CHECK (!df->instrs[1].heredocs[0].expand);
  CHECK_STR (df->instrs[1].heredocs[0].content, "$x\n");
  CHECK_STR (df->instrs[2].heredocs[0].name, "END");
  CHECK (!df->instrs[2].heredocs[0].expand);
  CHECK_STR (df->instrs[3].heredocs[0].name, "EOF");
  CHECK (!df->instrs[3].heredocs[0].expand);
  ob_dockerfile_free (df);
}

TEST (heredoc_several_on_one_line)
{
  struct ob_dockerfile *df
      = parse_ok ("FROM a\nRUN <<A cat /dev/stdin <<-B > out\nfirst\nA\n\tsecond\n\tB\nRUN x\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 3);
  struct ob_instr *in = &df->instrs[1];
  CHECK_INT (in->n_heredocs, 2);
  CHECK_STR (in->heredocs[0].name, "A");
  CHECK_STR (in->heredocs[0].content, "first\n");
  CHECK_STR (in->heredocs[1].name, "B");
  CHECK (in->heredocs[1].chomp);
  CHECK_STR (in->heredocs[1].content, "second\n");
  CHECK_STR (in->rest, "<<A cat /dev/stdin <<-B > out");
  ob_dockerfile_free (df);
}

TEST (heredoc_with_command)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN python3 <<EOF\nprint(1)\nEOF\n");
  if (!df)
    return;
  CHECK_STR (df->instrs[1].rest, "python3 <<EOF");
  CHECK_STR (df->instrs[1].args[0], "python3 <<EOF");
  CHECK_STR (df->instrs[1].heredocs[0].content, "print(1)\n");
  ob_dockerfile_free (df);
}

TEST (heredoc_copy)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCOPY --chmod=600 <<EOF /etc/conf\nk=v\nEOF\n"
                                       "ADD <<one <<two /dst/\n1\none\n2\ntwo\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_heredocs, 1);
  CHECK_STR (df->instrs[1].rest, "<<EOF /etc/conf");
  CHECK_STR (df->instrs[1].heredocs[0].content, "k=v\n");
  CHECK_INT (df->instrs[2].n_heredocs, 2);
  CHECK_STR (df->instrs[2].heredocs[1].content, "2\n");
  ob_dockerfile_free (df);
  CHECK_ERR ("FROM a\nCOPY a <<EOF\nx\nEOF\n",
             "Dockerfile:2: COPY cannot accept a heredoc as a destination");
}

/* "<<" followed by blanks is no heredoc (BuildKit splits the line into
 * words first: "<<" alone has no name), so its body lines are instructions;
 * "<<$EOF" is the heredoc "$EOF" (unset variables are kept in the name). */
TEST (heredoc_blank_after_marker_and_dollar_name)
{
  CHECK_ERR ("FROM a\nCOPY <<  EOF /f\nhello\nEOF\n", "Dockerfile:3: unknown instruction \"hello\"");
  struct ob_dockerfile *df = parse_ok ("FROM a\nCOPY <<$EOF /o\nhello\n$EOF\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 2);
  CHECK_INT (df->instrs[1].n_heredocs, 1);
  CHECK_STR (df->instrs[1].heredocs[0].name, "$EOF");
  CHECK_STR (df->instrs[1].heredocs[0].content, "hello\n");
  ob_dockerfile_free (df);
}

/* Heredocs are recognised on RUN/COPY/ADD shell form only. */
TEST (heredoc_only_where_allowed)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nCMD cat <<EOF\nRUN [\"cat\", \"<<EOF\"]\n"
                                       "RUN echo '<<EOF' \"<<X\" a<<Y <<<here\n");
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 4);
  CHECK_INT (df->instrs[1].n_heredocs, 0);
  CHECK_INT (df->instrs[2].n_heredocs, 0);
  CHECK_INT (df->instrs[3].n_heredocs, 0);
  ob_dockerfile_free (df);
}

TEST (heredoc_after_continuation_and_empty_body)
{
  struct ob_dockerfile *df = parse_ok ("FROM a\nRUN \\\n  cat <<EOF\nEOF\n");
  if (!df)
    return;
  CHECK_INT (df->instrs[1].n_heredocs, 1);
  CHECK_STR (df->instrs[1].heredocs[0].content, "");
  CHECK_INT (df->instrs[1].end_line, 4);
  ob_dockerfile_free (df);
}

TEST (heredoc_unterminated)
{
  CHECK_ERR ("FROM a\n\nRUN <<EOF\necho\nEOF2\n", "Dockerfile:3: unterminated heredoc \"EOF\"");
  CHECK_ERR ("FROM a\nRUN <<A <<B\na\nA\nb\n", "Dockerfile:2: unterminated heredoc \"B\"");
  /* without "-", an indented terminator does not count */
  CHECK_ERR ("FROM a\nRUN <<EOF\nx\n\tEOF\n", "Dockerfile:2: unterminated heredoc \"EOF\"");
}

TEST (heredoc_word_api)
{
  char *name = NULL;
  bool expand = true, chomp = false;

  CHECK (ob_dockerfile_heredoc_word ("<<-'My EOF'", &name, &expand, &chomp));
  CHECK_STR (name, "My EOF");
  CHECK (!expand);
  CHECK (chomp);
  free (name);
  name = NULL;
  CHECK (ob_dockerfile_heredoc_word ("3<<EOF", &name, &expand, &chomp));
  CHECK_STR (name, "EOF");
  CHECK (expand);
  CHECK (!chomp);
  free (name);
  CHECK (ob_dockerfile_heredoc_word ("<<X", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("<<", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("<<-", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("<<<x", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("a<<EOF", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("<<a b", NULL, NULL, NULL));
  CHECK (!ob_dockerfile_heredoc_word ("/dst", NULL, NULL, NULL));
}

/* ---- shell-word processing ---- */

TEST (word_quotes)
{
  CHECK_WORD ("'a $a \\x \"b\"'", "a $a \\x \"b\"");
  CHECK_WORD ("\"a $a \\x \\\" \\\\ \\$a 'q'\"", "a A \\x \" \\ $a 'q'");
  CHECK_WORD ("a\" b \"c' d 'e", "a b c d e");
  CHECK_WORD ("\"\"", "");
  CHECK_WORD ("''", "");
}

TEST (word_unquoted_escape)
{
  CHECK_WORD ("a\\ b\\\\c\\\"d\\'e", "a b\\c\"d'e");
  CHECK_WORD ("\\$a", "$a");
  CHECK_WORD ("trailing\\", "trailing");
}

TEST (word_simple_vars)
{
  CHECK_WORD ("$a", "A");
  CHECK_WORD ("${a}", "A");
  CHECK_WORD ("x$a-y${b}z", "xA-yBz");
  CHECK_WORD ("$unset|${unset}", "|");
  CHECK_WORD ("$sp", "x y");
  CHECK_WORD ("${path}:/x", "/usr/local/bin:/x");
  CHECK_WORD ("$a_b", "");
}

TEST (word_dollar_literal)
{
  CHECK_WORD ("a$", "a$");
  CHECK_WORD ("$", "$");
  CHECK_WORD ("$ x", "$ x");
  CHECK_WORD ("$/x", "$/x");
  CHECK_WORD ("\"a$\"", "a$");
  CHECK_WORD ("'$a'", "$a");
}

TEST (word_default_operators)
{
  CHECK_WORD ("${unset:-w}", "w");
  CHECK_WORD ("${empty:-w}", "w");
  CHECK_WORD ("${a:-w}", "A");
  CHECK_WORD ("${unset-w}", "w");
  CHECK_WORD ("${empty-w}", "");
  CHECK_WORD ("${a-w}", "A");
  CHECK_WORD ("${unset:-}", "");
  CHECK_WORD ("${unset:-a b}", "a b");
}

TEST (word_alternate_operators)
{
  CHECK_WORD ("${a:+w}", "w");
  CHECK_WORD ("${empty:+w}", "");
  CHECK_WORD ("${unset:+w}", "");
  CHECK_WORD ("${a+w}", "w");
  CHECK_WORD ("${empty+w}", "w");
  CHECK_WORD ("${unset+w}", "");
}

TEST (word_error_operators)
{
  CHECK_WORD ("${a:?msg}", "A");
  CHECK_WORD ("${empty?msg}", "");
  CHECK_WORD ("${unset?}", "ERR: failed to process \"${unset?}\": unset: is not allowed to be unset");
  CHECK_WORD ("${unset:?need it}",
              "ERR: failed to process \"${unset:?need it}\": unset: need it");
  CHECK_WORD ("${empty:?}",
              "ERR: failed to process \"${empty:?}\": empty: is not allowed to be empty");
  CHECK_WORD ("${unset?custom $a}", "ERR: failed to process \"${unset?custom $a}\": unset: custom A");
}

TEST (word_nested)
{
  CHECK_WORD ("${unset:-${a}}", "A");
  CHECK_WORD ("${unset:-${also:-$b}}", "B");
  CHECK_WORD ("${a:+pre-${b}-post}", "pre-B-post");
  CHECK_WORD ("${unset:-\"q }\"}", "q }");
  CHECK_WORD ("${unset:-a\\}b}", "a}b");
  CHECK_WORD ("\"${unset:-x y}\"", "x y");
}

/* Nesting ${...} (also through double quotes and in heredoc words) is
 * bounded: 64 levels expand, deeper is an error, never a stack overflow. */
static char *
nested (size_t depth, const char *open, const char *inner, const char *close)
{
  struct ob_buf b = { 0 };
  for (size_t i = 0; i < depth; i++)
    ob_buf_adds (&b, open);
  ob_buf_adds (&b, inner);
  for (size_t i = 0; i < depth; i++)
    ob_buf_adds (&b, close);
  return ob_buf_steal (&b);
}

TEST (word_nesting_limit)
{
  char *w = nested (64, "${unset:-", "deep", "}");
  char *r = word_esc (w, '\\');
  CHECK_STR (r, "deep");
  free (r);
  free (w);
  w = nested (65, "${unset:-", "deep", "}");
  r = word_esc (w, '\\');
  CHECK_STR (r, "ERR: failed to process \"${unset:-${unset:-${unset:-${unset:-${unset:-${unset:-${unse...\" "
                "(654 bytes): ${...} nested more than 64 levels");
  free (r);
  free (w);
  w = nested (30000, "${a:-", "y", "}");
  r = words_joined (w, '\\');
  CHECK (strstr (r, "nested more than 64 levels") != NULL);
  free (r);
  free (w);
  w = nested (30000, "\"${a:+", "y", "}\"");
  r = word_esc (w, '\\');
  CHECK (strstr (r, "nested more than 64 levels") != NULL);
  free (r);
  free (w);
  /* a heredoc marker of deep nesting is simply no heredoc */
  {
    char *body = nested (30000, "${a:-", "y", "}");
    char *mark = ob_xasprintf ("<<%s", body);
    CHECK (!ob_dockerfile_heredoc_word (mark, NULL, NULL, NULL));
    free (mark);
    free (body);
  }
  /* JSON arrays nested 30,000 deep: jansson's depth limit makes it the
   * shell form, as any invalid JSON */
  {
    char *json = nested (30000, "[", "\"x\"", "]");
    char *text = ob_xasprintf ("FROM a\nCMD %s\n", json);
    struct ob_dockerfile *df = parse_ok (text);
    if (df)
      CHECK (!df->instrs[1].json);
    ob_dockerfile_free (df);
    free (text);
    free (json);
  }
}

/* Variables of a given size for the limit tests: "big" is big_len bytes
 * of 'A', "pat" is 'ab' repeated. */
static size_t big_len;
static char *big_value;

static const char *
big_lookup (void *data, const char *name)
{
  (void) data;
  if (strcmp (name, "big") == 0)
    {
      if (big_value == NULL || strlen (big_value) != big_len)
        {
          free (big_value);
          big_value = ob_xmalloc0 (big_len + 1);
          memset (big_value, 'A', big_len);
        }
      return big_value;
    }
  return NULL;
}

static char *
big_word (const char *raw, size_t len)
{
  char *out = NULL;
  ob_error_t err = NULL;
  big_len = len;
  if (ob_dockerfile_word (raw, '\\', big_lookup, NULL, &out, &err) < 0)
    {
      out = ob_xasprintf ("ERR: %s", err->msg);
      ob_error_free (&err);
    }
  return out;
}

/* One expanded word is at most 1 MiB (ENV x=$x$x doubling it line after
 * line grew to gigabytes); the pattern operators are bounded in work. */
TEST (word_size_limit)
{
  char *r = big_word ("$big", 1 << 20);
  CHECK_INT (strlen (r), 1 << 20);
  free (r);
  r = big_word ("$big$big", 1 << 19);
  CHECK_INT (strlen (r), 1 << 20);
  free (r);
  r = big_word ("${big}x", 1 << 20);
  CHECK_STR (r, "ERR: failed to process \"${big}x\": expansion longer than 1 MiB");
  free (r);
  r = big_word ("\"$big$big\"", 1 << 20);
  CHECK_STR (r, "ERR: failed to process \"\"$big$big\"\": expansion longer than 1 MiB");
  free (r);
  r = big_word ("${nope:-$big$big}", 1 << 20);
  CHECK_STR (r, "ERR: failed to process \"${nope:-$big$big}\": expansion longer than 1 MiB");
  free (r);
  /* a replacement multiplying the value */
  r = big_word ("${big//A/AAAAAAAAAAAAAAAA}", 1 << 17);
  CHECK_STR (r, "ERR: failed to process \"${big//A/AAAAAAAAAAAAAAAA}\": expansion longer than 1 MiB");
  free (r);
  {
    char **v = NULL;
    ob_error_t err = NULL;
    big_len = 1 << 20;
    CHECK_INT (ob_dockerfile_words ("$big $big", '\\', big_lookup, NULL, &v, &err), -1);
    CHECK (err && strstr (err->msg, "expansion longer than 1 MiB"));
    ob_error_free (&err);
    ob_strv_free (v);
  }
  /* trims of a 1 MiB value are linear */
  r = big_word ("${big##*B}", 1 << 20);
  CHECK_INT (strlen (r), 1 << 20);
  free (r);
  r = big_word ("${big%%A*}", 1 << 20);
  CHECK_STR (r, "");
  free (r);
  r = big_word ("${big#*A}", 1 << 20);
  CHECK_INT (strlen (r), (1 << 20) - 1);
  free (r);
  /* a replacement scanning the rest of the value from every position */
  r = big_word ("${big//*a*a*a/x}", 1 << 20);
  CHECK_STR (r, "ERR: failed to process \"${big//*a*a*a/x}\": pattern matching too expensive "
                "(more than 67108864 steps)");
  free (r);
  r = big_word ("${big//A/b}", 1 << 16);
  CHECK_INT (strlen (r), 1 << 16);
  CHECK (r[0] == 'b' && r[(1 << 16) - 1] == 'b');
  free (r);
  free (big_value);
  big_value = NULL;
}

TEST (word_pattern_operators)
{
  CHECK_WORD ("${file#*.}", "tar.gz");
  CHECK_WORD ("${file##*.}", "gz");
  CHECK_WORD ("${file%.*}", "archive.tar");
  CHECK_WORD ("${file%%.*}", "archive");
  CHECK_WORD ("${file/a/X}", "Xrchive.tar.gz");
  CHECK_WORD ("${file//a/X}", "Xrchive.tXr.gz");
  CHECK_WORD ("${file/.t*/}", "archive");
  CHECK_WORD ("${unset#x}", "");
  /* fnmatch(3) rules: brackets, classes, '?', escapes, '*' matching '/' */
  CHECK_WORD ("${file#[a-c]}", "rchive.tar.gz");
  CHECK_WORD ("${file%[!a]}", "archive.tar.g");
  CHECK_WORD ("${file%[!z]}", "archive.tar.gz");
  CHECK_WORD ("${file//[[:alpha:]]/x}", "xxxxxxx.xxx.xx");
  CHECK_WORD ("${file/\\./_}", "archive_tar.gz");
  CHECK_WORD ("${file#??}", "chive.tar.gz");
  CHECK_WORD ("${path##*/}", "bin");
  CHECK_WORD ("${path#*/}", "usr/local/bin");
  CHECK_WORD ("${path%/*}", "/usr/local");
  CHECK_WORD ("${file//[]a]/X}", "Xrchive.tXr.gz");
  CHECK_WORD ("${file/[a/X}", "archive.tar.gz");
  CHECK_WORD ("${file//*/X}", "X");
  CHECK_WORD ("${file/r*a/X}", "aXr.gz");
  CHECK_WORD ("${a:#x}", "ERR: failed to process \"${a:#x}\": unsupported modifier (:#) in substitution");
}

TEST (word_syntax_errors)
{
  CHECK_WORD ("${a", "ERR: failed to process \"${a\": syntax error: missing '}'");
  CHECK_WORD ("${", "ERR: failed to process \"${\": syntax error: missing '}'");
  CHECK_WORD ("${a:-x", "ERR: failed to process \"${a:-x\": syntax error: missing '}'");
  CHECK_WORD ("${}", "ERR: failed to process \"${}\": syntax error: bad substitution");
  CHECK_WORD ("${:a}", "ERR: failed to process \"${:a}\": syntax error: bad substitution");
  CHECK_WORD ("${a!}", "ERR: failed to process \"${a!}\": unsupported modifier (!) in substitution");
  CHECK_WORD ("'abc",
              "ERR: failed to process \"'abc\": unexpected end of statement while looking for "
              "matching single-quote");
  CHECK_WORD ("\"abc",
              "ERR: failed to process \"\"abc\": unexpected end of statement while looking for "
              "matching double-quote");
  CHECK_WORD ("\"abc\\\"",
              "ERR: failed to process \"\"abc\\\"\": unexpected end of statement while looking "
              "for matching double-quote");
}

TEST (word_backtick_escape)
{
  CHECK_WORD_ESC ("c:\\dir`$a", '`', "c:\\dir$a");
  CHECK_WORD_ESC ("a` b", '`', "a b");
  CHECK_WORD_ESC ("\"x`\"y\\\"", '`', "x\"y\\");
  CHECK_WORD_ESC ("\"``\"", '`', "`");
  CHECK_WORD_ESC ("$a\\", '`', "A\\");
}

TEST (words_split)
{
  CHECK_WORDS ("  a  b\tc  ", "a|b|c");
  CHECK_WORDS ("\"a b\" 'c d' e\\ f", "a b|c d|e f");
  CHECK_WORDS ("x\"\" \"\" ''", "x||");
  CHECK_WORDS ("", "");
  CHECK_WORDS ("$sp /dst", "x y|/dst");
  CHECK_WORDS ("pre$sp post", "prex y|post");
  CHECK_WORDS ("$unset /dst", "/dst");
  CHECK_WORDS ("${a}.txt ${unset:-d e}/", "A.txt|d e/");
  CHECK_WORDS ("'a", "ERR: failed to process \"'a\": unexpected end of statement while looking "
                     "for matching single-quote");
}

/* BuildKit's ProcessWords (EXPOSE): unquoted expansions split too */
TEST (words_split_expansions)
{
  CHECK_WORDS_SPLIT ("$sp /dst", "x|y|/dst");
  CHECK_WORDS_SPLIT ("pre$sp post", "prex|y|post");
  CHECK_WORDS_SPLIT ("\"$sp\" '$sp'", "x y|$sp");
  CHECK_WORDS_SPLIT ("$unset ${unset:-d e}/", "d|e/");
  CHECK_WORDS_SPLIT ("${empty}x", "x");
}

TEST (words_backtick)
{
  char *w = words_joined ("c:\\a` b `$a", '`');
  CHECK_STR (w, "c:\\a b|$a");
  free (w);
}

/* ---- ob_dockerfile_parse_instr, small API ---- */

TEST (parse_instr_single)
{
  struct ob_instr *in = NULL;
  ob_error_t err = NULL;

  CHECK_INT (ob_dockerfile_parse_instr ("Dockerfile", 7, "RUN echo `\n  hi", '`', &in, &err), 0);
  if (in)
    {
      CHECK_INT (in->kind, OB_I_RUN);
      CHECK_STR (in->args[0], "echo   hi");
      CHECK_INT (in->line, 7);
      CHECK_INT (in->end_line, 8);
      ob_instr_free (in);
      in = NULL;
    }
  CHECK_INT (ob_dockerfile_parse_instr ("Dockerfile", 7, "FROM x", '\\', &in, &err), 0);
  ob_instr_free (in);
  in = NULL;
  CHECK_INT (ob_dockerfile_parse_instr ("base", 3, "BOGUS x", '\\', &in, &err), -1);
  CHECK (in == NULL);
  CHECK_STR (err ? err->msg : NULL, "base:3: unknown instruction \"BOGUS\"");
  ob_error_free (&err);
  CHECK_INT (ob_dockerfile_parse_instr ("base", 3, "  ", '\\', &in, &err), -1);
  CHECK_STR (err ? err->msg : NULL, "base:3: empty instruction");
  ob_error_free (&err);
  CHECK_INT (ob_dockerfile_parse_instr ("base", 3, "RUN a\nRUN b", '\\', &in, &err), -1);
  CHECK_STR (err ? err->msg : NULL, "base:4: expected a single instruction");
  ob_error_free (&err);
}

TEST (kind_names_and_expansion)
{
  CHECK_STR (ob_instr_kind_name (OB_I_COPY), "COPY");
  CHECK_STR (ob_instr_kind_name (OB_I_HEALTHCHECK), "HEALTHCHECK");
  CHECK_STR (ob_instr_kind_name (OB_I_STOPSIGNAL), "STOPSIGNAL");
  CHECK (ob_instr_expands (OB_I_COPY));
  CHECK (ob_instr_expands (OB_I_WORKDIR));
  CHECK (ob_instr_expands (OB_I_FROM));
  CHECK (!ob_instr_expands (OB_I_RUN));
  CHECK (!ob_instr_expands (OB_I_CMD));
  CHECK (!ob_instr_expands (OB_I_ONBUILD));
}

TEST (hostile_inputs_do_not_crash)
{
  static const char *inputs[] = {
    "\\",
    "\\\n\\\n\\",
    "FROM a\nRUN \"",
    "FROM a\nRUN <<",
    "FROM a\nRUN <<-",
    "FROM a\nRUN <<'EOF\nx\n",
    "FROM a\nRUN <<EOF",
    "FROM a\nCOPY <<EOF",
    "FROM a\nENV \"",
    "FROM a\nENV a=\"\\",
    "FROM a\nLABEL a='\\",
    "FROM a\nRUN --mount=\"x\\",
    "FROM a\nRUN --",
    "FROM a\nRUN -- ",
    "FROM a\nRUN --=x y",
    "FROM a\nHEALTHCHECK \t",
    "FROM a\nCMD [[[[[[[[[[",
    "FROM a\nCMD [\"\\ud800\"]",
    "#",
    "# escape=",
    "# escape= ",
    "\r\r\n\r",
    "FROM a\nONBUILD ONBUILD",
    "FROM a\nONBUILD RUN <<EOF\n",
    "FROM\ta\v\f",
    "FROM a\nARG \"=\"",
    "\xef\xbb",
  };
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
    {
      free (parse_err (inputs[i]));
      char *w = word_esc (inputs[i], '\\');
      free (w);
      w = words_joined (inputs[i], '`');
      free (w);
    }
  /* embedded NUL bytes are an error (they cut the line short: RUN a\0b ran
   * `a`), with the line they are on; a length shorter than the string */
  {
    static const char nul[] = "FROM a\nRUN a\0b\nUSER x\n";
    static const char nul_comment[] = "FROM a\n\n# x\0\nUSER x\n";
    struct ob_dockerfile *df = NULL;
    ob_error_t err = NULL;
    CHECK_INT (ob_dockerfile_parse ("D", nul, sizeof nul - 1, &df, &err), -1);
    CHECK (df == NULL);
    CHECK_STR (err ? err->msg : NULL, "D:2: NUL byte in the Dockerfile");
    CHECK_INT (err ? err->kind : 0, OB_ERR_DOCKERFILE);
    ob_error_free (&err);
    CHECK_INT (ob_dockerfile_parse ("D", nul_comment, sizeof nul_comment - 1, &df, &err), -1);
    CHECK_STR (err ? err->msg : NULL, "D:3: NUL byte in the Dockerfile");
    ob_error_free (&err);
    CHECK_INT (ob_dockerfile_parse ("D", "FROM abc", 6, &df, &err), 0);
    if (df)
      CHECK_STR (df->instrs[0].from_image, "a");
    ob_dockerfile_free (df);
    ob_error_free (&err);
  }
}

/* Invalid UTF-8 in an instruction is an error naming its line (JSON would
 * drop it: LABEL k=\xff vanished, CMD ["\xff"] became the shell form);
 * comments may hold anything. */
TEST (invalid_utf8)
{
  CHECK_ERR ("FROM a\nLABEL k=\xff\n", "Dockerfile:2: invalid UTF-8 in the instruction");
  CHECK_ERR ("FROM a\nCMD [\"\xff\"]\n", "Dockerfile:2: invalid UTF-8 in the instruction");
  CHECK_ERR ("FROM a\nENV a=b \\\n  c=\xc3\x28\n", "Dockerfile:3: invalid UTF-8 in the instruction");
  CHECK_ERR ("FROM a\nRUN <<EOF\nok\n\xed\xa0\x80\nEOF\n", "Dockerfile:4: invalid UTF-8 in the instruction");
  CHECK_ERR ("FROM a\nONBUILD RUN <<EOF\n\xc0\xaf\nEOF\n", "Dockerfile:3: invalid UTF-8 in the instruction");
  CHECK_ERR ("\xff\nFROM a\n", "Dockerfile:1: invalid UTF-8 in the instruction");
  CHECK_ERR ("FROM a\nUSER \xf4\x90\x80\x80\n", "Dockerfile:2: invalid UTF-8 in the instruction");
  {
    struct ob_dockerfile *df = parse_ok ("\xef\xbb\xbf# \xe9t\xe9\nFROM a\n# \xff\nRUN a \\\n# \xfe\n  b\n"
                                         "LABEL k=\xc3\xa9 e=\xf0\x9f\x90\xb3\n");
    if (df)
      {
        CHECK_STR (df->instrs[1].args[0], "a   b");
        CHECK_STR (df->instrs[2].kvs[0].value, "\xc3\xa9");
        CHECK_STR (df->instrs[2].kvs[1].value, "\xf0\x9f\x90\xb3");
      }
    ob_dockerfile_free (df);
  }
  CHECK (ob_dockerfile_is_utf8 ("", 0));
  CHECK (ob_dockerfile_is_utf8 ("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\xb3", 10));
  CHECK (!ob_dockerfile_is_utf8 ("\xc3", 1));
  CHECK (!ob_dockerfile_is_utf8 ("\xe0\x80\x80", 3));
  CHECK (!ob_dockerfile_is_utf8 ("\xf8\x88\x80\x80\x80", 5));
}

/* A realistic multi-stage file end to end. */
TEST (multi_stage_file)
{
  const char *text = "# syntax=docker/dockerfile:1\n"
                     "ARG GO=1.22\n"
                     "FROM --platform=$BUILDPLATFORM golang:${GO} AS build\n"
                     "WORKDIR /src\n"
                     "COPY go.* ./\n"
                     "RUN --mount=type=cache,target=/go/pkg/mod \\\n"
                     "    go mod download\n"
                     "COPY . .\n"
                     "RUN CGO_ENABLED=0 go build -o /out/app .\n"
                     "\n"
                     "FROM scratch\n"
                     "COPY --from=build /out/app /app\n"
                     "USER 65534\n"
                     "ENTRYPOINT [\"/app\"]\n";
  struct ob_dockerfile *df = parse_ok (text);
  if (!df)
    return;
  CHECK_INT (df->n_instrs, 11);
  CHECK_STR (df->syntax, "docker/dockerfile:1");
  CHECK_INT (df->instrs[4].line, 6);
  CHECK_INT (df->instrs[4].end_line, 7);
  CHECK_STR (df->instrs[4].args[0], "go mod download");
  CHECK_STR (df->instrs[4].flags[0].value, "type=cache,target=/go/pkg/mod");
  CHECK_INT (df->instrs[7].kind, OB_I_FROM);
  CHECK_INT (df->instrs[7].line, 11);
  CHECK_STR (flag_value (&df->instrs[8], "from"), "build");
  ob_dockerfile_free (df);
}

int
main (void)
{
  RUN (from_simple);
  RUN (from_as_stage_lowercased);
  RUN (from_platform_flag);
  RUN (from_errors);
  RUN (keywords_case_insensitive);
  RUN (run_shell_form);
  RUN (run_exec_form);
  RUN (invalid_json_is_shell_form);
  RUN (json_non_string_is_error);
  RUN (json_trailing_text_is_shell_form);
  RUN (cmd_entrypoint_empty_allowed);
  RUN (run_empty_is_error);
  RUN (entrypoint_exec_form);
  RUN (label_pairs);
  RUN (label_legacy_and_errors);
  RUN (maintainer_expose);
  RUN (env_legacy_form);
  RUN (env_pairs_form);
  RUN (env_errors);
  RUN (add_shell_form_flags);
  RUN (copy_exec_form);
  RUN (copy_flags);
  RUN (copy_needs_two_args);
  RUN (copy_from_no_variables);
  RUN (heredoc_blank_after_marker_and_dollar_name);
  RUN (run_flags_checked);
  RUN (add_unpack_flag);
  RUN (unknown_flags);
  RUN (flag_value_errors);
  RUN (run_flags_mount_repeated);
  RUN (flag_quoting_and_end);
  RUN (volume_forms);
  RUN (user_workdir_stopsignal);
  RUN (arg_forms);
  RUN (arg_errors);
  RUN (onbuild_trigger);
  RUN (onbuild_errors);
  RUN (onbuild_heredoc);
  RUN (healthcheck_none);
  RUN (healthcheck_cmd_shell_with_options);
  RUN (healthcheck_cmd_exec);
  RUN (healthcheck_errors);
  RUN (shell_json_required);
  RUN (unknown_instruction);
  RUN (no_from);
  RUN (directive_syntax);
  RUN (directive_escape_backtick);
  RUN (directive_case_and_whitespace);
  RUN (directive_invalid_escape);
  RUN (directive_duplicate);
  RUN (directive_only_at_top);
  RUN (comments);
  RUN (continuation_with_comments_and_empty_lines);
  RUN (continuation_trailing_whitespace);
  RUN (escaped_escape_at_end_of_line);
  RUN (escape_at_eof);
  RUN (crlf_line_endings);
  RUN (utf8_bom_skipped);
  RUN (original_and_lines);
  RUN (heredoc_run);
  RUN (heredoc_chomp);
  RUN (heredoc_quoted_no_expand);
  RUN (heredoc_several_on_one_line);
  RUN (heredoc_with_command);
  RUN (heredoc_copy);
  RUN (heredoc_only_where_allowed);
  RUN (heredoc_after_continuation_and_empty_body);
  RUN (heredoc_unterminated);
  RUN (heredoc_word_api);
  RUN (word_quotes);
  RUN (word_unquoted_escape);
  RUN (word_simple_vars);
  RUN (word_dollar_literal);
  RUN (word_default_operators);
  RUN (word_alternate_operators);
  RUN (word_error_operators);
  RUN (word_nested);
  RUN (word_nesting_limit);
  RUN (word_size_limit);
  RUN (word_pattern_operators);
  RUN (word_syntax_errors);
  RUN (word_backtick_escape);
  RUN (words_split);
  RUN (words_split_expansions);
  RUN (words_backtick);
  RUN (parse_instr_single);
  RUN (kind_names_and_expansion);
  RUN (hostile_inputs_do_not_crash);
  RUN (invalid_utf8);
  RUN (multi_stage_file);
  TAP_DONE ();
}
