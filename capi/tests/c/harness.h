/* A minimal test harness: named tests, a failed CHECK fails its test (and is
 * printed), the summary line has cargo's format so scripts/test.sh counts it. */
#ifndef PS_TEST_HARNESS_H
#define PS_TEST_HARNESS_H
#include <stdio.h>
#include <string.h>

static int ps_failed_checks;

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "  %s:%d: CHECK failed: %s (last error: %s)\n", __FILE__, \
              __LINE__, #cond, ps_last_error());                                 \
      ps_failed_checks++;                                                        \
    }                                                                            \
  } while (0)

#define CHECK_STATUS(call, want)                                                   \
  do {                                                                             \
    ps_status got_ = (call);                                                       \
    if (got_ != (want)) {                                                          \
      fprintf(stderr, "  %s:%d: %s returned %s, expected %s (last error: %s)\n",   \
              __FILE__, __LINE__, #call, ps_status_name(got_), ps_status_name(want), \
              ps_last_error());                                                    \
      ps_failed_checks++;                                                          \
    }                                                                              \
  } while (0)

typedef void (*ps_test_fn)(void);
typedef struct {
  const char *name;
  ps_test_fn fn;
} ps_test;

static int ps_run_tests(const ps_test *tests, size_t n) {
  int passed = 0, failed = 0;
  printf("\nrunning %zu tests\n", n);
  for (size_t i = 0; i < n; i++) {
    ps_failed_checks = 0;
    tests[i].fn();
    printf("test %s ... %s\n", tests[i].name, ps_failed_checks ? "FAILED" : "ok");
    fflush(stdout);
    if (ps_failed_checks) failed++; else passed++;
  }
  printf("\ntest result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out\n\n",
         failed ? "FAILED" : "ok", passed, failed);
  return failed ? 1 : 0;
}
#endif
