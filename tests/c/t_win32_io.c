/* Win32 reads and info: timeouts (0 and T -> 121, *read = 0), small buffer (122, the message
 * stays), GetMailslotInfo (MAILSLOT_NO_MESSAGE, max -1 / 256 read back, timeout), Set then Get,
 * zero-length messages, FIFO across writers, MAILSLOT_WAIT_FOREVER read woken by a write. */
#include "common.h"

int main(void)
{
    char name[128], buf[256];
    HANDLE h, w1, w2, w3, hm;
    DWORD n, max, next, count, to;
    long t0, el;
    int i;

    slot_name(name, sizeof name, "io");
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);

    /* Empty: next = MAILSLOT_NO_MESSAGE, count 0, timeout 0, max as given (0). */
    max = next = count = to = 12345;
    CHECK_OK(GetMailslotInfo(h, &max, &next, &count, &to));
    CHECK(max == 0);
    CHECK(next == MAILSLOT_NO_MESSAGE);
    CHECK(count == 0);
    CHECK(to == 0);

    /* Empty read with timeout 0: 121 at once, *read = 0. */
    n = 99;
    t0 = now_ms();
    CHECK_FAIL(MailslotRead(h, buf, sizeof buf, &n), ERROR_SEM_TIMEOUT);
    CHECK(n == 0);
    CHECK(now_ms() - t0 < 200);

    /* Timeout T = 300 ms: 121 after >= T. */
    CHECK_OK(SetMailslotInfo(h, 300));
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, NULL, &to));
    CHECK(to == 300);
    t0 = now_ms();
    n = 99;
    CHECK_FAIL(MailslotRead(h, buf, sizeof buf, &n), ERROR_SEM_TIMEOUT);
    el = now_ms() - t0;
    CHECK(el >= 290);
    CHECK(el < 2000);
    CHECK(n == 0);

    CHECK_OK(SetMailslotInfo(h, MAILSLOT_WAIT_FOREVER));
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, NULL, &to));
    CHECK(to == MAILSLOT_WAIT_FOREVER);
    CHECK_OK(SetMailslotInfo(h, 0));

    w1 = MailslotOpenA(name);
    w2 = MailslotOpenA(name);
    w3 = MailslotOpenA(name);
    CHECK(w1 != INVALID_HANDLE_VALUE && w2 != INVALID_HANDLE_VALUE && w3 != INVALID_HANDLE_VALUE);

    /* Small buffer: 122, the message stays (count and next size unchanged). */
    n = 0;
    CHECK_OK(MailslotWrite(w1, "hello world", 11, &n));
    CHECK(n == 11);
    n = 99;
    CHECK_FAIL(MailslotRead(h, buf, 5, &n), ERROR_INSUFFICIENT_BUFFER);
    CHECK(n == 0);
    CHECK_FAIL(MailslotRead(h, NULL, 0, &n), ERROR_INSUFFICIENT_BUFFER);
    CHECK_OK(GetMailslotInfo(h, NULL, &next, &count, NULL));
    CHECK(next == 11 && count == 1);
    memset(buf, 0, sizeof buf);
    CHECK_OK(MailslotRead(h, buf, 11, &n));
    CHECK(n == 11 && memcmp(buf, "hello world", 11) == 0);

    /* Zero-length messages are real messages: counted, next size 0, read as 0 bytes. */
    CHECK_OK(MailslotWrite(w1, "", 0, &n));
    CHECK(n == 0);
    CHECK_OK(MailslotWrite(w2, "z", 1, &n));
    CHECK_OK(GetMailslotInfo(h, NULL, &next, &count, NULL));
    CHECK(next == 0 && count == 2);
    n = 99;
    CHECK_OK(MailslotRead(h, NULL, 0, &n)); /* a 0-byte message fits in a 0-byte buffer */
    CHECK(n == 0);
    CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
    CHECK(n == 1 && buf[0] == 'z');
    CHECK_OK(GetMailslotInfo(h, NULL, &next, &count, NULL));
    CHECK(next == MAILSLOT_NO_MESSAGE && count == 0);

    /* FIFO across writers. */
    for (i = 0; i < 30; i++) {
        HANDLE wr = i % 3 == 0 ? w1 : i % 3 == 1 ? w2 : w3;
        char m[16];
        int len = sprintf(m, "m%d", i);
        CHECK_OK(MailslotWrite(wr, m, (DWORD)len, &n));
    }
    check_in_order(h, "m", 30);

    /* Max message size -1 and 256 read back as given. */
    {
        char n2[128];
        slot_name(n2, sizeof n2, "io");
        hm = CreateMailslotA(n2, (DWORD)-1, MAILSLOT_WAIT_FOREVER, NULL);
        CHECK(hm != INVALID_HANDLE_VALUE);
        CHECK_OK(GetMailslotInfo(hm, &max, &next, &count, &to));
        CHECK(max == 0xFFFFFFFFu);
        CHECK(to == MAILSLOT_WAIT_FOREVER);
        CHECK_OK(MailslotClose(hm));
        hm = CreateMailslotA(n2, 256, 100, NULL);
        CHECK(hm != INVALID_HANDLE_VALUE);
        CHECK_OK(GetMailslotInfo(hm, &max, NULL, NULL, &to));
        CHECK(max == 256 && to == 100);
        CHECK_OK(MailslotClose(hm));
    }

    /* Closing the owner discards queued data; reopening the name gives an empty slot. */
    CHECK_OK(MailslotWrite(w1, "lost", 4, &n));
    CHECK_OK(MailslotClose(h));
    CHECK_FAIL(MailslotWrite(w2, "x", 1, &n), ERROR_BROKEN_PIPE);
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK_OK(GetMailslotInfo(h, NULL, &next, &count, NULL));
    CHECK(count == 0 && next == MAILSLOT_NO_MESSAGE);

    MailslotClose(w1);
    MailslotClose(w2);
    MailslotClose(w3);
    CHECK_OK(MailslotClose(h));
    return finish("t_win32_io");
}
