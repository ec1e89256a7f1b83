/* MailslotGetPollFd: poll(2) on the owner's descriptor wakes when a writer writes; then a
 * zero-timeout MailslotRead gets the message (121 means "wait again"). */
#include "common.h"
#include <poll.h>

int main(void)
{
    char name[128], buf[64];
    HANDLE h, w;
    DWORD n;
    int fd, got = 0, rounds = 0;
    struct pollfd p;

    slot_name(name, sizeof name, "poll");
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    fd = MailslotGetPollFd(h);
    CHECK(fd >= 0);
    w = MailslotOpenA(name);
    CHECK(w != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotWrite(w, "ping", 4, &n));

    while (!got && rounds++ < 50) {
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        CHECK(poll(&p, 1, 100) >= 0);
        if (MailslotRead(h, buf, sizeof buf, &n)) {
            got = 1;
            CHECK(n == 4 && memcmp(buf, "ping", 4) == 0);
        } else {
            CHECK(GetLastError() == ERROR_SEM_TIMEOUT);
        }
    }
    CHECK(got);
    CHECK_OK(MailslotClose(w));
    CHECK_OK(MailslotClose(h));
    CHECK(MailslotGetPollFd(h) == -1 && GetLastError() == ERROR_INVALID_HANDLE);
    return finish("t_pollfd");
}
