/* Threads: one writer handle and one owner handle shared by several threads (every message
 * arrives exactly once), GetLastError is per thread, and a close from
 * another thread ends a blocked MailslotRead with 995. */
#include "common.h"
#include <pthread.h>

#define WRITERS 4
#define PER_WRITER 200

static HANDLE g_owner, g_writer;

static void *writer(void *arg)
{
    long id = (long)arg;
    int i;
    for (i = 0; i < PER_WRITER; i++) {
        char m[32];
        DWORD n;
        int len = sprintf(m, "%ld:%d", id, i);
        if (!MailslotWrite(g_writer, m, (DWORD)len, &n) || n != (DWORD)len) {
            fprintf(stderr, "write %ld:%d failed: %u\n", id, i, GetLastError());
            return (void *)1;
        }
    }
    return NULL;
}

static char g_seen[WRITERS][PER_WRITER];
static int g_bad;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

/* Two reader threads share the owner handle; every message must arrive exactly once. */
static void *reader(void *arg)
{
    int *got = arg;
    char buf[64];
    DWORD n;
    for (;;) {
        long id;
        int seq;
        if (!MailslotRead(g_owner, buf, sizeof buf - 1, &n)) {
            if (GetLastError() != ERROR_SEM_TIMEOUT)
                g_bad++;
            break; /* 1 s of silence: done */
        }
        buf[n] = 0;
        pthread_mutex_lock(&g_mu);
        if (sscanf(buf, "%ld:%d", &id, &seq) != 2 || id < 0 || id >= WRITERS || seq < 0 ||
            seq >= PER_WRITER || g_seen[id][seq])
            g_bad++;
        else
            g_seen[id][seq] = 1;
        pthread_mutex_unlock(&g_mu);
        (*got)++;
    }
    return NULL;
}

static void *error_thread(void *arg)
{
    DWORD *out = arg;
    char buf[8];
    DWORD n;
    SetLastError(0);
    MailslotRead(NULL, buf, sizeof buf, &n); /* sets 6 in this thread only */
    *out = GetLastError();
    return NULL;
}

static HANDLE g_block;
static DWORD g_block_err;
static long g_block_ms;

static void *blocked_reader(void *arg)
{
    char buf[8];
    DWORD n;
    long t0 = now_ms();
    (void)arg;
    if (MailslotRead(g_block, buf, sizeof buf, &n))
        g_block_err = 0;
    else
        g_block_err = GetLastError();
    g_block_ms = now_ms() - t0;
    return NULL;
}

int main(void)
{
    char name[128];
    pthread_t w[WRITERS], r[2];
    int got[2] = {0, 0};
    long i;
    DWORD other = 0;
    pthread_t et;

    slot_name(name, sizeof name, "threads");
    g_owner = CreateMailslotA(name, 64, 1000, NULL);
    CHECK(g_owner != INVALID_HANDLE_VALUE);
    g_writer = MailslotOpenA(name);
    CHECK(g_writer != INVALID_HANDLE_VALUE);

    for (i = 0; i < 2; i++)
        CHECK(pthread_create(&r[i], NULL, reader, &got[i]) == 0);
    for (i = 0; i < WRITERS; i++)
        CHECK(pthread_create(&w[i], NULL, writer, (void *)i) == 0);
    for (i = 0; i < WRITERS; i++) {
        void *res;
        pthread_join(w[i], &res);
        CHECK(res == NULL);
    }
    for (i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    CHECK(got[0] + got[1] == WRITERS * PER_WRITER);
    CHECK(g_bad == 0);

    /* Per-thread last error. */
    SetLastError(1234);
    CHECK(pthread_create(&et, NULL, error_thread, &other) == 0);
    pthread_join(et, NULL);
    CHECK(other == ERROR_INVALID_HANDLE);
    CHECK(GetLastError() == 1234);

    /* A handle created in one thread, used and closed in another. */
    {
        char n2[128];
        pthread_t bt;
        slot_name(n2, sizeof n2, "threads");
        g_block = CreateMailslotA(n2, 0, MAILSLOT_WAIT_FOREVER, NULL);
        CHECK(g_block != INVALID_HANDLE_VALUE);
        CHECK(pthread_create(&bt, NULL, blocked_reader, NULL) == 0);
        sleep_ms(300);
        CHECK_OK(MailslotClose(g_block));
        pthread_join(bt, NULL);
        CHECK(g_block_err == ERROR_OPERATION_ABORTED);
        CHECK(g_block_ms >= 250 && g_block_ms < 2000);
        /* The name is free again once the reader has left. */
        g_block = CreateMailslotA(n2, 0, 0, NULL);
        CHECK(g_block != INVALID_HANDLE_VALUE);
        CHECK_OK(MailslotClose(g_block));
    }

    CHECK_OK(MailslotClose(g_writer));
    CHECK_OK(MailslotClose(g_owner));
    return finish("t_threads");
}
