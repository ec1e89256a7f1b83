/* CreateMailslotW / MailslotOpenW with wchar_t names (and NULL -> 3). */
#include "common.h"

int main(void)
{
    wchar_t wname[128];
    char name[128];
    HANDLE h, w;
    DWORD n;
    size_t i;

    slot_name(name, sizeof name, "wide");
    for (i = 0; name[i]; i++)
        wname[i] = (wchar_t)(unsigned char)name[i];
    wname[i] = 0;

    CHECK_BAD_HANDLE(CreateMailslotW(NULL, 0, 0, NULL), ERROR_PATH_NOT_FOUND);
    CHECK_BAD_HANDLE(MailslotOpenW(NULL), ERROR_PATH_NOT_FOUND);
    CHECK_BAD_HANDLE(CreateMailslotW(L"blah", 0, 0, NULL), ERROR_INVALID_NAME);
    h = CreateMailslotW(wname, 0, 0, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    CHECK_BAD_HANDLE(CreateMailslotA(name, 0, 0, NULL), ERROR_ALREADY_EXISTS);
    w = MailslotOpenW(wname);
    CHECK(w != INVALID_HANDLE_VALUE);
    CHECK_OK(MailslotWrite(w, "wide", 4, &n));
    CHECK_OK(MailslotRead(h, name, sizeof name, &n));
    CHECK(n == 4 && memcmp(name, "wide", 4) == 0);
    CHECK_OK(MailslotClose(w));
    CHECK_OK(MailslotClose(h));
    return finish("t_wide");
}
