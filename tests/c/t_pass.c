/* Passing owner handles over a Unix socket (MailslotSendHandle / MailslotReceiveHandle):
 * (1) within one process: two holders, each message read once, closing one leaves the other,
 *     DosDeleteMailslot on one kills the other's reads (6);
 * (2) to a forked + exec'd helper_reader that reads what the parent writes, until the parent's
 *     DosDeleteMailslot makes its read fail with 6;
 * (3) error paths: writer and bad handles, non-socket descriptors, a socket that carries no
 *     descriptor or one that is not a mailslot, a closed peer. */
#include "common.h"
#include <sys/socket.h>
#include <sys/uio.h>

static void write_class2(const char *name, const char *msg)
{
    CHECK_RC(DosWriteMailslot(name, msg, (unsigned short)strlen(msg), 0, 2, 0), NERR_Success);
}

static void read_is(HANDLE h, const char *want)
{
    char buf[64];
    DWORD n = 0;
    CHECK_OK(MailslotRead(h, buf, sizeof buf, &n));
    CHECK(n == strlen(want) && memcmp(buf, want, n) == 0);
}

/* Sends one byte, with descriptor `fd` attached when fd >= 0. */
static int send_raw(int sock, int fd)
{
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (fd >= 0) {
        struct cmsghdr *c;
        memset(&u, 0, sizeof u);
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof u.buf;
        c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

/* (1) */
static void same_process(void)
{
    char name[128];
    int sv[2];
    HANDLE h, h2, w;
    DWORD k, count;
    unsigned short r, ns, np;
    char buf[64];

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    h = CreateMailslotA(slot_name(name, sizeof name, "pass1"), 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotSendHandle(h, sv[0]));
    h2 = MailslotReceiveHandle(sv[1]);
    CHECK(h2 != INVALID_HANDLE_VALUE && h2 != h);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotWrite(w, "a0", 2, &k));
    CHECK_OK(MailslotWrite(w, "a1", 2, &k));
    CHECK_OK(MailslotWrite(w, "a2", 2, &k));
    CHECK_OK(GetMailslotInfo(h2, NULL, NULL, &count, NULL));
    CHECK(count == 3);
    /* Each message once, in order, whichever holder reads. */
    read_is(h2, "a0");
    read_is(h, "a1");
    read_is(h2, "a2");
    CHECK_FAIL(MailslotRead(h, buf, sizeof buf, &k), ERROR_SEM_TIMEOUT);
    CHECK_FAIL(MailslotRead(h2, buf, sizeof buf, &k), ERROR_SEM_TIMEOUT);
    /* Closing the creator's handle only lets go of it. */
    CHECK_OK(MailslotClose(h));
    CHECK_OK(MailslotWrite(w, "a3", 2, &k));
    read_is(h2, "a3");
    /* Closing the last holder deletes it: the name at once, and an open writer's next write
     * fails. */
    CHECK_OK(MailslotClose(h2));
    CHECK_BAD_HANDLE(MailslotOpenA(name), ERROR_FILE_NOT_FOUND);
    CHECK_FAIL(MailslotWrite(w, "a4", 2, &k), ERROR_BROKEN_PIPE);
    CHECK_OK(MailslotClose(w));

    /* DosDeleteMailslot on one holder: the other's reads fail with 6 (both APIs). */
    h = CreateMailslotA(slot_name(name, sizeof name, "pass1"), 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotSendHandle(h, sv[0]));
    h2 = MailslotReceiveHandle(sv[1]);
    CHECK(h2 != INVALID_HANDLE_VALUE);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);
    write_class2(name, "lost");
    CHECK_RC(DosDeleteMailslot((unsigned short)(size_t)h), NERR_Success);
    CHECK_FAIL(MailslotRead(h2, buf, sizeof buf, &k), ERROR_INVALID_HANDLE);
    CHECK_RC(DosReadMailslot((unsigned short)(size_t)h2, buf, &r, &ns, &np, 0),
             ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotWrite(w, "x", 1, &k), ERROR_BROKEN_PIPE);
    CHECK_OK(MailslotClose(w));
    CHECK_OK(MailslotClose(h2));
    CHECK_BAD_HANDLE(MailslotOpenA(name), ERROR_FILE_NOT_FOUND);
    close(sv[0]);
    close(sv[1]);
}

/* (2) */
static void to_exec_child(void)
{
    char name[128], arg[16], line[256];
    int sv[2];
    HANDLE h, w;
    FILE *out = NULL;
    pid_t pid;
    DWORD k, count;

    /* Not inheritable: the child can only have it from the socket. */
    h = CreateMailslotA(slot_name(name, sizeof name, "pass2"), 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    snprintf(arg, sizeof arg, "%d", sv[1]);
    {
        char *argv[] = {"helper_reader", "recv", arg, "-1", NULL};
        pid = spawn_helper(argv, &out);
    }
    close(sv[1]);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    CHECK_OK(MailslotSendHandle(h, sv[0]));
    CHECK(strcmp(report_line(out, line, sizeof line), "ready") == 0);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotWrite(w, "p0", 2, &k));
    write_class2(name, "p1");
    CHECK(strcmp(report_line(out, line, sizeof line), "got p0") == 0);
    CHECK(strcmp(report_line(out, line, sizeof line), "got p1") == 0);
    CHECK_OK(GetMailslotInfo(h, NULL, NULL, &count, NULL));
    CHECK(count == 0);
    /* Delete from the parent: the child's (waiting) read fails with 6. */
    CHECK_RC(DosDeleteMailslot((unsigned short)(size_t)h), NERR_Success);
    CHECK(strcmp(report_line(out, line, sizeof line), "err 6") == 0);
    CHECK(wait_exit(pid) == 0);
    fclose(out);
    CHECK_FAIL(MailslotWrite(w, "p2", 2, &k), ERROR_BROKEN_PIPE);
    CHECK_OK(MailslotClose(w));
    CHECK_BAD_HANDLE(MailslotOpenA(name), ERROR_FILE_NOT_FOUND);
    close(sv[0]);
}

/* (3) */
static void errors(void)
{
    char name[128];
    int sv[2], p[2];
    HANDLE h, w;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(pipe(p) == 0);
    h = CreateMailslotA(slot_name(name, sizeof name, "pass3"), 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);

    CHECK_FAIL(MailslotSendHandle(w, sv[0]), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotSendHandle((HANDLE)(size_t)0x1234, sv[0]), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotSendHandle(INVALID_HANDLE_VALUE, sv[0]), ERROR_INVALID_HANDLE);
    CHECK_FAIL(MailslotSendHandle(h, -1), ERROR_INVALID_PARAMETER);
    CHECK_FAIL(MailslotSendHandle(h, p[1]), ERROR_INVALID_PARAMETER);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(-1), ERROR_INVALID_PARAMETER);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(p[0]), ERROR_INVALID_PARAMETER);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(1000000), ERROR_INVALID_PARAMETER);

    /* A descriptor that is not a mailslot handle. */
    CHECK(send_raw(sv[0], p[0]) == 0);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(sv[1]), ERROR_INVALID_HANDLE);
    /* A message without a descriptor. */
    CHECK(send_raw(sv[0], -1) == 0);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(sv[1]), ERROR_INVALID_HANDLE);
    /* The pipe was not disturbed by the attempt to take it up. */
    CHECK(write(p[1], "z", 1) == 1);
    {
        char c = 0;
        CHECK(read(p[0], &c, 1) == 1 && c == 'z');
    }
    /* The peer closed: nothing arrives (6); sending fails (109). */
    close(sv[0]);
    CHECK_BAD_HANDLE(MailslotReceiveHandle(sv[1]), ERROR_INVALID_HANDLE);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    close(sv[1]);
    CHECK_FAIL(MailslotSendHandle(h, sv[0]), ERROR_BROKEN_PIPE);
    close(sv[0]);
    /* The mailslot is still fine. */
    {
        DWORD k;
        CHECK_OK(MailslotWrite(w, "ok", 2, &k));
        read_is(h, "ok");
    }
    CHECK_OK(MailslotClose(w));
    CHECK_OK(MailslotClose(h));
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    same_process();
    to_exec_child();
    errors();
    return finish("t_pass");
}
