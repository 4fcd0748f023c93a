/* harness.h — what the unit tests of net/ share: running a real loop until
 * something has happened, frames built by hand, and raw sockets on
 * loopback to play the other end.
 *
 * Real sockets and a real clock, so nothing here fakes time; but time never
 * decides a test. nt_run_until() runs the loop until a condition holds and
 * fails the test only if NT_GUARD_MS pass first, which bounds a test that
 * would otherwise hang; a correct net/ meets every condition long before.
 *
 * Every test main() ignores SIGPIPE, as a node does (net/node.c): a stream
 * writing to a peer that has gone must see EPIPE, not kill the process.
 */
#ifndef COOPFS_TESTS_UNIT_NET_HARNESS_H
#define COOPFS_TESTS_UNIT_NET_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/frame.h"
#include "common/id.h"
#include "net/loop.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Longest any one wait may take before the test fails. */
#define NT_GUARD_MS 10000u

/* Runs l until cond(ctx) is true (checked before running, then every
 * millisecond). Fails the test, naming the condition, if NT_GUARD_MS pass
 * first. */
#define nt_run_until(l, cond, ctx) nt_run_until_((l), (cond), (ctx), #cond, __FILE__, __LINE__)
void nt_run_until_(struct net_loop *l, bool (*cond)(void *ctx), void *ctx, const char *what,
                   const char *file, int line);
/* Runs l for about ms milliseconds, whatever happens (so that something
 * that must not happen would have had its chance). */
void nt_run_for(struct net_loop *l, uint64_t ms);

/* Builds one frame (header then payload) into buf, which must hold
 * FRAME_HEADER_SIZE + len bytes. Returns the frame's length. */
size_t nt_frame(uint8_t *buf, uint16_t type, uint8_t flags, uint64_t id, const void *payload,
                uint32_t len);
/* Like nt_frame, with a payload that is a function of (seed, index), so
 * that a receiver can check it with nt_frame_check. */
size_t nt_frame_seq(uint8_t *buf, uint32_t seed, uint32_t len);
/* Checks that frame (len bytes, header h) is the one nt_frame_seq built
 * from seed; fails the test otherwise. */
void nt_frame_check(uint32_t seed, const struct frame_header *h, const uint8_t *frame, size_t len);
/* Payload length nt_frame_seq tests use for seed (0..299, some zero). */
uint32_t nt_seq_len(uint32_t seed);

/* A connected AF_UNIX stream pair, both ends blocking. */
void nt_socketpair(int fds[2]);
/* Writes all of buf (MSG_NOSIGNAL); fails the test on error. */
void nt_send_all(int fd, const void *buf, size_t len);
/* Non-blocking look at fd: true once the peer has closed (read gives 0 or
 * ECONNRESET). Reads and discards any data before that. */
bool nt_fd_at_eof(int fd);
/* nt_fd_at_eof(*(int *)fdp), shaped for nt_run_until. */
bool nt_fd_eof_cond(void *fdp);

/* A TCP socket bound to ip (port 0) that does not listen: connects to its
 * address are refused, and no one else gets the port while it is open.
 * Returns the fd and sets *out to the bound address. */
int nt_tcp_closed_port(const char *ip, struct addr *out);
/* A non-blocking TCP socket listening on ip (port 0), which the test
 * accepts from (or not) by hand. Returns the fd; *out is its address. */
int nt_tcp_listen(const char *ip, struct addr *out);
/* A blocking TCP connection from local address from_ip (port 0) to `to`.
 * Returns the fd. */
int nt_tcp_dial(const char *from_ip, const struct addr *to);
/* Builds ip:port (ip a dotted quad) into *out. */
void nt_addr(const char *ip, uint16_t port, struct addr *out);

/* Fills id with a pattern of seed (distinct seeds, distinct ids). */
void nt_id_pattern(struct id *id, uint8_t seed);

/* Ignores SIGPIPE; call first in main(). */
void nt_init(void);

#endif
