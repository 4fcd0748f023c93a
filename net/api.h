/* api.h — the DHT API for other programs on this machine (DESIGN.md
 * section 4; the VoidPhone DHT API of seed 003):
 *   size u16 | type u16 | body            big-endian, size counts all
 *   DHT PUT     650  ttl u16 | replication u8 | reserved u8 | key [32] | value
 *   DHT GET     651  key [32]
 *   DHT SUCCESS 652  key [32] | value
 *   DHT FAILURE 653  key [32]
 * over TCP on --api (127.0.0.1:7401 unless told otherwise). Any node answers
 * for any key: it routes the request through the ring to the key's replica
 * set (bs_kv_put / bs_get). A PUT is answered too (coopfs's addition, so a
 * client can tell it is stored): DHT SUCCESS with the key and no value once
 * min(replication, k) nodes stored it, DHT FAILURE otherwise. A message that
 * does not decode closes its connection; the node keeps running.
 */
#ifndef COOPFS_NET_API_H
#define COOPFS_NET_API_H

#include "common/addr.h"

#define API_MSG_PUT     650
#define API_MSG_GET     651
#define API_MSG_SUCCESS 652
#define API_MSG_FAILURE 653

#define API_MAX_CONNS     256
#define API_MAX_PENDING   64     /* requests in flight per connection; then it is not read */
#define API_IDLE_MS       300000 /* a silent connection is closed */
#define API_TTL_DEFAULT_S 86400  /* a PUT with ttl 0 */

struct net_node;
struct net_api;

/* Listens on a (concrete IP; port 0 lets the kernel choose). Returns 0 and
 * *out, or -errno. */
int net_api_new(struct net_node *n, const struct addr *a, struct net_api **out);
void net_api_free(struct net_api *api); /* NULL-safe; pending requests answer nobody */
const struct addr *net_api_addr(const struct net_api *api);

#endif
