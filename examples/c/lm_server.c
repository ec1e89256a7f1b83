/* LAN Manager style mailslot server: creates a mailslot and prints every message it reads,
 * highest priority first.
 *
 *   lm_server [NAME [COUNT]]     NAME defaults to \mailslot\example\lm; stops after COUNT
 *                                messages (default: never)
 *
 * Build: cc lm_server.c $(pkg-config --cflags --libs mailslot)   (or `make` here) */
#include <mailslot.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : "\\mailslot\\example\\lm";
    long count = argc > 2 ? atol(argv[2]) : -1;
    unsigned short h, returned, next_size, next_priority;
    static char buf[65535]; /* DosReadMailslot needs room for the mailslot's message size */
    unsigned rc;
    long i;

    /* Messages up to 400 bytes, 8 KiB of queue. */
    rc = DosMakeMailslot(name, 400, 8192, &h);
    if (rc != NERR_Success) {
        fprintf(stderr, "DosMakeMailslot(%s) failed: %u\n", name, rc);
        return 1;
    }
    printf("listening on %s\n", name);
    fflush(stdout);
    for (i = 0; count < 0 || i < count; i++) {
        rc = DosReadMailslot(h, buf, &returned, &next_size, &next_priority, MAILSLOT_NO_TIMEOUT);
        if (rc != NERR_Success) {
            fprintf(stderr, "DosReadMailslot failed: %u\n", rc);
            break;
        }
        printf("message (%u bytes): %.*s", returned, (int)returned, buf);
        if (next_size != 0)
            printf("   [next: %u bytes, priority %u]", next_size, next_priority);
        printf("\n");
        fflush(stdout);
    }
    DosDeleteMailslot(h);
    return rc == NERR_Success ? 0 : 1;
}
