/* fork while other threads are inside library calls: the child must not inherit a locked
 * handle table (pthread_atfork); each child opens a writer, writes, and exits within 5 s. */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define CHILDREN 20

static volatile int g_stop;
static HANDLE g_owner;

static void *busy(void *arg)
{
    (void)arg;
    while (!g_stop) {
        DWORD count;
        GetMailslotInfo(g_owner, NULL, NULL, &count, NULL);
        MailslotClose((HANDLE)(long)60000); /* fails: exercises the table lock */
    }
    return NULL;
}

int main(void)
{
    char name[128], buf[64];
    pthread_t th[2];
    int i, ok_children = 0;
    DWORD n, count = 0;

    slot_name(name, sizeof name, "forkthr");
    g_owner = CreateMailslotA(name, 0, 0, NULL);
    CHECK(g_owner != INVALID_HANDLE_VALUE);
    for (i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, busy, NULL) == 0);
    for (i = 0; i < CHILDREN; i++) {
        int status;
        pid_t pid = fork();
        if (pid == 0) {
            HANDLE w;
            DWORD k;
            alarm(5); /* a deadlock kills the child */
            w = MailslotOpenA(name);
            if (w == INVALID_HANDLE_VALUE || !MailslotWrite(w, "c", 1, &k))
                _exit(1);
            MailslotClose(w);
            _exit(0);
        }
        CHECK(pid > 0);
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            ok_children++;
    }
    g_stop = 1;
    for (i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(ok_children == CHILDREN);
    CHECK_OK(GetMailslotInfo(g_owner, NULL, NULL, &count, NULL));
    CHECK(count == CHILDREN);
    while (MailslotRead(g_owner, buf, sizeof buf, &n))
        ;
    CHECK(GetLastError() == ERROR_SEM_TIMEOUT);
    CHECK_OK(MailslotClose(g_owner));
    return finish("t_fork_threads");
}
