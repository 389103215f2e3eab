/* curl_lazy: libcurl, loaded the first time a registry or an ADD <url>
 * needs it.
 *
 * Linked the usual way, libcurl and the 26 libraries it brings
 * (GnuTLS, Kerberos, LDAP, SSH, RTMP, ...) were loaded and relocated by
 * every obuild process before main: 4 ms of each run, a fifth of a fully
 * cached build, for a library most builds (FROM the store, an OCI layout or
 * an archive) never call.  Here the calls the library makes are defined
 * once, as forwarders to libcurl.so.4 opened with dlopen on first use.
 * The rest of the library includes <curl/curl.h> as usual (with its type
 * checks) and calls these. */
#include "config.h"

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "curl_lazy.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static struct
{
  void *h;
  CURLcode (*global_init) (long);
  CURL *(*easy_init) (void);
  CURLcode (*easy_setopt) (CURL *, CURLoption, ...);
  CURLcode (*easy_perform) (CURL *);
  void (*easy_cleanup) (CURL *);
  void (*easy_reset) (CURL *);
  CURLcode (*easy_getinfo) (CURL *, CURLINFO, ...);
  const char *(*easy_strerror) (CURLcode);
  char *(*easy_escape) (CURL *, const char *, int);
  void (*free) (void *);
  struct curl_slist *(*slist_append) (struct curl_slist *, const char *);
  void (*slist_free_all) (struct curl_slist *);
  CURLSH *(*share_init) (void);
  CURLSHcode (*share_setopt) (CURLSH *, CURLSHoption, ...);
  CURLSHcode (*share_cleanup) (CURLSH *);
} fn;

static char load_error[512];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void
load (void)
{
  /* the two builds Debian ships have one ABI and one soname each */
  const char *names[] = { "libcurl.so.4", "libcurl-gnutls.so.4" };
  const char *test = getenv ("OBUILD_TEST_LIBCURL"); /* tests: a missing library */
  void *h = NULL;
  size_t n = test && *test ? 1 : 2;
  if (test && *test)
    names[0] = test;
  for (size_t i = 0; i < n && h == NULL; i++)
    {
      h = dlopen (names[i], RTLD_NOW | RTLD_LOCAL);
      if (h == NULL && i == 0)
        {
          /* the first name's reason is the one to give */
          const char *e = dlerror ();
          snprintf (load_error, sizeof load_error, "%s", e ? e : names[0]);
        }
    }
  if (h == NULL)
    return;
#define SYM(field, name)                                                                                               \
  if ((*(void **) &fn.field = dlsym (h, name)) == NULL)                                                               \
    {                                                                                                                  \
      snprintf (load_error, sizeof load_error, "%s has no %s", names[0], name);                                        \
      dlclose (h);                                                                                                     \
      return;                                                                                                          \
    }
  SYM (global_init, "curl_global_init");
  SYM (easy_init, "curl_easy_init");
  SYM (easy_setopt, "curl_easy_setopt");
  SYM (easy_perform, "curl_easy_perform");
  SYM (easy_cleanup, "curl_easy_cleanup");
  SYM (easy_reset, "curl_easy_reset");
  SYM (easy_getinfo, "curl_easy_getinfo");
  SYM (easy_strerror, "curl_easy_strerror");
  SYM (easy_escape, "curl_easy_escape");
  SYM (free, "curl_free");
  SYM (slist_append, "curl_slist_append");
  SYM (slist_free_all, "curl_slist_free_all");
  SYM (share_init, "curl_share_init");
  SYM (share_setopt, "curl_share_setopt");
  SYM (share_cleanup, "curl_share_cleanup");
#undef SYM
  /* here, once: curl_global_init is not thread-safe in every version */
  if (fn.global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    {
      snprintf (load_error, sizeof load_error, "curl_global_init failed");
      dlclose (h);
      return;
    }
  fn.h = h;
}

int
ob_curl_load (ob_error_t *err)
{
  pthread_once (&load_once, load);
  if (fn.h)
    return 0;
  return ob_error_make (err, OB_ERR_GENERIC, 0,
                        "cannot load libcurl, which registries and ADD <url> need (Debian package libcurl4): %s",
                        load_error);
}

/* Every caller went through ob_curl_load first (ob_registry_new, ADD's
 * download); this is the guard for one that did not. */
static void
need (void)
{
  pthread_once (&load_once, load);
  if (fn.h == NULL)
    {
      fprintf (stderr, "obuild: libcurl used before ob_curl_load: %s\n", load_error);
      abort ();
    }
}

CURLcode
curl_global_init (long flags)
{
  (void) flags;
  need (); /* load() made the one call */
  return CURLE_OK;
}

CURL *
curl_easy_init (void)
{
  need ();
  return fn.easy_init ();
}

/* The argument's type is the option's: CURLOPTTYPE_LONG, OBJECTPOINT,
 * FUNCTIONPOINT, OFF_T and BLOB are ranges of 10,000 (curl.h). */
CURLcode
curl_easy_setopt (CURL *h, CURLoption opt, ...)
{
  va_list ap;
  CURLcode r;
  need ();
  va_start (ap, opt);
  if (opt < CURLOPTTYPE_OBJECTPOINT)
    r = fn.easy_setopt (h, opt, va_arg (ap, long));
  else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
    r = fn.easy_setopt (h, opt, va_arg (ap, curl_off_t));
  else
    r = fn.easy_setopt (h, opt, va_arg (ap, void *));
  va_end (ap);
  return r;
}

CURLcode
curl_easy_perform (CURL *h)
{
  need ();
  return fn.easy_perform (h);
}

void
curl_easy_cleanup (CURL *h)
{
  need ();
  fn.easy_cleanup (h);
}

void
curl_easy_reset (CURL *h)
{
  need ();
  fn.easy_reset (h);
}

/* Every CURLINFO takes a pointer. */
CURLcode
curl_easy_getinfo (CURL *h, CURLINFO info, ...)
{
  va_list ap;
  CURLcode r;
  need ();
  va_start (ap, info);
  r = fn.easy_getinfo (h, info, va_arg (ap, void *));
  va_end (ap);
  return r;
}

const char *
curl_easy_strerror (CURLcode c)
{
  need ();
  return fn.easy_strerror (c);
}

char *
curl_easy_escape (CURL *h, const char *s, int len)
{
  need ();
  return fn.easy_escape (h, s, len);
}

void
curl_free (void *p)
{
  need ();
  fn.free (p);
}

struct curl_slist *
curl_slist_append (struct curl_slist *l, const char *s)
{
  need ();
  return fn.slist_append (l, s);
}

void
curl_slist_free_all (struct curl_slist *l)
{
  need ();
  fn.slist_free_all (l);
}

CURLSH *
curl_share_init (void)
{
  need ();
  return fn.share_init ();
}

/* CURLSHOPT_SHARE and UNSHARE take an int (a curl_lock_data), the others a
 * pointer (lock functions, user data). */
CURLSHcode
curl_share_setopt (CURLSH *sh, CURLSHoption opt, ...)
{
  va_list ap;
  CURLSHcode r;
  need ();
  va_start (ap, opt);
  if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE)
    r = fn.share_setopt (sh, opt, va_arg (ap, int));
  else
    r = fn.share_setopt (sh, opt, va_arg (ap, void *));
  va_end (ap);
  return r;
}

CURLSHcode
curl_share_cleanup (CURLSH *sh)
{
  need ();
  return fn.share_cleanup (sh);
}
