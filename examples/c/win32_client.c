/* Win32 style mailslot client: opens a mailslot like CreateFile(OPEN_EXISTING) and writes
 * each argument as one message.
 *
 *   win32_client NAME TEXT...
 *
 * Exit status 0 on success, else 1 (the error number is printed). */
#include <mailslot.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    HANDLE h;
    int i;

    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME TEXT...\n", argv[0]);
        return 2;
    }
    h = MailslotOpenA(argv[1]);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "MailslotOpenA(%s) failed: %u\n", argv[1], GetLastError());
        return 1;
    }
    for (i = 2; i < argc; i++) {
        DWORD written;
        DWORD len = (DWORD)strlen(argv[i]);
        if (!MailslotWrite(h, argv[i], len, &written) || written != len) {
            fprintf(stderr, "MailslotWrite failed: %u\n", GetLastError());
            MailslotClose(h);
            return 1;
        }
    }
    MailslotClose(h);
    return 0;
}
