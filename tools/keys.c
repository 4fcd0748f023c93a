/* keys.c — the key directory of the coopfs command and loading a key pair
 * from it (keys.h). */
#include "tools/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fmt(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    return n < 0 ? -EINVAL : (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int tools_key_dir(char *out, size_t cap)
{
    const char *keys = getenv("COOPFS_KEYS");
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");

    if (keys && *keys)
        return fmt(out, cap, keys, "");
    if (xdg && *xdg)
        return fmt(out, cap, xdg, "/coopfs/keys");
    if (home && *home)
        return fmt(out, cap, home, "/.config/coopfs/keys");
    return -ENOENT;
}

int tools_key_path(const char *name, const char *ext, char *out, size_t cap)
{
    char dir[4096];
    size_t len = strlen(name);
    int rc, n;

    if (len == 0 || name[len - 1] == '/')
        return -EINVAL;
    if (strchr(name, '/'))
        n = snprintf(out, cap, "%s%s", name, ext);
    else {
        rc = tools_key_dir(dir, sizeof(dir));
        if (rc < 0)
            return rc;
        n = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    }
    if (n < 0)
        return -EINVAL;
    return (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

int tools_key_load(const char *name, struct sig_key *out)
{
    char path[4096];
    int rc = tools_key_path(name, ".key", path, sizeof(path));

    if (rc == -ENOENT) {
        fprintf(stderr, "coopfs: no key directory: set COOPFS_KEYS, XDG_CONFIG_HOME or HOME\n");
        return rc;
    }
    if (rc < 0) {
        fprintf(stderr, "coopfs: '%s' is not a key name: %s\n", name, strerror(-rc));
        return rc;
    }
    rc = sig_key_load(path, out);
    switch (rc) {
    case 0: break;
    case -ENOENT:
        fprintf(stderr,
                "coopfs: no key '%s' (%s does not exist); make one with 'coopfs keygen %s'\n", name,
                path, name);
        break;
    case -EPERM:
        fprintf(stderr,
                "coopfs: %s may be read by others, so it is not used; if it is still secret, "
                "'chmod 600 %s'\n",
                path, path);
        break;
    case -EINVAL: fprintf(stderr, "coopfs: %s is not a coopfs private key file\n", path); break;
    default: fprintf(stderr, "coopfs: cannot read %s: %s\n", path, strerror(-rc)); break;
    }
    return rc;
}
