/*
 * mailslot.h - Windows NT / LAN Manager mailslots for Linux (libmailslot).
 *
 * Build:   cc prog.c $(pkg-config --cflags --libs mailslot)
 * Static:  cc prog.c $(pkg-config --static --cflags --libs mailslot)   (with only libmailslot.a
 *          installed, or pass the .a path directly)
 *
 * A process CREATES a mailslot by name and reads from it; any number of processes WRITE
 * messages to it by name. Each write is one message; a read returns one whole message. The
 * mailslot and its queue disappear when the owner's handle is closed or its process exits,
 * unless the handle was shared with other processes (inherited or passed, see "Sharing the
 * owner handle" below): then every holder may read (each message is read once) and the
 * mailslot, its name and its queued messages live until the last holder closes it or exits.
 *
 * Names: "\\\\.\\mailslot\\path" (Win32; C string "\\\\.\\mailslot\\x"), "\\mailslot\\path"
 * (LAN Manager), "//./mailslot/path" or "/mailslot/path" (LAN Manager for UNIX). All forms are
 * equivalent and case-insensitive; the path may have several levels and is at most 95 bytes.
 *
 * Two families of calls:
 *  - LAN Manager (Dos*Mailslot): return 0 (NERR_Success) or an error number; unsigned short
 *    handles; priorities 0-9 (9 read first, FIFO within a priority); classes 1 and 2.
 *  - Win32 style: BOOL or HANDLE results; on failure the error number is available from
 *    GetLastError() (per thread). Successful calls leave the last error unchanged.
 * Where Windows and LAN Manager disagree, each family follows its own system.
 *
 * Pointers: a NULL where the description says "may be NULL" is accepted; any other NULL gives
 * ERROR_INVALID_PARAMETER (87). Other invalid pointers cannot be detected.
 *
 * Threads: handles belong to the process and may be used from any thread, concurrently.
 * Closing a handle while another thread is blocked reading it makes that read fail within about
 * 100 ms (995 for MailslotRead, 6 for DosReadMailslot).
 *
 * fork(): owner handles created INHERITABLE (CreateMailslot with bInheritHandle TRUE) work in
 * the child: its first call with the handle takes it up, and parent and child then share the
 * mailslot as below. Other owner handles (not inheritable, DosMakeMailslot, received ones) must
 * NOT be used by the child: in the child they fail with ERROR_INVALID_HANDLE, and closing one
 * there only forgets it (the parent's mailslot is untouched). Writers are fine in a child: open
 * a fresh handle with MailslotOpenA or use DosWriteMailslot.
 *
 * Sharing the owner handle (as on Windows):
 *  - Inheritance across exec: an inheritable handle's VALUE is the number of a descriptor
 *    without close-on-exec, so a program started with fork + exec uses the value it is given
 *    (on its command line, say) as is; its first call with it takes the mailslot up. Handles
 *    that are not inheritable are not inherited (their descriptors are close-on-exec): in an
 *    exec'd child their values give ERROR_INVALID_HANDLE.
 *
 *        parent:  SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
 *                 HANDLE h = CreateMailslotA("\\.\mailslot\jobs", 0, 5000, &sa);
 *                 char arg[32];
 *                 snprintf(arg, sizeof arg, "%lu", (unsigned long)(size_t)h);
 *                 if (fork() == 0) { execl("./worker", "worker", arg, (char *)NULL); _exit(127); }
 *                 MailslotClose(h);   (optional: the child keeps the mailslot alive)
 *        worker:  HANDLE h = (HANDLE)(size_t)strtoul(argv[1], NULL, 10);
 *                 MailslotRead(h, buf, sizeof buf, &n);
 *
 *  - Passing (DuplicateHandle): MailslotSendHandle(h, sock) sends an owner handle over a
 *    connected Unix socket; the peer gets its own handle from MailslotReceiveHandle(sock).
 *  - Closing a shared handle (MailslotClose, or the process exiting, even killed) only lets go
 *    of that holder. When the last holder has gone, the name is free at once and writers that
 *    are already open get ERROR_BROKEN_PIPE at their next write (when the last holder was
 *    killed, within about a millisecond, as for an unshared mailslot whose owner is killed).
 *    DosDeleteMailslot deletes the mailslot for every holder at once: queued
 *    messages are discarded, writers get ERROR_BROKEN_PIPE, the other holders' reads fail with
 *    ERROR_INVALID_HANDLE (6).
 */
#ifndef MAILSLOT_H
#define MAILSLOT_H

#include <stddef.h>
#include <wchar.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Error numbers (Windows / LAN Manager values) ---------------------------------------- */
#define NERR_Success               0u   /* no error */
#define ERROR_SUCCESS              0u   /* no error */
#define ERROR_FILE_NOT_FOUND       2u   /* no mailslot of that name */
#define ERROR_PATH_NOT_FOUND       3u   /* NULL name (Win32); bad name (LAN Manager) */
#define ERROR_ACCESS_DENIED        5u   /* owner handle written to; refused by access policy;
                                           name policy: owner not allowed to serve the name,
                                           or create by a user not allowed to serve it */
#define ERROR_INVALID_HANDLE       6u   /* not an open handle of the right kind */
#define ERROR_NOT_ENOUGH_MEMORY    8u   /* out of resources, or the mailslot is full */
#define ERROR_GEN_FAILURE         31u   /* unexpected internal failure */
#define ERROR_NOT_SUPPORTED       50u   /* not supported */
#define ERROR_BAD_NETPATH         53u   /* remote name cannot be reached */
#define ERROR_INVALID_PARAMETER   87u   /* bad argument; a writer's handle read from */
#define ERROR_BROKEN_PIPE        109u   /* the mailslot's owner has gone */
#define ERROR_SEM_TIMEOUT        121u   /* timed out (empty mailslot, or no room for class 1) */
#define ERROR_INSUFFICIENT_BUFFER 122u  /* buffer smaller than the next message (it stays) */
#define ERROR_INVALID_NAME       123u   /* not a mailslot name (Win32) */
#define ERROR_ALREADY_EXISTS     183u   /* a mailslot of that name exists */
#define ERROR_OPERATION_ABORTED  995u   /* handle closed by another thread during a read */
#define ERROR_BAD_CONFIGURATION 1610u   /* the name policy file is broken (Win32; LAN Manager: 31) */
#define NERR_NetNotStarted      2102u   /* network part not running */

/* =========================================================================================
 * LAN Manager API
 * ========================================================================================= */

/* Timeout value meaning "wait forever" for DosReadMailslot / DosWriteMailslot. */
#define MAILSLOT_NO_TIMEOUT (-1L)

/* Creates mailslot `name` (e.g. "\\mailslot\\app") and stores its handle in *hmailslot.
 * message_size: largest message (0 = 65535, or mailslot_size if smaller).
 * mailslot_size: total bytes of queued messages allowed (0 = library default, 1 MiB); a
 * first-class writer waits for room in it. Must be >= message_size.
 * Returns 0, 3 (NULL/bad name), 87 (NULL hmailslot, mailslot_size < message_size),
 * 183 (name exists), 8 (out of handles). */
unsigned DosMakeMailslot(const char *name, unsigned short message_size,
                         unsigned short mailslot_size, unsigned short *hmailslot);

/* Writes one message of `size` bytes to mailslot `name` (buf may be NULL when size is 0).
 * priority 0-9. mailslot_class 1: if the mailslot is full, wait up to timeout_ms for room
 * (MAILSLOT_NO_TIMEOUT = forever), then 121; class 2: fail at once with 8 when full.
 * Returns 0, 3 (NULL/bad name), 2 (no such mailslot), 87 (bad argument, message too large),
 * 121, 8, 109 (owner gone), 53 (remote name), 5 (access denied). */
unsigned DosWriteMailslot(const char *name, const void *buf, unsigned short size,
                          unsigned short priority, unsigned short mailslot_class,
                          long timeout_ms);

/* Reads and removes the next message (highest priority first) into buf, which must hold the
 * mailslot's message_size. Waits up to timeout_ms (0 = poll, MAILSLOT_NO_TIMEOUT = forever).
 * *returned = message size; *next_size / *next_priority = the message now at the head
 * (0 and 0 when empty). No pointer may be NULL.
 * Returns 0, 6 (not an owner handle), 87 (NULL pointer), 121 (timeout, *returned = 0). */
unsigned DosReadMailslot(unsigned short hmailslot, void *buf, unsigned short *returned,
                         unsigned short *next_size, unsigned short *next_priority,
                         long timeout_ms);

/* Copies the next message into buf without removing it; never waits. Empty mailslot:
 * returns 0 with *returned = 0 and *next_size = 0. Otherwise *next_size / *next_priority
 * describe the head message (the one peeked, since it stays). No pointer may be NULL.
 * Returns 0, 6, 87. */
unsigned DosPeekMailslot(unsigned short hmailslot, void *buf, unsigned short *returned,
                         unsigned short *next_size, unsigned short *next_priority);

/* Limits and state: message size, mailslot size (clamped to 65535), head message size and
 * priority (0 and 0 when empty), number of queued messages. No pointer may be NULL.
 * Returns 0, 6, 87. */
unsigned DosMailslotInfo(unsigned short hmailslot, unsigned short *message_size,
                         unsigned short *mailslot_size, unsigned short *next_size,
                         unsigned short *next_priority, unsigned short *message_count);

/* Deletes the mailslot (queued messages are discarded, the name is free) and closes the
 * handle. Also works on a Win32 owner handle. When the handle is shared with other processes
 * (inherited or passed), the mailslot is deleted for all of them: their reads fail with 6,
 * writers get 109. Returns 0 or 6. */
unsigned DosDeleteMailslot(unsigned short hmailslot);

/* =========================================================================================
 * Win32 style API
 * ========================================================================================= */

typedef unsigned int DWORD;
typedef int BOOL;
typedef void *HANDLE;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* Only bInheritHandle is used: TRUE makes CreateMailslot's handle inheritable (see "Sharing
 * the owner handle" at the top). lpSecurityDescriptor is ignored; nLength is not checked. */
typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    void *lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

#define INVALID_HANDLE_VALUE  ((HANDLE)(long)-1)
#define MAILSLOT_WAIT_FOREVER ((DWORD)-1)
#define MAILSLOT_NO_MESSAGE   ((DWORD)-1)

/* Creates mailslot `name` ("\\\\.\\mailslot\\path") and returns its owner handle, which can
 * only read. max_message_size: 0 = any size (up to 64 KiB); any value is read back unchanged
 * by GetMailslotInfo (e.g. -1). read_timeout in ms for MailslotRead (0 = never wait,
 * MAILSLOT_WAIT_FOREVER). security_attributes may be NULL (not inheritable); its
 * bInheritHandle TRUE makes the handle inheritable by children (fork, fork + exec); its
 * security descriptor is ignored (only the owner's user and root may write).
 * Failure: INVALID_HANDLE_VALUE; GetLastError 3 (NULL name), 123 (not a local mailslot
 * name), 183 (name exists), 8 (out of handles or descriptors). */
HANDLE CreateMailslotA(const char *name, DWORD max_message_size, DWORD read_timeout,
                       const SECURITY_ATTRIBUTES *security_attributes);
/* CreateMailslotA with a wchar_t name. */
HANDLE CreateMailslotW(const wchar_t *name, DWORD max_message_size, DWORD read_timeout,
                       const SECURITY_ATTRIBUTES *security_attributes);

/* Opens existing mailslot `name` for writing, like CreateFile(name, GENERIC_WRITE,
 * FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL). The handle can only write.
 * Failure: INVALID_HANDLE_VALUE; GetLastError 3 (NULL name), 2 (no such mailslot),
 * 123 (not a mailslot name), 5 (access denied), 53 (remote name). */
HANDLE MailslotOpenA(const char *name);
/* MailslotOpenA with a wchar_t name. */
HANDLE MailslotOpenW(const wchar_t *name);

/* Writes one message of len bytes (0 allowed; buf may be NULL when len is 0), like WriteFile.
 * Never waits. Sets *written = len on success, 0 on failure.
 * Failure: FALSE; GetLastError 6 (bad handle), 5 (owner handle), 87 (NULL written or buf,
 * message larger than the maximum), 8 (mailslot full), 109 (owner closed the mailslot). */
BOOL MailslotWrite(HANDLE h, const void *buf, DWORD len, DWORD *written);

/* Reads and removes the next message (owner handle), like ReadFile; waits up to the read
 * timeout. *read = message size (0 for an empty message); 0 on failure.
 * Failure: FALSE; GetLastError 6 (bad handle, or the mailslot was deleted by another holder
 * of a shared handle), 87 (writer handle, NULL read or buf),
 * 121 (no message in time, also with timeout 0), 122 (len smaller than the next message,
 * which stays queued), 995 (closed by another thread). */
BOOL MailslotRead(HANDLE h, void *buf, DWORD len, DWORD *read);

/* Owner handle state; any pointer may be NULL. max_message_size as given at create;
 * next_size = head size or MAILSLOT_NO_MESSAGE when empty; message_count; read_timeout in ms.
 * Failure: FALSE; GetLastError 6 (bad handle), 87 (writer handle). */
BOOL GetMailslotInfo(HANDLE h, DWORD *max_message_size, DWORD *next_size,
                     DWORD *message_count, DWORD *read_timeout);

/* Sets an owner handle's read timeout (ms, MAILSLOT_WAIT_FOREVER).
 * Failure: FALSE; GetLastError 6 (bad handle or writer handle). */
BOOL SetMailslotInfo(HANDLE h, DWORD read_timeout);

/* Closes a handle, like CloseHandle. Closing the owner handle deletes the mailslot and its
 * queue; writers then get 109 and the name can be created again. When the handle is shared
 * (inherited or passed), closing it only lets go of this holder: the mailslot and its queue
 * live until the last holder closes (DosDeleteMailslot deletes it for all at once).
 * Failure: FALSE; GetLastError 6. */
BOOL MailslotClose(HANDLE h);

/* Passes owner handle h to the process at the other end of the connected Unix socket
 * unix_socket (SCM_RIGHTS), like DuplicateHandle into that process; the peer gets its own
 * handle with MailslotReceiveHandle. Both then hold the mailslot (see "Sharing the owner
 * handle" at the top). Blocks while the socket is full; h stays open here.
 * Failure: FALSE; GetLastError 6 (bad handle, writer handle, or mailslot deleted), 87
 * (unix_socket is not an open socket), 109 (peer closed the socket), 8 (out of resources). */
BOOL MailslotSendHandle(HANDLE h, int unix_socket);

/* Waits for an owner handle sent with MailslotSendHandle on the Unix socket unix_socket and
 * returns a new (not inheritable) owner handle for it in this process. GetMailslotInfo then
 * reports the mailslot's own maximum message size.
 * Failure: INVALID_HANDLE_VALUE; GetLastError 6 (the descriptor that arrived is not a mailslot
 * handle, nothing arrived because the peer closed the socket, or the mailslot was deleted),
 * 87 (unix_socket is not an open socket), 8 (out of handles or descriptors). */
HANDLE MailslotReceiveHandle(int unix_socket);

/* Extra: a descriptor that polls readable (POLLIN) when a message may be ready on an owner
 * handle; then call MailslotRead with a zero timeout and treat 121 as "wait again". Owned by
 * the handle (do not close it). On a handle shared with other processes (inherited or passed),
 * the library also looks at the mailslot every 500 ms from then on and makes the descriptor
 * readable when a message is queued (another holder killed in a read may have told writers
 * not to wake anyone). Returns -1 with GetLastError 6 (bad handle) or 87 (writer). */
int MailslotGetPollFd(HANDLE h);

/* This thread's last error, set by failing Win32 style calls. */
DWORD GetLastError(void);
/* Sets this thread's last error. */
void SetLastError(DWORD code);

#ifdef __cplusplus
}
#endif

#endif /* MAILSLOT_H */
