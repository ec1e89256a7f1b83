/* Shared helpers for the C tests of libmailslot. Each test is one program: exit 0 = pass. */
#ifndef MAILSLOT_TEST_COMMON_H
#define MAILSLOT_TEST_COMMON_H

#define _GNU_SOURCE 1
#include <mailslot.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int t_failures = 0;
static int t_checks = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        t_checks++;                                                                    \
        if (!(cond)) {                                                                 \
            t_failures++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

/* Checks that a LAN Manager call returned `want`. */
#define CHECK_RC(call, want)                                                           \
    do {                                                                               \
        unsigned rc_ = (call);                                                         \
        t_checks++;                                                                    \
        if (rc_ != (unsigned)(want)) {                                                 \
            t_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s returned %u, expected %u\n", __FILE__, __LINE__, \
                    #call, rc_, (unsigned)(want));                                     \
        }                                                                              \
    } while (0)

/* Checks that a Win32 call failed (returned FALSE) with GetLastError() == `want`. */
#define CHECK_FAIL(call, want)                                                         \
    do {                                                                               \
        BOOL ok_;                                                                      \
        DWORD err_;                                                                    \
        SetLastError(0xdeadu);                                                         \
        ok_ = (call);                                                                  \
        err_ = GetLastError();                                                         \
        t_checks++;                                                                    \
        if (ok_ || err_ != (DWORD)(want)) {                                            \
            t_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s gave %d / error %u, expected FALSE / %u\n",     \
                    __FILE__, __LINE__, #call, ok_, err_, (unsigned)(want));           \
        }                                                                              \
    } while (0)

/* Checks that a Win32 call succeeded. */
#define CHECK_OK(call)                                                                 \
    do {                                                                               \
        t_checks++;                                                                    \
        if (!(call)) {                                                                 \
            t_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s failed, error %u\n", __FILE__, __LINE__, #call, \
                    GetLastError());                                                   \
        }                                                                              \
    } while (0)

/* Checks that a handle-returning call failed with `want`. */
#define CHECK_BAD_HANDLE(call, want)                                                   \
    do {                                                                               \
        HANDLE h_;                                                                     \
        DWORD err_;                                                                    \
        SetLastError(0xdeadu);                                                         \
        h_ = (call);                                                                   \
        err_ = GetLastError();                                                         \
        t_checks++;                                                                    \
        if (h_ != INVALID_HANDLE_VALUE || err_ != (DWORD)(want)) {                     \
            t_failures++;                                                              \
            fprintf(stderr, "%s:%d: %s gave %p / error %u, expected INVALID / %u\n",   \
                    __FILE__, __LINE__, #call, h_, err_, (unsigned)(want));            \
            if (h_ != INVALID_HANDLE_VALUE)                                            \
                MailslotClose(h_);                                                     \
        }                                                                              \
    } while (0)

/* A name unique to this process: Win32 form "\\.\mailslot\ctest\<tag>\<pid>\<n>". */
static inline char *slot_name(char *buf, size_t len, const char *tag)
{
    static int n = 0;
    snprintf(buf, len, "\\\\.\\mailslot\\ctest\\%s\\%ld\\%d", tag, (long)getpid(), n++);
    return buf;
}

/* The same in LAN Manager form "\mailslot\ctest\<tag>\<pid>\<n>". */
static inline char *lm_slot_name(char *buf, size_t len, const char *tag)
{
    static int n = 0;
    snprintf(buf, len, "\\mailslot\\ctest\\%s\\%ld\\lm%d", tag, (long)getpid(), n++);
    return buf;
}

/* Milliseconds on the monotonic clock. */
static inline long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Checks that the owner handle `h` holds exactly `count` messages, then reads them: "<prefix>0",
 * "<prefix>1", … in that order. */
static inline void check_in_order(HANDLE h, const char *prefix, int count)
{
    DWORD queued, n;
    char buf[256];
    int i;
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, &queued, NULL));
    CHECK(queued == (DWORD)count);
    for (i = 0; i < count; i++) {
        char m[16];
        int len = snprintf(m, sizeof m, "%s%d", prefix, i);
        CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
        CHECK(n == (DWORD)len && memcmp(buf, m, (size_t)len) == 0);
    }
}

/* Starts $MAILSLOT_TEST_BIN/<prog> with `argv` (fork + exec; argv[0] is the program's name) and
 * its stdout on a pipe, opened for reading as *out. Returns the child's pid, or -1. Descriptors
 * without close-on-exec (inheritable handles, sockets) are passed on. */
static inline pid_t spawn_helper(char *const argv[], FILE **out)
{
    char path[512];
    const char *dir = getenv("MAILSLOT_TEST_BIN");
    int p[2];
    pid_t pid;
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", argv[0]);
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (p[1] != 1) {
            dup2(p[1], 1);
            close(p[1]);
        }
        execv(path, argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *out = fdopen(p[0], "r");
    return pid;
}

/* Reads one line of a helper's report (without the newline) into buf; "" at end of file. */
static inline const char *report_line(FILE *f, char *buf, size_t len)
{
    size_t n;
    if (!fgets(buf, (int)len, f)) {
        buf[0] = 0;
        return buf;
    }
    n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = 0;
    return buf;
}

/* Waits for child `pid`; its exit status, or -1 when it did not exit normally. */
static inline int wait_exit(pid_t pid)
{
    int status;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Prints the verdict and returns the exit status. */
static inline int finish(const char *test)
{
    if (t_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", test, t_failures, t_checks);
        return 1;
    }
    printf("%s: %d checks ok\n", test, t_checks);
    return 0;
}

#endif
