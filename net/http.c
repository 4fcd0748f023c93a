/* http.c — the libevent evhttp adapter. */
#include "net/http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "net/internal.h"
#include "net/sockaddr.h"

struct net_http {
    struct evhttp *http;
    net_http_handler fn;
    void *ctx;
    struct addr bound;
};

static void on_request(struct evhttp_request *req, void *arg)
{
    struct net_http *h = arg;
    struct buf body = BUF_INIT;
    const char *ctype = "text/plain; charset=utf-8";
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct evbuffer *out;
    int code;

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "only GET and HEAD");
        return;
    }
    code = h->fn(h->ctx, path && *path ? path : "/", &body, &ctype);
    if (body.failed) {
        buf_release(&body);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    out = evbuffer_new();
    if (!out) {
        buf_release(&body);
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(out, body.data ? body.data : "", body.len);
    buf_release(&body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, code, code == 200 ? "OK" : code == 404 ? "Not Found" : "Error", out);
    evbuffer_free(out);
}

int net_http_new(struct net_loop *l, const struct addr *a, net_http_handler fn, void *ctx,
                 struct net_http **out)
{
    struct net_http *h = calloc(1, sizeof(*h));
    int fd;

    if (!h)
        return -ENOMEM;
    h->fn = fn;
    h->ctx = ctx;
    h->http = evhttp_new(l->base);
    if (!h->http) {
        net_http_free(h);
        return -ENOMEM;
    }
    /* Bounds on what a client may make us hold. */
    evhttp_set_max_headers_size(h->http, 8192);
    evhttp_set_max_body_size(h->http, 0);
    evhttp_set_timeout(h->http, 10);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, on_request, h);
    fd = net_tcp_listen_socket(a, &h->bound);
    if (fd < 0) {
        net_http_free(h);
        return fd;
    }
    /* evhttp owns the socket from here and closes it when freed. */
    if (!evhttp_accept_socket_with_handle(h->http, fd)) {
        close(fd);
        net_http_free(h);
        return -ENOMEM;
    }
    *out = h;
    return 0;
}

void net_http_free(struct net_http *h)
{
    if (!h)
        return;
    if (h->http)
        evhttp_free(h->http);
    free(h);
}

const struct addr *net_http_addr(const struct net_http *h)
{
    return &h->bound;
}
