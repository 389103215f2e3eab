/* obuild build: fill ob_build_opts from the command line, run, print. */
#include "config.h"
#include "cli.h"
#include "progress.h"
#include <obuild/build.h>
#include <obuild/image.h>
#include <obuild/registry.h>
#include <obuild/store.h>
#include <obuild/userns.h>
#include <obuild/util.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum
{
  OPT_BUILD_ARG = 256,
  OPT_LABEL,
  OPT_IIDFILE,
  OPT_TARGET,
  OPT_USERNS,
  OPT_EPOCH,
  OPT_COMPRESSION,
  OPT_LEVEL,
  OPT_NETWORK,
  OPT_SNAPSHOTTER,
  OPT_PULL,
  OPT_PLATFORM,
  OPT_TLS_VERIFY,
  OPT_CERT_DIR,
  OPT_AUTHFILE,
  OPT_NO_CACHE,
  OPT_JOBS,
  OPT_NO_CACHE_FILTER,
  OPT_CACHE_TTL,
  OPT_CACHE_FROM,
  OPT_CACHE_TO,
  OPT_BUILD_ARG_FILE,
  OPT_ANNOTATION,
  OPT_ENV,
  OPT_SQUASH,
  OPT_SECRET,
  OPT_SSH,
  OPT_PUSH,
  OPT_ISOLATION,
  OPT_PROGRESS,
  OPT_HELP,
};

static const struct option long_opts[] = {
  { "tag", required_argument, NULL, 't' },
  { "file", required_argument, NULL, 'f' },
  { "output", required_argument, NULL, 'o' },
  { "quiet", no_argument, NULL, 'q' },
  { "build-arg", required_argument, NULL, OPT_BUILD_ARG },
  { "label", required_argument, NULL, OPT_LABEL },
  { "iidfile", required_argument, NULL, OPT_IIDFILE },
  { "target", required_argument, NULL, OPT_TARGET },
  { "userns", required_argument, NULL, OPT_USERNS },
  { "source-date-epoch", required_argument, NULL, OPT_EPOCH },
  { "timestamp", required_argument, NULL, OPT_EPOCH },
  { "compression", required_argument, NULL, OPT_COMPRESSION },
  { "compression-level", required_argument, NULL, OPT_LEVEL },
  { "network", required_argument, NULL, OPT_NETWORK },
  { "snapshotter", required_argument, NULL, OPT_SNAPSHOTTER },
  { "pull", optional_argument, NULL, OPT_PULL },
  { "platform", required_argument, NULL, OPT_PLATFORM },
  { "tls-verify", required_argument, NULL, OPT_TLS_VERIFY },
  { "cert-dir", required_argument, NULL, OPT_CERT_DIR },
  { "authfile", required_argument, NULL, OPT_AUTHFILE },
  { "no-cache", no_argument, NULL, OPT_NO_CACHE },
  { "jobs", required_argument, NULL, OPT_JOBS },
  { "no-cache-filter", required_argument, NULL, OPT_NO_CACHE_FILTER },
  { "cache-ttl", required_argument, NULL, OPT_CACHE_TTL },
  { "cache-from", required_argument, NULL, OPT_CACHE_FROM },
  { "cache-to", required_argument, NULL, OPT_CACHE_TO },
  { "build-arg-file", required_argument, NULL, OPT_BUILD_ARG_FILE },
  { "annotation", required_argument, NULL, OPT_ANNOTATION },
  { "env", required_argument, NULL, OPT_ENV },
  { "squash", no_argument, NULL, OPT_SQUASH },
  { "secret", required_argument, NULL, OPT_SECRET },
  { "ssh", required_argument, NULL, OPT_SSH },
  { "push", no_argument, NULL, OPT_PUSH },
  { "isolation", required_argument, NULL, OPT_ISOLATION },
  { "progress", required_argument, NULL, OPT_PROGRESS },
  { "help", no_argument, NULL, OPT_HELP },
  { NULL, 0, NULL, 0 },
};

/* --secret: checked here (a readable file), read by the build when a RUN
 * step mounts it.  Never echoes a value. */
static int
check_secret (const char *spec, ob_error_t *err)
{
  struct ob_secret_spec sp;
  int r = ob_build_secret_parse (spec, &sp, err);
  if (r == 0 && sp.file && access (sp.file, R_OK) != 0)
    r = ob_error_make (err, OB_ERR_USAGE, errno, "--secret id=%s: cannot read `%s`", sp.id, sp.file);
  free (sp.buf);
  return r;
}

/* --isolation=container: only as root, only in a container; everything
 * the build reads or writes outside the image is kept out of the root
 * file system's replacement. */
static int
container_setup (struct cli_global *g, struct ob_build_opts *o, char **secrets, char ***keep, ob_error_t *err)
{
  const char *why = NULL;
  const char *home = getenv ("HOME");
  const char *docker_config = getenv ("DOCKER_CONFIG");
  const char *auth = getenv ("REGISTRY_AUTH_FILE");
  const char *xdg = getenv ("XDG_RUNTIME_DIR");
  const char *extra = getenv ("OBUILD_KEEP");
  cleanup_free char *root = g->root ? ob_xstrdup (g->root) : ob_store_default_root ();

  if (geteuid () != 0)
    return ob_error_make (err, OB_ERR_USERNS, 0,
                          "--isolation=container needs root in the container (it replaces the container's root file system)");
  if (!ob_userns_in_container (&why))
    return ob_error_make (err, OB_ERR_USERNS, 0,
                          "refusing: `--isolation=container` would replace this machine's root filesystem "
                          "(no sign of a container: /.dockerenv, /run/.containerenv, /proc/1/cgroup)");
  if (o->dockerfile && strcmp (o->dockerfile, "-") == 0)
    return ob_error_make (err, OB_ERR_USAGE, 0, "--isolation=container: give the Dockerfile as a file (-f FILE), not on standard input");
  if (root[0] != '/')
    {
      cleanup_free char *cwd = getcwd (NULL, 0);
      char *abs = ob_xasprintf ("%s/%s", cwd ? cwd : ".", root);
      free (root);
      root = abs;
    }
  ob_strv_add (keep, root);
  ob_strv_add (keep, o->context_dir);
  if (o->dockerfile && strcmp (o->dockerfile, "-") != 0)
    ob_strv_add (keep, o->dockerfile);
  if (o->output_dir)
    ob_strv_add (keep, o->output_dir);
  if (o->source.registry.auth_file)
    ob_strv_add (keep, o->source.registry.auth_file);
  if (o->source.registry.cert_dir)
    ob_strv_add (keep, o->source.registry.cert_dir);
  if (o->ssh_sock)
    ob_strv_add (keep, o->ssh_sock);
  for (size_t i = 0; secrets && secrets[i]; i++)
    {
      const char *src = strstr (secrets[i], "src=");
      if (src == NULL)
        src = strstr (secrets[i], "source=");
      if (src)
        {
          cleanup_free char *v = ob_xstrdup (strchr (src, '=') + 1);
          v[strcspn (v, ",")] = '\0';
          ob_strv_add (keep, v);
        }
    }
  if (home && *home)
    ob_strv_take (keep, ob_xasprintf ("%s/.docker", home));
  if (docker_config && *docker_config)
    ob_strv_add (keep, docker_config);
  if (auth && *auth)
    ob_strv_add (keep, auth);
  if (xdg && *xdg)
    ob_strv_take (keep, ob_xasprintf ("%s/containers", xdg));
  if (extra && *extra)
    {
      /* OBUILD_KEEP: more paths that must survive (a cache volume, tools) */
      cleanup_free char *copy = ob_xstrdup (extra);
      char *sv = NULL;
      for (char *p = strtok_r (copy, ":", &sv); p; p = strtok_r (NULL, ":", &sv))
        if (*p)
          ob_strv_add (keep, p);
    }
  for (size_t i = 0; *keep && (*keep)[i]; i++)
    {
      cleanup_free char *r = realpath ((*keep)[i], NULL);
      if ((r && strcmp (r, "/") == 0) || strcmp ((*keep)[i], "/") == 0)
        return ob_error_make (err, OB_ERR_USAGE, 0, "--isolation=container: `%s` is the root file system, which the build replaces",
                              (*keep)[i]);
    }
  (void) why;
  return cli_relocate (root, keep, err);
}

static void
build_usage (FILE *f)
{
  fprintf (f, "Usage: obuild build [OPTIONS] CONTEXT\n\n"
              "  -t, --tag NAME[:TAG]       tag the image in the store (repeatable)\n"
              "  -f, --file FILE            Dockerfile to use (`-` for standard input)\n"
              "      --build-arg K[=V]      set a build argument (repeatable)\n"
              "      --label K=V            add a label to the image (repeatable)\n"
              "  -o, --output DIR           also write the image into the OCI layout DIR\n"
              "      --push                 push every -t to its registry after the build\n"
              "  -q, --quiet                print only the image digest (and --progress=quiet)\n"
              "      --progress MODE        auto (default), plain, tty, quiet or json\n"
              "      --jobs N               build up to N independent stages at once (default: CPUs)\n"
              "      --iidfile FILE         write the image digest to FILE\n"
              "      --target STAGE         build up to this stage\n"
              "      --userns MODE          auto, subuid, single or none\n"
              "      --isolation MODE       auto (namespaces) or container (root in a container\n"
              "                             without namespaces: RUN in the container's own root)\n"
              "      --source-date-epoch N  fix timestamps (also SOURCE_DATE_EPOCH)\n"
              "      --compression ALGO     gzip (default), zstd or none\n"
              "      --compression-level N  compressor level\n"
              "      --network MODE         RUN network: host (default) or none\n"
              "      --snapshotter NAME     auto (default), overlay or copy\n"
              "      --pull[=POLICY]        missing (default), always or never\n"
              "      --platform OS/ARCH[,...]  the image's platform (several: an image index)\n"
              "      --tls-verify BOOL      verify registries' TLS certificates (default true)\n"
              "      --cert-dir DIR         CA and client certificates for registries\n"
              "      --authfile FILE        registry credentials (auth.json)\n"
              "      --no-cache             run every step (results are still cached)\n"
              "      --no-cache-filter STAGE  no cache for that stage (repeatable)\n"
              "      --cache-ttl DURATION   ignore cache entries older than this (e.g. 24h)\n"
              "      --cache-from REF       import cache entries (OCI layout dir or registry)\n"
              "      --cache-to REF         export this build's cache entries there\n"
              "      --build-arg-file FILE  build arguments, one K=V a line\n"
              "      --annotation K=V       add an annotation to the manifest (repeatable)\n"
              "      --env K=V              set an environment variable in the image (repeatable)\n"
              "      --squash               the final stage's new layers as one layer\n"
              "      --secret id=ID[,src=FILE|,env=VAR][,type=file|env]\n"
              "                             a secret for RUN --mount=type=secret (repeatable)\n"
              "      --ssh default[=SOCKET] the SSH agent for RUN --mount=type=ssh\n"
              "                             (default socket: $SSH_AUTH_SOCK)\n");
}

int
cmd_build (struct cli_global *g, int argc, char **argv, ob_error_t *err)
{
  struct ob_build_opts o = { 0 };
  long ncpu = sysconf (_SC_NPROCESSORS_ONLN);
  struct ob_build_result res;
  struct ob_store *store = NULL;
  bool quiet = false;
  const char *progress_opt = NULL;
  struct cli_progress *pr = NULL;
  int mode;
  cleanup_strv char **tags = NULL;
  cleanup_strv char **args = NULL;
  cleanup_strv char **labels = NULL;
  cleanup_strv char **secrets = NULL;
  cleanup_free char *ssh_sock = NULL;
  cleanup_strv char **no_cache_filter = NULL;
  cleanup_strv char **annotations = NULL;
  cleanup_strv char **envs = NULL;
  cleanup_strv char **platforms = NULL; /* --platform: one, or several (an index) */
  cleanup_free char *stdin_text = NULL;
  const char *iidfile = NULL, *userns = NULL;
  bool push = false;
  const char *isolation = getenv ("OBUILD_ISOLATION");
  cleanup_strv char **keep = NULL;
  const char *env_epoch = getenv ("SOURCE_DATE_EPOCH");
  int c, r;

  optind = 1;
  opterr = 0;
  o.compression = OB_COMPRESS_GZIP;
  ob_registry_opts_init (&o.source.registry);
  while ((c = getopt_long (argc, argv, ":t:f:o:q", long_opts, NULL)) != -1)
    {
      switch (c)
        {
        case 't':
          {
            char *norm;
            if (ob_image_ref_normalize (optarg, &norm, err) < 0)
              return -1;
            ob_strv_take (&tags, norm);
            break;
          }
        case 'f':
          o.dockerfile = optarg;
          break;
        case 'o':
          o.output_dir = optarg;
          break;
        case 'q':
          quiet = true;
          break;
        case OPT_BUILD_ARG:
          ob_strv_add (&args, optarg);
          break;
        case OPT_LABEL:
          if (strchr (optarg, '=') == NULL || optarg[0] == '=')
            return ob_error_make (err, OB_ERR_USAGE, 0, "--label `%s`: expected KEY=VALUE", optarg);
          ob_strv_add (&labels, optarg);
          break;
        case OPT_IIDFILE:
          iidfile = optarg;
          break;
        case OPT_TARGET:
          o.target = optarg;
          break;
        case OPT_USERNS:
          userns = optarg;
          break;
        case OPT_EPOCH:
          if (cli_parse_epoch (optarg, &o.epoch, err) < 0)
            return -1;
          o.have_epoch = true;
          break;
        case OPT_COMPRESSION:
          if (strcmp (optarg, "gzip") == 0)
            o.compression = OB_COMPRESS_GZIP;
          else if (strcmp (optarg, "zstd") == 0)
            o.compression = OB_COMPRESS_ZSTD;
          else if (strcmp (optarg, "none") == 0)
            o.compression = OB_COMPRESS_NONE;
          else
            return ob_error_make (err, OB_ERR_USAGE, 0, "--compression `%s`: expected gzip, zstd or none", optarg);
          break;
        case OPT_LEVEL:
          {
            char *end;
            long v = strtol (optarg, &end, 10);
            if (*optarg == '\0' || *end || v < 0 || v > 22)
              return ob_error_make (err, OB_ERR_USAGE, 0, "--compression-level `%s`: expected 0-22", optarg);
            o.compression_level = (int) v;
            break;
          }
        case OPT_NETWORK:
          if (strcmp (optarg, "none") == 0)
            o.network_none = true;
          else if (strcmp (optarg, "host") == 0 || strcmp (optarg, "default") == 0)
            o.network_none = false;
          else
            return ob_error_make (err, OB_ERR_USAGE, 0, "--network `%s`: expected host or none", optarg);
          break;
        case OPT_SNAPSHOTTER:
          if (strcmp (optarg, "auto") == 0)
            o.snapshotter = OB_SNAPSHOTTER_AUTO;
          else if (strcmp (optarg, "overlay") == 0)
            o.snapshotter = OB_SNAPSHOTTER_OVERLAY;
          else if (strcmp (optarg, "copy") == 0)
            o.snapshotter = OB_SNAPSHOTTER_COPY;
          else
            return ob_error_make (err, OB_ERR_USAGE, 0, "--snapshotter `%s`: expected auto, overlay or copy", optarg);
          break;
        case OPT_PULL:
          if (ob_pull_policy_parse (optarg ? optarg : "always", &o.source.pull, err) < 0)
            return -1;
          break;
        case OPT_PLATFORM:
          ob_strv_free (platforms);
          if (ob_build_platforms_parse (optarg, &platforms, err) < 0)
            return -1;
          o.source.registry.platform = platforms[0];
          break;
        case OPT_TLS_VERIFY:
          if (cli_parse_bool (optarg, &o.source.registry.tls_verify, err) < 0)
            return ob_error_wrap (err, "--tls-verify");
          break;
        case OPT_CERT_DIR:
          o.source.registry.cert_dir = optarg;
          break;
        case OPT_AUTHFILE:
          o.source.registry.auth_file = optarg;
          break;
        case OPT_NO_CACHE:
          o.no_cache = true;
          break;
        case OPT_JOBS:
          {
            char *end;
            unsigned long v;
            errno = 0;
            v = strtoul (optarg, &end, 10);
            if (*optarg == '\0' || *optarg == '-' || *end || errno || v < 1 || v > 64)
              return ob_error_make (err, OB_ERR_USAGE, 0, "--jobs `%s`: expected a number from 1 to 64", optarg);
            o.jobs = v;
            break;
          }
        case OPT_NO_CACHE_FILTER:
          ob_strv_add (&no_cache_filter, optarg);
          break;
        case OPT_CACHE_TTL:
          {
            int64_t ns;
            if (ob_build_parse_duration (optarg, &ns, err) < 0)
              {
                ob_error_set_kind (err, OB_ERR_USAGE);
                return ob_error_wrap (err, "--cache-ttl");
              }
            o.cache_ttl = ns / 1000000000;
            break;
          }
        case OPT_CACHE_FROM:
          o.cache_from = optarg;
          break;
        case OPT_BUILD_ARG_FILE:
          {
            cleanup_free char *text = NULL;
            size_t len;
            char *save = NULL;
            if (ob_read_file_at (AT_FDCWD, optarg, &text, &len, err) < 0)
              {
                ob_error_set_kind (err, OB_ERR_USAGE);
                return ob_error_wrap (err, "--build-arg-file");
              }
            for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
              {
                while (*line == ' ' || *line == '\t')
                  line++;
                if (*line == '\0' || *line == '#')
                  continue;
                ob_strv_add (&args, line);
              }
            break;
          }
        case OPT_ANNOTATION:
        case OPT_ENV:
          if (strchr (optarg, '=') == NULL || optarg[0] == '=')
            return ob_error_make (err, OB_ERR_USAGE, 0, "--%s `%s`: expected KEY=VALUE",
                                  c == OPT_ENV ? "env" : "annotation", optarg);
          ob_strv_add (c == OPT_ENV ? &envs : &annotations, optarg);
          break;
        case OPT_SQUASH:
          o.squash = true;
          break;
        case OPT_CACHE_TO:
          o.cache_to = optarg;
          break;
        case OPT_SECRET:
          if (check_secret (optarg, err) < 0)
            return -1;
          ob_strv_add (&secrets, optarg);
          break;
        case OPT_SSH:
          {
            /* only the default agent: --ssh default[=SOCKET] */
            const char *sock = ob_str_has_prefix (optarg, "default=") ? optarg + 8 : NULL;
            if (strcmp (optarg, "default") != 0 && sock == NULL)
              return ob_error_make (err, OB_ERR_USAGE, 0, "--ssh `%s`: expected default[=SOCKET]", optarg);
            if (sock == NULL)
              sock = getenv ("SSH_AUTH_SOCK");
            if (sock == NULL || *sock == '\0')
              return ob_error_make (err, OB_ERR_USAGE, 0, "--ssh default: SSH_AUTH_SOCK is not set; give default=SOCKET");
            free (ssh_sock);
            ssh_sock = realpath (sock, NULL);
            if (ssh_sock == NULL)
              return ob_error_make (err, OB_ERR_USAGE, errno, "--ssh default: agent socket `%s`", sock);
            break;
          }
        case OPT_PUSH:
          push = true;
          break;
        case OPT_ISOLATION:
          isolation = optarg;
          break;
        case OPT_PROGRESS:
          progress_opt = optarg;
          break;
        case OPT_HELP:
          build_usage (stdout);
          return 0;
        case ':':
          return ob_error_make (err, OB_ERR_USAGE, 0, "option `%s` needs a value", argv[optind - 1]);
        default:
          return ob_error_make (err, OB_ERR_USAGE, 0, "unknown option `%s` (see `obuild build --help`)",
                                argv[optind - 1]);
        }
    }
  if (cli_progress_mode (progress_opt, quiet, &mode, err) < 0)
    return -1;
  if (mode == CLI_PROGRESS_QUIET)
    quiet = true; /* an alias of -q: only the digest on standard output */
  if (optind != argc - 1)
    return ob_error_make (err, OB_ERR_USAGE, 0, optind >= argc ? "missing CONTEXT directory (see `obuild build --help`)"
                                                               : "too many arguments: expected one CONTEXT directory");
  if (!o.have_epoch && env_epoch && *env_epoch)
    {
      if (cli_parse_epoch (env_epoch, &o.epoch, err) < 0)
        return ob_error_wrap (err, "SOURCE_DATE_EPOCH");
      o.have_epoch = true;
    }
  o.context_dir = argv[optind];
  if (access (o.context_dir, F_OK) != 0)
    return ob_error_make (err, OB_ERR_CONTEXT, errno, "build context `%s`", o.context_dir);
  if (o.dockerfile && strcmp (o.dockerfile, "-") == 0)
    {
      if (ob_read_fd (0, &stdin_text, &o.dockerfile_len, err) < 0)
        return ob_error_wrap (err, "Dockerfile from standard input");
      o.dockerfile_text = stdin_text;
    }
  o.tags = tags;
  o.build_args = args;
  o.labels = labels;
  o.secrets = secrets;
  o.ssh_sock = ssh_sock;
  o.no_cache_filter = no_cache_filter;
  /* --jobs defaults to the CPUs (at most 64) */
  if (o.jobs == 0)
    o.jobs = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (size_t) ncpu;
  o.annotations = annotations;
  o.envs = envs;

  if (push && tags == NULL)
    return ob_error_make (err, OB_ERR_USAGE, 0, "--push needs at least one -t NAME[:TAG] to push to");
  if (isolation && *isolation && strcmp (isolation, "auto") != 0)
    {
      if (strcmp (isolation, "container") != 0)
        return ob_error_make (err, OB_ERR_USAGE, 0, "invalid --isolation `%s`: expected auto or container", isolation);
      if (container_setup (g, &o, secrets, &keep, err) < 0)
        return -1;
      o.container = true;
      o.container_keep = keep;
    }
  cli_install_signals ();
  if (cli_open_store (g, userns, true, &store, err) < 0)
    return -1;
  o.store = store;
  o.userns_single = cli_userns_is ("single");
  o.userns_root = cli_userns_is ("root");
  o.no_isolation = ob_userns_no_isolation ();
  o.interrupted = &cli_interrupted;
  /* the library reports events; the renderer of --progress prints them */
  pr = cli_progress_new (mode);
  o.event = o.source.registry.event = cli_progress_event;
  o.event_data = o.source.registry.event_data = pr;
  o.log = cli_progress_line;
  o.log_data = pr;
  o.capture_output = cli_progress_captures (pr);
  if (platforms && platforms[1])
    r = ob_build_run_platforms (&o, platforms, &res, err);
  else
    r = ob_build_run (&o, &res, err);
  if (r < 0)
    {
      cli_progress_finish (pr, NULL);
      ob_store_close (store);
      return -1;
    }
  if (iidfile)
    {
      cleanup_free char *line = ob_xasprintf ("%s", res.manifest_digest);
      if (ob_write_file_atomic_at (AT_FDCWD, iidfile, line, strlen (line), 0644, err) < 0)
        {
          cli_progress_finish (pr, NULL);
          ob_build_result_clear (&res);
          ob_store_close (store);
          return ob_error_wrap (err, "--iidfile");
        }
    }
  cli_progress_pause (pr);
  printf ("%s\n", res.manifest_digest);
  if (!quiet)
    for (size_t i = 0; tags && tags[i]; i++)
      printf ("oci:%s:%s\n", ob_layout_path (store->oci), tags[i]);
  cli_progress_resume (pr);
  /* --push: each tag to the registry it names; the image stays in the
   * store whatever happens here */
  for (size_t i = 0; push && tags && tags[i]; i++)
    {
      struct ob_registry_opts ro = o.source.registry;
      char pushed[72];
      if (cli_push_image (store, tags[i], tags[i], &ro, pushed, err) < 0)
        {
          cli_progress_finish (pr, NULL);
          ob_build_result_clear (&res);
          ob_store_close (store);
          return ob_error_wrap (err, "--push %s", tags[i]);
        }
    }
  cli_progress_finish (pr, res.manifest_digest);
  ob_build_result_clear (&res);
  ob_store_close (store);
  return 0;
}
