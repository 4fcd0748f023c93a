/* keys.h — where the coopfs command keeps key pairs, and loading them.
 *
 * A key pair NAME is two files (common/sig.h and docs/formats.md give
 * their format): DIR/NAME.key, the private key (mode 0600), and
 * DIR/NAME.pub. DIR is $COOPFS_KEYS if set, else
 * $XDG_CONFIG_HOME/coopfs/keys, else ~/.config/coopfs/keys. A NAME with a
 * '/' in it is a path prefix taken as is: "./alice" is ./alice.key and
 * ./alice.pub, "/etc/coopfs/node" is /etc/coopfs/node.key and .pub.
 *
 * Errors: 0 or a negative errno.
 */
#ifndef COOPFS_TOOLS_KEYS_H
#define COOPFS_TOOLS_KEYS_H

#include <stddef.h>

#include "common/sig.h"

/* Writes the default key directory (above) into out[0..cap). Returns 0,
 * -ENOENT if none of COOPFS_KEYS, XDG_CONFIG_HOME and HOME is set, or
 * -ENAMETOOLONG. Creates nothing. */
int tools_key_dir(char *out, size_t cap);

/* Writes the path of key pair name's file with extension ext (".key",
 * ".pub") into out[0..cap). Returns 0, -EINVAL for an empty name or one
 * ending in '/', -ENOENT (no default directory, see tools_key_dir), or
 * -ENAMETOOLONG. Creates nothing. */
int tools_key_path(const char *name, const char *ext, char *out, size_t cap);

/* Loads the private key of key pair name into *out. On failure it says on
 * stderr what is wrong and what to do (no such key: run coopfs keygen; a
 * key file others can read: chmod 600) and returns the negative errno of
 * sig_key_load() or tools_key_path(). The caller wipes *out when done. */
int tools_key_load(const char *name, struct sig_key *out);

/* coopfs keygen [--dir DIR] NAME (keygen.c). Returns an exit status. */
int cmd_keygen(int argc, char **argv);

#endif
