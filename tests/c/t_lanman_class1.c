/* First-class DosWriteMailslot: waits up to its timeout for room (121 after the timeout),
 * succeeds once a reader thread frees room (timeout MAILSLOT_NO_TIMEOUT and a finite one), and
 * with timeout 0 succeeds at once when there is room. */
#include "common.h"
#include <pthread.h>

static unsigned short g_h;
static long g_delay;

static void *reader(void *arg)
{
    char buf[64];
    unsigned short ret, ns, np;
    unsigned *rc = arg;
    sleep_ms(g_delay);
    *rc = DosReadMailslot(g_h, buf, &ret, &ns, &np, 1000);
    return NULL;
}

int main(void)
{
    char name[128];
    unsigned short ret, ns, np, msz, ssz, cnt;
    char buf[64];
    long t0, el;
    pthread_t th;
    unsigned rrc = 99;

    lm_slot_name(name, sizeof name, "class1");
    CHECK_RC(DosMakeMailslot(name, 16, 16, &g_h), NERR_Success);
    CHECK_RC(DosWriteMailslot(name, "0123456789abcdef", 16, 0, 2, 0), NERR_Success);

    /* Full: class 1 with a 300 ms timeout fails with 121 after >= 300 ms. */
    t0 = now_ms();
    CHECK_RC(DosWriteMailslot(name, "x", 1, 0, 1, 300), ERROR_SEM_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 290 && el < 3000);
    /* Timeout 0 fails at once. */
    CHECK_RC(DosWriteMailslot(name, "x", 1, 0, 1, 0), ERROR_SEM_TIMEOUT);

    /* A reader frees room after 300 ms: a forever class-1 write then succeeds. */
    g_delay = 300;
    CHECK(pthread_create(&th, NULL, reader, &rrc) == 0);
    t0 = now_ms();
    CHECK_RC(DosWriteMailslot(name, "waited", 6, 4, 1, MAILSLOT_NO_TIMEOUT), NERR_Success);
    el = now_ms() - t0;
    pthread_join(th, NULL);
    CHECK(rrc == NERR_Success);
    CHECK(el >= 250);
    CHECK_RC(DosMailslotInfo(g_h, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
    CHECK(cnt == 1 && ns == 6 && np == 4);

    /* Fill again and free room within a finite timeout. */
    CHECK_RC(DosWriteMailslot(name, "0123456789", 10, 0, 2, 0), NERR_Success); /* 16 used */
    g_delay = 200;
    rrc = 99;
    CHECK(pthread_create(&th, NULL, reader, &rrc) == 0);
    CHECK_RC(DosWriteMailslot(name, "abcdef", 6, 0, 1, 5000), NERR_Success);
    pthread_join(th, NULL);
    CHECK(rrc == NERR_Success);

    CHECK_RC(DosReadMailslot(g_h, buf, &ret, &ns, &np, 0), NERR_Success);
    CHECK(ret == 10 && memcmp(buf, "0123456789", 10) == 0);
    CHECK_RC(DosReadMailslot(g_h, buf, &ret, &ns, &np, 0), NERR_Success);
    CHECK(ret == 6 && memcmp(buf, "abcdef", 6) == 0 && ns == 0);
    /* A class-1 write with timeout 0 to a mailslot with room succeeds (the timeout only
     * bounds the wait for room, not the connection to the owner). */
    {
        int k, fails = 0;
        for (k = 0; k < 50; k++) {
            if (DosWriteMailslot(name, "q", 1, 0, 1, 0) != NERR_Success ||
                DosReadMailslot(g_h, buf, &ret, &ns, &np, 0) != NERR_Success)
                fails++;
        }
        CHECK(fails == 0);
    }
    CHECK_RC(DosDeleteMailslot(g_h), NERR_Success);
    return finish("t_lanman_class1");
}
