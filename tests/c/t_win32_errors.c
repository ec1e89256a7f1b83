/* Win32 handle and argument errors: owner writes (5), writer reads (87), bad and closed handles
 * (6), NULL pointers (87), Set on a writer (6), per-thread last error survives success. */
#include "common.h"

int main(void)
{
    char name[128], buf[64];
    HANDLE h, w, dead;
    DWORD n = 77, max, next, count, to;

    slot_name(name, sizeof name, "errors");
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);

    /* The owner's handle cannot write; *written = 0. */
    n = 77;
    CHECK_FAIL(MailslotWrite(h, "x", 1, &n), ERROR_ACCESS_DENIED);
    CHECK(n == 0);
    /* A writer's handle cannot read; *read = 0. */
    n = 77;
    CHECK_FAIL(MailslotRead(w, buf, sizeof buf, &n), ERROR_INVALID_PARAMETER);
    CHECK(n == 0);
    CHECK_FAIL(GetMailslotInfo(w, &max, &next, &count, &to), ERROR_INVALID_PARAMETER);
    CHECK_FAIL(SetMailslotInfo(w, 5), ERROR_INVALID_HANDLE);
    CHECK(MailslotGetPollFd(w) == -1 && GetLastError() == ERROR_INVALID_PARAMETER);

    /* Bad handles: NULL, INVALID_HANDLE_VALUE, never-issued, closed. */
    n = 77;
    CHECK_FAIL(MailslotRead(NULL, buf, sizeof buf, &n), ERROR_INVALID_HANDLE);
    CHECK(n == 0);
    CHECK_FAIL(MailslotRead(INVALID_HANDLE_VALUE, buf, sizeof buf, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotRead((HANDLE)(long)54321, buf, sizeof buf, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotWrite(INVALID_HANDLE_VALUE, "x", 1, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotWrite((HANDLE)(long)-2, "x", 1, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(GetMailslotInfo(NULL, NULL, NULL, NULL, NULL), ERROR_INVALID_HANDLE);
    CHECK_FAIL(SetMailslotInfo(INVALID_HANDLE_VALUE, 0), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotClose(NULL), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotClose(INVALID_HANDLE_VALUE), ERROR_INVALID_HANDLE);
    CHECK(MailslotGetPollFd(NULL) == -1 && GetLastError() == ERROR_INVALID_HANDLE);

    dead = MailslotOpenA(name);
    CHECK(dead != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotClose(dead));
    CHECK_FAIL(MailslotWrite(dead, "x", 1, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotClose(dead), ERROR_INVALID_HANDLE);

    /* NULL pointers that may not be NULL. */
    CHECK_FAIL(MailslotWrite(w, "x", 1, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAIL(MailslotWrite(w, NULL, 1, &n), ERROR_INVALID_PARAMETER);
    CHECK_FAIL(MailslotRead(h, buf, sizeof buf, NULL), ERROR_INVALID_PARAMETER);
    CHECK_FAIL(MailslotRead(h, NULL, 10, &n), ERROR_INVALID_PARAMETER);
    /* ...and NULL that may be: GetMailslotInfo with all pointers NULL. */
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, NULL, NULL));
    /* NULL buffer with length 0 is fine for a 0-byte write. */
    CHECK_OK(MailslotWrite(w, NULL, 0, &n));
    CHECK(n == 0);

    /* A message above the maximum size is refused (87) and nothing is queued. */
    {
        HANDLE small, sw;
        char smallname[128];
        slot_name(smallname, sizeof smallname, "errors");
        small = CreateMailslotA(smallname, 4, 0, NULL);
        CHECK(small != INVALID_HANDLE_VALUE);
        sw = MailslotOpenA(smallname);
        CHECK_FAIL(MailslotWrite(sw, "12345", 5, &n), ERROR_INVALID_PARAMETER);
        CHECK_OK(MailslotWrite(sw, "1234", 4, &n));
        count = 99;
        CHECK_OK(GetMailslotInfo(small, &max, NULL, &count, NULL));
        CHECK(max == 4 && count == 1);
        /* The owner closes: the writer gets ERROR_BROKEN_PIPE. */
        CHECK_OK(MailslotClose(small));
        CHECK_FAIL(MailslotWrite(sw, "1", 1, &n), ERROR_BROKEN_PIPE);
        CHECK_OK(MailslotClose(sw));
    }

    /* Success leaves the last error alone; SetLastError/GetLastError round trip. */
    SetLastError(4242);
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, NULL, NULL));
    CHECK(GetLastError() == 4242);

    CHECK_OK(MailslotClose(w));
    CHECK_OK(MailslotClose(h));
    CHECK_FAIL(MailslotRead(h, buf, sizeof buf, &n), ERROR_INVALID_HANDLE);
    CHECK_FAIL(GetMailslotInfo(h, NULL, NULL, NULL, NULL), ERROR_INVALID_HANDLE);
    return finish("t_win32_errors");
}
