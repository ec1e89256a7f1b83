/* Win32 style mailslot server: creates a mailslot, reads messages as they arrive and reports,
 * with GetMailslotInfo, how many more are waiting.
 *
 *   win32_server [NAME [COUNT]]   NAME defaults to \\.\mailslot\example\win32; stops after
 *                                 COUNT messages (default: never)
 *
 * Build: cc win32_server.c $(pkg-config --cflags --libs mailslot)   (or `make` here) */
#include <mailslot.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "\\\\.\\mailslot\\example\\win32";
    long count = argc > 2 ? atol(argv[2]) : -1;
    static char buf[65536]; /* no message is larger than 64 KiB */
    HANDLE slot;
    long i;
    int ok = 1;

    /* Any message size; reads wait forever. */
    slot = CreateMailslotA(name, 0, MAILSLOT_WAIT_FOREVER, NULL);
    if (slot == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "CreateMailslotA(%s) failed: %u\n", name, GetLastError());
        return 1;
    }
    printf("listening on %s\n", name);
    fflush(stdout);
    for (i = 0; count < 0 || i < count; i++) {
        DWORD got, next, waiting;
        if (!MailslotRead(slot, buf, sizeof buf, &got)) {
            fprintf(stderr, "MailslotRead failed: %u\n", GetLastError());
            ok = 0;
            break;
        }
        printf("message (%u bytes): %.*s", got, (int)got, buf);
        if (GetMailslotInfo(slot, NULL, &next, &waiting, NULL) && next != MAILSLOT_NO_MESSAGE)
            printf("   [%u more waiting, next %u bytes]", waiting, next);
        printf("\n");
        fflush(stdout);
    }
    MailslotClose(slot);
    return ok ? 0 : 1;
}
