/* Minimal TAP harness for unit tests: one binary per module, one TEST() per
 * case.  Prints "ok N - name" / "not ok N - name" and a plan at the end. */
#ifndef OBUILD_TAP_H
#define OBUILD_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed, tap_case_failed;

#define CHECK(cond)                                                                \
  do                                                                               \
    {                                                                              \
      if (!(cond))                                                                 \
        {                                                                          \
          printf ("#   %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
          tap_case_failed = 1;                                                     \
        }                                                                          \
    }                                                                              \
  while (0)

#define CHECK_STR(a, b)                                                            \
  do                                                                               \
    {                                                                              \
      const char *_a = (a), *_b = (b);                                             \
      if (_a == NULL || _b == NULL ? _a != _b : strcmp (_a, _b) != 0)              \
        {                                                                          \
          printf ("#   %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
                  _a ? _a : "(null)", _b ? _b : "(null)");                         \
          tap_case_failed = 1;                                                     \
        }                                                                          \
    }                                                                              \
  while (0)

#define CHECK_INT(a, b)                                                            \
  do                                                                               \
    {                                                                              \
      long long _a = (long long) (a), _b = (long long) (b);                        \
      if (_a != _b)                                                                \
        {                                                                          \
          printf ("#   %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, _a, _b); \
          tap_case_failed = 1;                                                     \
        }                                                                          \
    }                                                                              \
  while (0)

#define TEST(name) static void name (void)
#define RUN(name)                                                                  \
  do                                                                               \
    {                                                                              \
      tap_case_failed = 0;                                                         \
      name ();                                                                     \
      tap_n++;                                                                     \
      if (tap_case_failed)                                                         \
        tap_failed++;                                                              \
      printf ("%sok %d - %s\n", tap_case_failed ? "not " : "", tap_n, #name);      \
      fflush (stdout);                                                             \
    }                                                                              \
  while (0)
#define TAP_DONE()                                                                 \
  do                                                                               \
    {                                                                              \
      printf ("1..%d\n", tap_n);                                                   \
      return tap_failed ? 1 : 0;                                                   \
    }                                                                              \
  while (0)

#endif
