/* Two processes: (1) fork + exec of helper_writer (Win32 and LAN Manager writers) feeding an
 * owner in this process; (2) fork without exec: the child writes through a fresh writer handle
 * and finds the inherited owner handle dead (6), closing it there leaves the parent's mailslot
 * alone. */
#include "common.h"
#include <sys/wait.h>

static int run_helper(const char *name, const char *mode, const char *count)
{
    char path[512];
    const char *dir = getenv("MAILSLOT_TEST_BIN");
    pid_t pid;
    int status;
    snprintf(path, sizeof path, "%s/helper_writer", dir ? dir : ".");
    pid = fork();
    if (pid == 0) {
        execl(path, "helper_writer", name, mode, count, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
    char name[128], buf[64];
    HANDLE h;
    DWORD n;
    unsigned short lh, ret, ns, np;
    int i;
    pid_t pid;
    int status;

    slot_name(name, sizeof name, "fork");
    h = CreateMailslotA(name, 0, 2000, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);

    /* (1) Another program writes 5 messages; they arrive in order. */
    CHECK(run_helper(name, "win32", "5") == 0);
    check_in_order(h, "w", 5);

    /* LAN Manager owner, LAN Manager writer in another process: priority order. */
    {
        char lname[128];
        lm_slot_name(lname, sizeof lname, "fork");
        CHECK_RC(DosMakeMailslot(lname, 64, 0, &lh), NERR_Success);
        CHECK(run_helper(lname, "lanman", "10") == 0);
        for (i = 9; i >= 0; i--) {
            char m[16];
            int len = sprintf(m, "l%d", i);
            CHECK_RC(DosReadMailslot(lh, buf, &ret, &ns, &np, 0), NERR_Success);
            CHECK(ret == (unsigned short)len && memcmp(buf, m, (size_t)len) == 0);
        }
        CHECK_RC(DosDeleteMailslot(lh), NERR_Success);
    }

    /* (2) Plain fork: the child writes with a fresh handle; the inherited owner handle is dead
     * there. Exit code bit i = check i failed. */
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        HANDLE w = MailslotOpenA(name);
        DWORD k;
        char b[8];
        if (w == INVALID_HANDLE_VALUE || !MailslotWrite(w, "child", 5, &k) || k != 5)
            bad |= 1;
        if (MailslotRead(h, b, sizeof b, &k) || GetLastError() != ERROR_INVALID_HANDLE)
            bad |= 2;
        if (GetMailslotInfo(h, NULL, NULL, NULL, NULL) || GetLastError() != ERROR_INVALID_HANDLE)
            bad |= 4;
        if (!MailslotClose(h)) /* forgets it here; the parent's mailslot lives on */
            bad |= 8;
        if (w != INVALID_HANDLE_VALUE && (!MailslotWrite(w, "after", 5, &k) || k != 5))
            bad |= 16;
        MailslotClose(w);
        _exit(bad);
    }
    CHECK(pid > 0);
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "child status bits %d\n", WEXITSTATUS(status));
    CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
    CHECK(n == 5 && memcmp(buf, "child", 5) == 0);
    CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
    CHECK(n == 5 && memcmp(buf, "after", 5) == 0);
    /* The parent's mailslot still accepts writers. */
    CHECK(run_helper(name, "win32", "1") == 0);
    CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
    CHECK(n == 2 && memcmp(buf, "w0", 2) == 0);

    CHECK_OK(MailslotClose(h));
    setenv("HELPER_QUIET", "1", 1);
    CHECK(run_helper(name, "win32", "1") == 1); /* gone: open fails */
    return finish("t_fork");
}
