/* listener.c — the libevent evconnlistener adapter. */
#include "net/listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/listener.h>

#include "net/internal.h"
#include "net/sockaddr.h"

struct net_listener {
    struct evconnlistener *ev;
    struct event *resume; /* accepting paused after an accept error */
    net_accept_fn fn;
    void *ctx;
    struct addr bound;
    char *path; /* Unix listeners: the socket file to remove */
};

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int sl,
                      void *arg)
{
    struct net_listener *ln = arg;
    (void)ev;
    (void)sa;
    (void)sl;
    ln->fn(ln->ctx, fd);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct net_listener *ln = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(ln->ev);
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS...). The pending connection is
 * still there, so the socket stays readable: pause for a moment rather
 * than spin on it. */
static void on_accept_error(struct evconnlistener *ev, void *arg)
{
    struct net_listener *ln = arg;
    struct timeval tv = {0, 100 * 1000};
    (void)ev;
    evconnlistener_disable(ln->ev);
    evtimer_add(ln->resume, &tv);
}

static int listen_fd(struct net_loop *l, struct net_listener *ln, int fd)
{
    ln->resume = evtimer_new(l->base, on_resume, ln);
    if (!ln->resume) {
        close(fd);
        return -ENOMEM;
    }
    ln->ev = evconnlistener_new(l->base, on_accept, ln,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 512, fd);
    if (!ln->ev) {
        close(fd);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(ln->ev, on_accept_error);
    return 0;
}

int net_listener_new_tcp(struct net_loop *l, const struct addr *a, net_accept_fn fn, void *ctx,
                         struct net_listener **out)
{
    struct net_listener *ln = calloc(1, sizeof(*ln));
    int fd, rc;

    if (!ln)
        return -ENOMEM;
    ln->fn = fn;
    ln->ctx = ctx;
    fd = net_tcp_listen_socket(a, &ln->bound);
    if (fd < 0) {
        free(ln);
        return fd;
    }
    rc = listen_fd(l, ln, fd);
    if (rc) {
        net_listener_free(ln);
        return rc;
    }
    *out = ln;
    return 0;
}

int net_listener_new_unix(struct net_loop *l, const char *path, net_accept_fn fn, void *ctx,
                          struct net_listener **out)
{
    struct sockaddr_un sun;
    struct net_listener *ln;
    int fd, rc;

    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    ln = calloc(1, sizeof(*ln));
    if (!ln)
        return -ENOMEM;
    ln->fn = fn;
    ln->ctx = ctx;
    ln->path = strdup(path);
    if (!ln->path) {
        rc = -ENOMEM;
        goto err_free;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto err_free;
    }
    /* The caller holds the data directory's lock, so a socket file left
     * here belongs to a node that is gone. */
    unlink(path);
    mode_t old = umask(0177);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        goto err_free;
    }
    rc = listen_fd(l, ln, fd);
    if (rc) {
        unlink(path);
        goto err_free;
    }
    *out = ln;
    return 0;
err_free:
    free(ln->path);
    free(ln);
    return rc;
}

void net_listener_free(struct net_listener *ln)
{
    if (!ln)
        return;
    if (ln->ev)
        evconnlistener_free(ln->ev);
    if (ln->resume)
        event_free(ln->resume);
    if (ln->path) {
        unlink(ln->path);
        free(ln->path);
    }
    free(ln);
}

const struct addr *net_listener_addr(const struct net_listener *ln)
{
    return &ln->bound;
}
