/* Through the mount with plain system calls: create a mailslot with open(O_RDWR|O_CREAT), write
 * messages at three priorities through NAME:P, read them back with read(2) in priority order;
 * a buffer too small fails with EMSGSIZE and the message stays; O_NONBLOCK gives EAGAIN when
 * empty; poll reports readability when a child process writes; the mailslot lives while a
 * forked child still holds the descriptor and goes with the last close.
 * Usage: prio_poll MOUNTDIR   (exit 0 = all checks passed) */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "prio_poll: " __VA_ARGS__); fprintf(stderr, "\n"); exit(1); } while (0)

static void put(const char *path, const char *msg) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) FAIL("open %s for writing: %s", path, strerror(errno));
    ssize_t n = write(fd, msg, strlen(msg));
    if (n != (ssize_t)strlen(msg)) FAIL("write %s: %s", path, strerror(errno));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2) FAIL("usage: prio_poll MOUNTDIR");
    char path[512], p1[600], p5[600], p9[600];
    snprintf(path, sizeof path, "%s/prio-%d", argv[1], (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) FAIL("create %s: %s", path, strerror(errno));
    snprintf(p1, sizeof p1, "%s:1", path);
    snprintf(p5, sizeof p5, "%s:5", path);
    snprintf(p9, sizeof p9, "%s:9", path);
    put(p1, "one");
    put(p9, "nine");
    put(p5, "five");
    put(path, "zero");

    /* A second open for reading of an existing slot is refused. */
    if (open(path, O_RDONLY) >= 0 || errno != EACCES) FAIL("second reader not refused with EACCES");

    /* stat: size = next message's size. */
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size != 4) FAIL("st_size %lld, want 4 (\"nine\")", (long long)st.st_size);

    char buf[100];
    /* Too small: EMSGSIZE, the message stays. */
    if (read(fd, buf, 2) != -1 || errno != EMSGSIZE) FAIL("small buffer: want EMSGSIZE, got %s", strerror(errno));
    const char *want[] = {"nine", "five", "one", "zero"};
    for (int i = 0; i < 4; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) FAIL("read %d: %s", i, strerror(errno));
        if ((size_t)n != strlen(want[i]) || memcmp(buf, want[i], n) != 0)
            FAIL("read %d: got %.*s, want %s", i, (int)n, buf, want[i]);
    }
    /* Empty and O_NONBLOCK: EAGAIN. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (read(fd, buf, sizeof buf) != -1 || errno != EAGAIN) FAIL("empty nonblocking read: want EAGAIN, got %s", strerror(errno));

    /* poll: not readable while empty; readable once a child writes. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, 0);
    if (r != 0) FAIL("poll on an empty mailslot returned %d (revents %x)", r, pfd.revents);
    pid_t child = fork();
    if (child == 0) {
        usleep(200 * 1000);
        put(path, "later");
        _exit(0);
    }
    r = poll(&pfd, 1, 5000);
    if (r != 1 || !(pfd.revents & POLLIN)) FAIL("poll did not report readability (r=%d revents=%x)", r, pfd.revents);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n != 5 || memcmp(buf, "later", 5) != 0) FAIL("after poll: read %zd", n);
    waitpid(child, NULL, 0);

    /* The slot lives while a child holds the descriptor, and goes with the last close. */
    int pipefd[2];
    if (pipe(pipefd) != 0) FAIL("pipe");
    child = fork();
    if (child == 0) {
        close(pipefd[1]);
        char c;
        (void)read(pipefd[0], &c, 1); /* wait for the parent to close its copy */
        n = read(fd, buf, sizeof buf); /* nonblocking: the message written by the parent */
        _exit(n == 4 && memcmp(buf, "kept", 4) == 0 ? 0 : 3);
    }
    close(pipefd[0]);
    close(fd);
    put(path, "kept"); /* still there: the child holds it */
    (void)write(pipefd[1], "x", 1);
    int status;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) FAIL("child holding the descriptor could not read (status %x)", status);
    usleep(100 * 1000);
    if (open(path, O_WRONLY) >= 0 || errno != ENOENT) FAIL("slot still there after the last close (%s)", strerror(errno));
    printf("prio_poll: ok\n");
    return 0;
}
