/* Helper for t_inherit and t_pass: reads a mailslot through an owner handle it got from its
 * parent, and reports on stdout, one line each: "ready" once it holds the handle, "got <message>"
 * per message, "err <GetLastError>" when a read fails (then it stops).
 *   helper_reader read HANDLE COUNT  - HANDLE is an inherited handle value (decimal)
 *   helper_reader recv FD COUNT      - MailslotReceiveHandle(FD) first (FD: a Unix socket)
 *   helper_reader bad HANDLE         - HANDLE must be unusable here: every call gives 6
 * COUNT is how many messages to read (-1: until a read fails). Exit status 0 when COUNT messages
 * were read (or, with -1, when a read failed), 1 on another failure, 2 on bad arguments.
 * HELPER_DELAY_MS=n waits n ms before the first call (the parent acts meanwhile). */
#define _GNU_SOURCE 1
#include <mailslot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static HANDLE parse_handle(const char *s)
{
    return (HANDLE)(size_t)strtoul(s, NULL, 10);
}

static int check_bad(HANDLE h)
{
    int bad = 0;
    char buf[16];
    DWORD n;
    unsigned short lh = (unsigned short)(size_t)h, r, ns, np;
    if (MailslotRead(h, buf, sizeof buf, &n) || GetLastError() != ERROR_INVALID_HANDLE)
        bad |= 1;
    if (GetMailslotInfo(h, NULL, NULL, NULL, NULL) || GetLastError() != ERROR_INVALID_HANDLE)
        bad |= 2;
    if (DosReadMailslot(lh, buf, &r, &ns, &np, 0) != ERROR_INVALID_HANDLE)
        bad |= 4;
    if (MailslotClose(h) || GetLastError() != ERROR_INVALID_HANDLE)
        bad |= 8;
    if (bad)
        printf("bad %d\n", bad);
    else
        printf("dead\n");
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    HANDLE h;
    long count, i;
    const char *delay = getenv("HELPER_DELAY_MS");
    if (argc < 3)
        return 2;
    if (delay) {
        long ms = atol(delay);
        struct timespec ts;
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    if (strcmp(argv[1], "bad") == 0)
        return check_bad(parse_handle(argv[2]));
    if (argc != 4)
        return 2;
    count = atol(argv[3]);
    if (strcmp(argv[1], "read") == 0) {
        h = parse_handle(argv[2]);
    } else if (strcmp(argv[1], "recv") == 0) {
        h = MailslotReceiveHandle(atoi(argv[2]));
        if (h == INVALID_HANDLE_VALUE) {
            printf("err %u\n", GetLastError());
            return 1;
        }
    } else {
        return 2;
    }
    /* The first call with an inherited value takes the mailslot up. */
    if (!SetMailslotInfo(h, 10000)) {
        printf("err %u\n", GetLastError());
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (i = 0; count < 0 || i < count; i++) {
        char buf[512];
        DWORD n;
        if (!MailslotRead(h, buf, sizeof buf - 1, &n)) {
            printf("err %u\n", GetLastError());
            return count < 0 ? 0 : 1;
        }
        buf[n] = 0;
        printf("got %s\n", buf);
        fflush(stdout);
    }
    if (!MailslotClose(h))
        return 1;
    return 0;
}
