/* gen_chord_msg_corpus.c — writes the seed corpus of fuzz_chord_msg.
 *
 *   gen_chord_msg_corpus DIR
 *
 * writes a few valid frames of every chord message type into DIR, one file
 * each, named after the type and the variant. The files are committed in
 * tests/fuzz/corpus/chord_msg/; run this again (and commit the result)
 * when the wire format changes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chord/msg.h"

static uint8_t frame[FRAME_HEADER_SIZE + 4096];
static const uint8_t payload[] = "an application payload";

static struct id mkid(unsigned seed)
{
    struct id r;
    for (int i = 0; i < ID_BYTES; i++)
        r.b[i] = (uint8_t)(seed * 41 + (unsigned)i * 7);
    return r;
}

static struct chord_peer peer(unsigned n, bool v6)
{
    struct chord_peer p;
    p.id = mkid(n);
    if (v6) {
        memset(&p.addr, 0, sizeof(p.addr));
        p.addr.family = ADDR_V6;
        p.addr.port = (uint16_t)(5000 + n);
        p.addr.ip[0] = 0x20;
        p.addr.ip[1] = 0x01;
        p.addr.ip[2] = 0x0d;
        p.addr.ip[3] = 0xb8;
        p.addr.ip[15] = (uint8_t)n;
    } else {
        addr_v4(&p.addr, 10, 0, 0, (uint8_t)n, (uint16_t)(4000 + n));
    }
    return p;
}

static int write_seed(const char *dir, const struct chord_msg *m, const char *variant)
{
    char name[256], path[512];
    size_t n = chord_msg_encode(m, frame, sizeof(frame));

    if (n == 0) {
        fprintf(stderr, "cannot encode %s %s\n", chord_msg_name(m->type), variant);
        return -1;
    }
    snprintf(name, sizeof(name), "%s_%s", chord_msg_name(m->type), variant);
    for (char *p = name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(path, sizeof(path), "%s/%s", dir, name);

    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t w = fwrite(frame, 1, n, f);
    if (fclose(f) != 0 || w != n) {
        fprintf(stderr, "%s: write failed\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (uint16_t t = CHORD_MSG_PEER_FIND; t <= CHORD_MSG_NO_SUCH_VNODE; t++) {
        for (int v = 0; v < 2; v++) {
            struct chord_msg m;
            bool v6 = v == 1;

            /* v4: a request from an IPv4 node; v6: a reply with
             * CHORD_MF_ANY from an IPv6 node, lists full to r = 4 */
            memset(&m, 0, sizeof(m));
            m.type = t;
            m.reply = v6;
            m.request_id = v6 ? 0x0102030405060708u : 1;
            m.flags = v6 ? CHORD_MF_ANY : 0;
            m.dst = mkid(1);
            m.src = peer(2, v6);
            switch (t) {
            case CHORD_MSG_PEER_FIND:
            case CHORD_MSG_PEER_FOUND:
            case CHORD_MSG_ROUTE:
                m.key = mkid(3);
                m.has_peer = true;
                m.peer = peer(4, v6);
                m.hops = (uint16_t)(v6 ? 7 : 0);
                if (t == CHORD_MSG_ROUTE) {
                    m.app_type = 0x0101;
                    m.payload = v6 ? payload : NULL;
                    m.payload_len = v6 ? (uint32_t)sizeof(payload) : 0;
                }
                break;
            case CHORD_MSG_PREDECESSOR_REPLY:
            case CHORD_MSG_LEAVE:
            case CHORD_MSG_NEXT_HOP_REPLY:
                if (t == CHORD_MSG_NEXT_HOP_REPLY)
                    m.done = v6;
                else if (v6) {
                    m.has_peer = true;
                    m.peer = peer(5, true);
                }
                m.npeers = v6 ? 4 : 1;
                for (unsigned i = 0; i < m.npeers; i++)
                    m.peers[i] = peer(10 + i, i % 2);
                break;
            case CHORD_MSG_NEXT_HOP: m.key = mkid(6); break;
            default: break;
            }
            if (write_seed(argv[1], &m, v6 ? "v6" : "v4") != 0)
                rc = 1;
        }
    }
    return rc;
}
