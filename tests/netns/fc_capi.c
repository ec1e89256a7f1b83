/* First-class DosWriteMailslot to another host through the C API, for tests/netns/run.sh (run
 * in the namespace of HOSTA, whose daemon carries the writes):
 *
 *   fc_capi HOST WORKGROUP TEXT
 *
 * writes TEXT class 1 to \\HOST\mailslot\nosuch (a slot that does not exist there: 2), to
 * \\WORKGROUP\mailslot\fc and \\*\mailslot\fc (group names: 87 at once) and to
 * \\HOST\mailslot\fc (a listener there: 0), and prints "missing N group N star N delivered N". */
#include <mailslot.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    char name[300];
    unsigned short n;
    unsigned missing, group, star, delivered;

    if (argc != 4 || strlen(argv[1]) > 200 || strlen(argv[2]) > 200 || strlen(argv[3]) > 1000) {
        fprintf(stderr, "usage: fc_capi HOST WORKGROUP TEXT\n");
        return 2;
    }
    n = (unsigned short)strlen(argv[3]);
    snprintf(name, sizeof name, "\\\\%s\\mailslot\\nosuch", argv[1]);
    missing = DosWriteMailslot(name, argv[3], n, 0, 1, 2000);
    snprintf(name, sizeof name, "\\\\%s\\mailslot\\fc", argv[2]);
    group = DosWriteMailslot(name, argv[3], n, 0, 1, 2000);
    star = DosWriteMailslot("\\\\*\\mailslot\\fc", argv[3], n, 0, 1, 2000);
    snprintf(name, sizeof name, "\\\\%s\\mailslot\\fc", argv[1]);
    delivered = DosWriteMailslot(name, argv[3], n, 0, 1, 5000);
    printf("missing %u group %u star %u delivered %u\n", missing, group, star, delivered);
    return 0;
}
