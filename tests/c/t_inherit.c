/* Inheritable owner handles (SECURITY_ATTRIBUTES.bInheritHandle):
 * (1) fork + exec: the child (helper_reader) uses the handle VALUE it gets on its command line;
 *     it reads what the parent writes, the slot outlives the parent's close, and the name is
 *     gone once the child has exited. Also with the low handle numbers crowded, so that the
 *     handle's descriptor has to be moved to a free number.
 * (2) The parent closes before the child has taken the handle up: the inherited descriptor
 *     alone keeps the mailslot and its queued message.
 * (3) A non-inheritable handle's value is dead in an exec'd child (6).
 * (4) Plain fork: the inheritable handle works in the child, a non-inheritable one is dead. */
#include "common.h"
#include <fcntl.h>

static const char *handle_arg(HANDLE h, char *buf, size_t len)
{
    snprintf(buf, len, "%lu", (unsigned long)(size_t)h);
    return buf;
}

/* The handle's value is a descriptor without close-on-exec. */
static int is_inheritable_fd(HANDLE h)
{
    int flags = fcntl((int)(size_t)h, F_GETFD);
    return flags >= 0 && (flags & FD_CLOEXEC) == 0;
}

static void write_class2(const char *name, const char *msg)
{
    CHECK_RC(DosWriteMailslot(name, msg, (unsigned short)strlen(msg), 0, 2, 0), NERR_Success);
}

/* Waits (up to 3 s) until `name` can no longer be opened, and checks that the error is 2. */
static void check_gone(const char *name)
{
    HANDLE w = INVALID_HANDLE_VALUE;
    DWORD err = 0;
    int i;
    for (i = 0; i < 30; i++) {
        w = MailslotOpenA(name);
        if (w == INVALID_HANDLE_VALUE) {
            err = GetLastError();
            break;
        }
        MailslotClose(w);
        sleep_ms(100);
    }
    CHECK(w == INVALID_HANDLE_VALUE && err == ERROR_FILE_NOT_FOUND);
    if (i > 0)
        fprintf(stderr, "note: name gone after %d ms\n", i * 100);
}

/* (1) */
static void exec_child(int crowd)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    char name[128], arg[32], line[256];
    HANDLE writers[64];
    HANDLE h;
    FILE *out = NULL;
    pid_t pid;
    int i;
    DWORD count;

    slot_name(name, sizeof name, "inherit");
    /* Crowd: 64 writer handles to another mailslot take the low handle numbers. */
    if (crowd) {
        char other[128];
        HANDLE o = CreateMailslotA(slot_name(other, sizeof other, "crowd"), 0, 0, NULL);
        CHECK(o != INVALID_HANDLE_VALUE);
        for (i = 0; i < 64; i++) {
            writers[i] = MailslotOpenA(other);
            CHECK(writers[i] != INVALID_HANDLE_VALUE);
        }
        h = CreateMailslotA(name, 0, 5000, &sa);
        for (i = 0; i < 64; i++)
            CHECK_OK(MailslotClose(writers[i]));
        CHECK_OK(MailslotClose(o));
    } else {
        h = CreateMailslotA(name, 0, 5000, &sa);
    }
    CHECK(h != INVALID_HANDLE_VALUE);
    if (h == INVALID_HANDLE_VALUE)
        return;
    CHECK(is_inheritable_fd(h));

    {
        char *argv[] = {"helper_reader", "read", (char *)handle_arg(h, arg, sizeof arg), "3",
                        NULL};
        pid = spawn_helper(argv, &out);
    }
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    CHECK(strcmp(report_line(out, line, sizeof line), "ready") == 0);
    write_class2(name, "m0");
    write_class2(name, "m1");
    CHECK(strcmp(report_line(out, line, sizeof line), "got m0") == 0);
    CHECK(strcmp(report_line(out, line, sizeof line), "got m1") == 0);
    /* The child read them: nothing is left for the parent. */
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, &count, NULL));
    CHECK(count == 0);
    /* The parent lets go; the child still holds the mailslot. */
    CHECK_OK(MailslotClose(h));
    write_class2(name, "m2");
    CHECK(strcmp(report_line(out, line, sizeof line), "got m2") == 0);
    CHECK(wait_exit(pid) == 0);
    fclose(out);
    /* The child closed (and exited): the name is gone. */
    check_gone(name);
}

/* (2) */
static void close_before_take_up(void)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    char name[128], arg[32], line[256];
    HANDLE h;
    FILE *out = NULL;
    pid_t pid;

    slot_name(name, sizeof name, "inherit-early");
    {
        wchar_t wname[128];
        swprintf(wname, 128, L"\\\\.\\mailslot\\ctest\\inherit-w\\%ld", (long)getpid());
        h = CreateMailslotW(wname, 0, 0, &sa);
    }
    CHECK(h != INVALID_HANDLE_VALUE && is_inheritable_fd(h));
    CHECK_OK(MailslotClose(h));
    h = CreateMailslotA(name, 0, 0, &sa);
    CHECK(h != INVALID_HANDLE_VALUE);
    write_class2(name, "queued");
    setenv("HELPER_DELAY_MS", "300", 1);
    {
        char *argv[] = {"helper_reader", "read", (char *)handle_arg(h, arg, sizeof arg), "2",
                        NULL};
        pid = spawn_helper(argv, &out);
    }
    unsetenv("HELPER_DELAY_MS");
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    /* Closed while the child sleeps: only its inherited descriptor holds the mailslot. */
    CHECK_OK(MailslotClose(h));
    write_class2(name, "after");
    CHECK(strcmp(report_line(out, line, sizeof line), "ready") == 0);
    CHECK(strcmp(report_line(out, line, sizeof line), "got queued") == 0);
    CHECK(strcmp(report_line(out, line, sizeof line), "got after") == 0);
    CHECK(wait_exit(pid) == 0);
    fclose(out);
    check_gone(name);
}

/* (3) */
static void not_inheritable_in_exec_child(void)
{
    char name[128], arg[32], line[256];
    HANDLE h;
    FILE *out = NULL;
    pid_t pid;
    unsigned short lh;
    char lname[128];

    slot_name(name, sizeof name, "noinherit");
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    {
        char *argv[] = {"helper_reader", "bad", (char *)handle_arg(h, arg, sizeof arg), NULL};
        pid = spawn_helper(argv, &out);
    }
    CHECK(strcmp(report_line(out, line, sizeof line), "dead") == 0);
    CHECK(wait_exit(pid) == 0);
    fclose(out);
    /* A LAN Manager handle is never inheritable. */
    CHECK_RC(DosMakeMailslot(lm_slot_name(lname, sizeof lname, "noinherit"), 0, 0, &lh),
             NERR_Success);
    {
        char *argv[] = {"helper_reader", "bad",
                        (char *)handle_arg((HANDLE)(size_t)lh, arg, sizeof arg), NULL};
        pid = spawn_helper(argv, &out);
    }
    CHECK(strcmp(report_line(out, line, sizeof line), "dead") == 0);
    CHECK(wait_exit(pid) == 0);
    fclose(out);
    /* Neither mailslot was disturbed. */
    write_class2(name, "still");
    {
        char buf[16];
        DWORD n;
        CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
        CHECK(n == 5 && memcmp(buf, "still", 5) == 0);
    }
    CHECK_OK(MailslotClose(h));
    CHECK_RC(DosDeleteMailslot(lh), NERR_Success);
}

/* (4) Exit code bit i = check i failed in the child. */
static void plain_fork(void)
{
    SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
    char iname[128], nname[128], buf[64];
    HANDLE hi, hn;
    DWORD n, count;
    pid_t pid;

    hi = CreateMailslotA(slot_name(iname, sizeof iname, "fork-i"), 0, 2000, &sa);
    hn = CreateMailslotA(slot_name(nname, sizeof nname, "fork-n"), 0, 2000, NULL);
    CHECK(hi != INVALID_HANDLE_VALUE && hn != INVALID_HANDLE_VALUE);
    write_class2(iname, "f0");
    write_class2(nname, "n0");
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        DWORD k, max;
        char b[16];
        if (!MailslotRead(hi, b, sizeof b, &k) || k != 2 || memcmp(b, "f0", 2) != 0)
            bad |= 1;
        if (MailslotRead(hn, b, sizeof b, &k) || GetLastError() != ERROR_INVALID_HANDLE)
            bad |= 2;
        /* Taken up from the parent's copy: the size given to CreateMailslot is kept. */
        if (!GetMailslotInfo(hi, &max, NULL, &k, NULL) || max != 0 || k != 0)
            bad |= 4;
        if (!MailslotClose(hi)) /* lets go of the child's hold only */
            bad |= 8;
        if (!MailslotClose(hn)) /* forgets the dead copy */
            bad |= 16;
        _exit(bad);
    }
    CHECK(pid > 0);
    {
        int st = wait_exit(pid);
        CHECK(st == 0);
        if (st != 0)
            fprintf(stderr, "fork child status %d\n", st);
    }
    /* The child took f0; both mailslots still work in the parent. */
    CHECK_OK(GetMailslotInfo(hi, NULL, NULL, &count, NULL));
    CHECK(count == 0);
    write_class2(iname, "f1");
    CHECK_OK(MailslotRead(hi, buf, sizeof buf, &n));
    CHECK(n == 2 && memcmp(buf, "f1", 2) == 0);
    CHECK_OK(MailslotRead(hn, buf, sizeof buf, &n));
    CHECK(n == 2 && memcmp(buf, "n0", 2) == 0);
    CHECK_OK(MailslotClose(hi));
    CHECK_OK(MailslotClose(hn));
    check_gone(iname);
    check_gone(nname);
}

int main(void)
{
    exec_child(0);
    exec_child(1);
    close_before_take_up();
    not_inheritable_in_exec_child();
    plain_fork();
    return finish("t_inherit");
}
