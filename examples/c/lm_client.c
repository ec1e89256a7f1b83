/* LAN Manager style mailslot client: sends one message.
 *
 *   lm_client NAME TEXT [PRIORITY [CLASS [TIMEOUT_MS]]]
 *
 * PRIORITY 0-9 (default 0), CLASS 1 (wait for room up to TIMEOUT_MS, -1 = forever) or 2 (default,
 * fail at once when the mailslot is full). Exit status 0 on success, else the error number. */
#include <mailslot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    unsigned short priority = 0, cls = 2;
    long timeout = 1000;
    size_t len;
    unsigned rc;

    if (argc < 3) {
        fprintf(stderr, "usage: %s NAME TEXT [PRIORITY [CLASS [TIMEOUT_MS]]]\n", argv[0]);
        return 2;
    }
    if (argc > 3)
        priority = (unsigned short)atoi(argv[3]);
    if (argc > 4)
        cls = (unsigned short)atoi(argv[4]);
    if (argc > 5)
        timeout = atol(argv[5]);
    len = strlen(argv[2]);
    if (len > 65535)
        len = 65535;
    rc = DosWriteMailslot(argv[1], argv[2], (unsigned short)len, priority, cls, timeout);
    if (rc != NERR_Success) {
        fprintf(stderr, "DosWriteMailslot(%s) failed: %u\n", argv[1], rc);
        return (int)(rc & 0xFF) ? (int)(rc & 0xFF) : 1;
    }
    return 0;
}
