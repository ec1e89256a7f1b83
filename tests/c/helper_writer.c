/* Helper for t_fork: writes messages to a mailslot from another process.
 *   helper_writer NAME win32 COUNT   - MailslotOpenA + COUNT x MailslotWrite "w<i>"
 *   helper_writer NAME lanman COUNT  - COUNT x DosWriteMailslot "l<i>", priority i % 10
 * Exit status 0 when every write succeeded. */
#define _GNU_SOURCE 1
#include <mailslot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    int count, i;
    if (argc != 4)
        return 2;
    count = atoi(argv[3]);
    if (strcmp(argv[2], "win32") == 0) {
        HANDLE w = MailslotOpenA(argv[1]);
        if (w == INVALID_HANDLE_VALUE) {
            if (!getenv("HELPER_QUIET"))
                fprintf(stderr, "helper: open failed: %u\n", GetLastError());
            return 1;
        }
        for (i = 0; i < count; i++) {
            char m[16];
            DWORD n;
            int len = sprintf(m, "w%d", i);
            if (!MailslotWrite(w, m, (DWORD)len, &n)) {
                fprintf(stderr, "helper: write failed: %u\n", GetLastError());
                return 1;
            }
        }
        MailslotClose(w);
    } else {
        for (i = 0; i < count; i++) {
            char m[16];
            int len = sprintf(m, "l%d", i);
            unsigned rc = DosWriteMailslot(argv[1], m, (unsigned short)len,
                                           (unsigned short)(i % 10), 2, 0);
            if (rc != 0) {
                fprintf(stderr, "helper: DosWriteMailslot failed: %u\n", rc);
                return 1;
            }
        }
    }
    return 0;
}
