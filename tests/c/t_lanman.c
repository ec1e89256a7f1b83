/* LAN Manager calls: name and argument errors (3, 183, 87, 2, 6), priority order through
 * DosReadMailslot with next size / priority, DosPeekMailslot leaving the message,
 * DosMailslotInfo (next size 0 when empty), read timeouts (121), second class when full (8),
 * message too large (87), delete then reuse the name. */
#include "common.h"

int main(void)
{
    char name[128], buf[1024];
    unsigned short h = 0, h2 = 0, ret, ns, np, msz, ssz, cnt;
    long t0, el;
    int i;
    /* Messages written with these priorities, in this order. */
    static const unsigned short prio[] = {0, 5, 9, 5, 0, 9, 3};
    /* Expected read order (index into prio). */
    static const int order[] = {2, 5, 1, 3, 6, 0, 4};

    CHECK_RC(DosMakeMailslot(NULL, 100, 0, &h), ERROR_PATH_NOT_FOUND);
    CHECK_RC(DosMakeMailslot("blah", 100, 0, &h), ERROR_PATH_NOT_FOUND);
    CHECK_RC(DosMakeMailslot("\\\\host\\mailslot\\x", 100, 0, &h), ERROR_PATH_NOT_FOUND);

    lm_slot_name(name, sizeof name, "lanman");
    CHECK_RC(DosMakeMailslot(name, 100, 0, NULL), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosMakeMailslot(name, 100, 50, &h), ERROR_INVALID_PARAMETER); /* size < message */
    CHECK_RC(DosMakeMailslot(name, 100, 0, &h), NERR_Success);
    CHECK(h != 0 && h != 0xFFFF);
    CHECK_RC(DosMakeMailslot(name, 100, 0, &h2), ERROR_ALREADY_EXISTS);
    /* The Win32 form of the same name is the same mailslot. */
    {
        char w32[160];
        snprintf(w32, sizeof w32, "\\\\.%s", name);
        CHECK_RC(DosMakeMailslot(w32, 100, 0, &h2), ERROR_ALREADY_EXISTS);
    }

    /* Info on the empty slot: LAN Manager says next size 0. */
    msz = ssz = ns = np = cnt = 77;
    CHECK_RC(DosMailslotInfo(h, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
    CHECK(msz == 100);
    CHECK(ssz >= 100);
    CHECK(ns == 0 && np == 0 && cnt == 0);
    CHECK_RC(DosMailslotInfo(h, NULL, &ssz, &ns, &np, &cnt), ERROR_INVALID_PARAMETER);

    /* Empty reads: 121 after the timeout, *returned = 0; peek on empty succeeds with 0. */
    ret = 5;
    CHECK_RC(DosReadMailslot(h, buf, &ret, &ns, &np, 0), ERROR_SEM_TIMEOUT);
    CHECK(ret == 0);
    t0 = now_ms();
    CHECK_RC(DosReadMailslot(h, buf, &ret, &ns, &np, 250), ERROR_SEM_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 240 && el < 2000);
    ret = 5;
    CHECK_RC(DosPeekMailslot(h, buf, &ret, &ns, &np), NERR_Success);
    CHECK(ret == 0 && ns == 0);

    /* Write errors. */
    CHECK_RC(DosWriteMailslot(NULL, "x", 1, 0, 2, 0), ERROR_PATH_NOT_FOUND);
    CHECK_RC(DosWriteMailslot("blah", "x", 1, 0, 2, 0), ERROR_PATH_NOT_FOUND);
    CHECK_RC(DosWriteMailslot("\\mailslot\\ctest\\no\\such", "x", 1, 0, 2, 0), ERROR_FILE_NOT_FOUND);
    CHECK_RC(DosWriteMailslot(name, "x", 1, 10, 2, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosWriteMailslot(name, "x", 1, 0, 3, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosWriteMailslot(name, "x", 1, 0, 0, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosWriteMailslot(name, NULL, 1, 0, 2, 0), ERROR_INVALID_PARAMETER);
    memset(buf, 'a', sizeof buf);
    CHECK_RC(DosWriteMailslot(name, buf, 101, 0, 2, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosWriteMailslot("\\\\NOSUCHHOST\\mailslot\\x", "x", 1, 0, 2, 0), ERROR_BAD_NETPATH);

    /* Priority order: 9 first, FIFO within a priority; next size/priority after each read. */
    for (i = 0; i < 7; i++) {
        char m[16];
        int len = sprintf(m, "p%u-%d", prio[i], i);
        CHECK_RC(DosWriteMailslot(name, m, (unsigned short)len, prio[i], i % 2 ? 1 : 2, 1000),
                 NERR_Success);
    }
    CHECK_RC(DosMailslotInfo(h, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
    CHECK(cnt == 7 && ns == 4 && np == 9);

    /* Peek leaves the message: twice the same, count unchanged, next = the peeked head. */
    memset(buf, 0, sizeof buf);
    CHECK_RC(DosPeekMailslot(h, buf, &ret, &ns, &np), NERR_Success);
    CHECK(ret == 4 && memcmp(buf, "p9-2", 4) == 0);
    CHECK(ns == 4 && np == 9);
    memset(buf, 0, sizeof buf);
    CHECK_RC(DosPeekMailslot(h, buf, &ret, &ns, &np), NERR_Success);
    CHECK(ret == 4 && memcmp(buf, "p9-2", 4) == 0);
    CHECK_RC(DosMailslotInfo(h, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
    CHECK(cnt == 7);

    for (i = 0; i < 7; i++) {
        char m[16];
        int k = order[i];
        int len = sprintf(m, "p%u-%d", prio[k], k);
        memset(buf, 0, sizeof buf);
        ret = ns = np = 77;
        CHECK_RC(DosReadMailslot(h, buf, &ret, &ns, &np, 0), NERR_Success);
        CHECK(ret == (unsigned short)len && memcmp(buf, m, (size_t)len) == 0);
        if (i + 1 < 7) {
            int nk = order[i + 1];
            char nm[16];
            CHECK(ns == (unsigned short)sprintf(nm, "p%u-%d", prio[nk], nk));
            CHECK(np == prio[nk]);
        } else {
            CHECK(ns == 0 && np == 0);
        }
    }

    /* Zero-length message: counted, read as 0 bytes. */
    CHECK_RC(DosWriteMailslot(name, NULL, 0, 1, 2, 0), NERR_Success);
    CHECK_RC(DosMailslotInfo(h, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
    CHECK(cnt == 1 && ns == 0 && np == 1);
    ret = 7;
    CHECK_RC(DosReadMailslot(h, buf, &ret, &ns, &np, 0), NERR_Success);
    CHECK(ret == 0);

    /* NULL pointers. */
    CHECK_RC(DosReadMailslot(h, NULL, &ret, &ns, &np, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosReadMailslot(h, buf, NULL, &ns, &np, 0), ERROR_INVALID_PARAMETER);
    CHECK_RC(DosPeekMailslot(h, buf, &ret, NULL, &np), ERROR_INVALID_PARAMETER);

    /* Bad handles. */
    CHECK_RC(DosReadMailslot(0, buf, &ret, &ns, &np, 0), ERROR_INVALID_HANDLE);
    CHECK_RC(DosReadMailslot(0xFFFF, buf, &ret, &ns, &np, 0), ERROR_INVALID_HANDLE);
    CHECK_RC(DosPeekMailslot(4321, buf, &ret, &ns, &np), ERROR_INVALID_HANDLE);
    CHECK_RC(DosMailslotInfo(4321, &msz, &ssz, &ns, &np, &cnt), ERROR_INVALID_HANDLE);
    CHECK_RC(DosDeleteMailslot(4321), ERROR_INVALID_HANDLE);

    /* Second class when the mailslot is full: 8 at once. */
    {
        char n2[128];
        unsigned short hs;
        lm_slot_name(n2, sizeof n2, "lanman");
        CHECK_RC(DosMakeMailslot(n2, 10, 20, &hs), NERR_Success);
        CHECK_RC(DosMailslotInfo(hs, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
        CHECK(msz == 10 && ssz == 20);
        CHECK_RC(DosWriteMailslot(n2, "0123456789", 10, 0, 2, 0), NERR_Success);
        CHECK_RC(DosWriteMailslot(n2, "0123456789", 10, 0, 2, 0), NERR_Success);
        t0 = now_ms();
        CHECK_RC(DosWriteMailslot(n2, "x", 1, 0, 2, 5000), ERROR_NOT_ENOUGH_MEMORY);
        CHECK(now_ms() - t0 < 1000);
        CHECK_RC(DosDeleteMailslot(hs), NERR_Success);
        CHECK_RC(DosWriteMailslot(n2, "x", 1, 0, 2, 0), ERROR_FILE_NOT_FOUND);
    }

    /* message_size 0 means 65535. */
    {
        char n3[128];
        unsigned short hz;
        lm_slot_name(n3, sizeof n3, "lanman");
        CHECK_RC(DosMakeMailslot(n3, 0, 0, &hz), NERR_Success);
        CHECK_RC(DosMailslotInfo(hz, &msz, &ssz, &ns, &np, &cnt), NERR_Success);
        CHECK(msz == 65535);
        CHECK_RC(DosDeleteMailslot(hz), NERR_Success);
    }

    /* Delete, then the handle is dead and the name can be made again. */
    CHECK_RC(DosDeleteMailslot(h), NERR_Success);
    CHECK_RC(DosDeleteMailslot(h), ERROR_INVALID_HANDLE);
    CHECK_RC(DosReadMailslot(h, buf, &ret, &ns, &np, 0), ERROR_INVALID_HANDLE);
    CHECK_RC(DosMakeMailslot(name, 100, 0, &h2), NERR_Success);
    CHECK(h2 != h);
    CHECK_RC(DosDeleteMailslot(h2), NERR_Success);
    return finish("t_lanman");
}
