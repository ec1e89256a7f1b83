/* Win32 names and create/open errors: NULL, not a mailslot name, duplicate, missing, remote,
 * case-insensitivity, name reuse after the owner closes. */
#include "common.h"

int main(void)
{
    char name[128], upper[128];
    HANDLE h, h2, w;
    size_t i;

    CHECK_BAD_HANDLE(CreateMailslotA(NULL, 0, 0, NULL), ERROR_PATH_NOT_FOUND);
    CHECK_BAD_HANDLE(CreateMailslotA("blah", 0, 0, NULL), ERROR_INVALID_NAME);
    CHECK_BAD_HANDLE(CreateMailslotA("\\\\.\\pipe\\x", 0, 0, NULL), ERROR_INVALID_NAME);
    CHECK_BAD_HANDLE(CreateMailslotA("\\\\.\\mailslot\\", 0, 0, NULL), ERROR_INVALID_NAME);
    CHECK_BAD_HANDLE(CreateMailslotA("\\\\server\\mailslot\\x", 0, 0, NULL), ERROR_INVALID_NAME);
    CHECK_BAD_HANDLE(CreateMailslotA("\xff\xfe", 0, 0, NULL), ERROR_INVALID_NAME);

    slot_name(name, sizeof name, "names");
    h = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE && h != NULL);

    /* Duplicate, also with another case and the LAN Manager form. */
    CHECK_BAD_HANDLE(CreateMailslotA(name, 0, 0, NULL), ERROR_ALREADY_EXISTS);
    strcpy(upper, name);
    for (i = 0; upper[i]; i++)
        if (upper[i] >= 'a' && upper[i] <= 'z')
            upper[i] = (char)(upper[i] - 'a' + 'A');
    CHECK_BAD_HANDLE(CreateMailslotA(upper, 0, 0, NULL), ERROR_ALREADY_EXISTS);
    CHECK_BAD_HANDLE(CreateMailslotA(name + 3, 0, 0, NULL), ERROR_ALREADY_EXISTS); /* \mailslot\.. */

    /* Open: upper-case name reaches the same slot. */
    w = MailslotOpenA(upper);
    CHECK(w != INVALID_HANDLE_VALUE && w != NULL);
    CHECK_OK(MailslotClose(w));

    /* Open errors. */
    CHECK_BAD_HANDLE(MailslotOpenA(NULL), ERROR_PATH_NOT_FOUND);
    CHECK_BAD_HANDLE(MailslotOpenA("blah"), ERROR_INVALID_NAME);
    CHECK_BAD_HANDLE(MailslotOpenA("\\\\.\\mailslot\\ctest\\no\\such\\slot"), ERROR_FILE_NOT_FOUND);
    CHECK_BAD_HANDLE(MailslotOpenA("\\\\NOSUCHHOST\\mailslot\\x"), ERROR_BAD_NETPATH);

    /* Close frees the name: open now fails with 2, create succeeds again. */
    CHECK_OK(MailslotClose(h));
    CHECK_BAD_HANDLE(MailslotOpenA(name), ERROR_FILE_NOT_FOUND);
    h2 = CreateMailslotA(name, 0, 0, NULL);
    CHECK(h2 != INVALID_HANDLE_VALUE);
    CHECK(h2 != h); /* handle numbers are not reused at once */
    CHECK_OK(MailslotClose(h2));

    /* Repeat create/close a few times on one name. */
    for (i = 0; i < 5; i++) {
        h = CreateMailslotA(name, 0, 0, NULL);
        CHECK(h != INVALID_HANDLE_VALUE);
        CHECK_OK(MailslotClose(h));
    }
    return finish("t_win32_names");
}
