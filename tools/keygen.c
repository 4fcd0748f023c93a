/* keygen.c — coopfs keygen: makes an Ed25519 key pair and saves it as
 * NAME.key and NAME.pub (keys.h says where). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "tools/keys.h"

static const char keygen_usage[] =
    "usage: coopfs keygen [--dir DIR] NAME\n"
    "\n"
    "Makes a new Ed25519 key pair NAME: DIR/NAME.key, the private key (mode\n"
    "0600; keep it secret, it signs your roots and leases), and DIR/NAME.pub.\n"
    "Prints the public key and the key of its root block, in hex. An existing\n"
    "key is never overwritten.\n"
    "\n"
    "  --dir DIR  where to write (default $COOPFS_KEYS, else\n"
    "             $XDG_CONFIG_HOME/coopfs/keys, else ~/.config/coopfs/keys;\n"
    "             created with mode 0700 if missing)\n"
    "\n"
    "A NAME with a '/' is a path prefix instead: 'coopfs keygen ./alice'\n"
    "writes ./alice.key and ./alice.pub.\n";

/* mkdir -p, with mode for the directories it makes. Returns 0 or -errno. */
static int mkdir_parents(const char *path, mode_t mode)
{
    char p[4096];
    size_t len = strlen(path);
    struct stat st;

    if (len == 0 || len >= sizeof(p))
        return len ? -ENAMETOOLONG : -EINVAL;
    memcpy(p, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        p[i] = c;
    }
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int join(char *out, size_t cap, const char *dir, const char *name, const char *ext)
{
    int n = snprintf(out, cap, "%s/%s%s", dir, name, ext);
    return n < 0 ? -EINVAL : (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char dir[4096], kpath[4096], ppath[4096], hex[ID_HEX_LEN + 1];
    const char *opt_dir = NULL, *name;
    struct sig_key k;
    struct stat st;
    struct id rk;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': opt_dir = optarg; break;
        case 'h': fputs(keygen_usage, stdout); return 0;
        default: fputs(keygen_usage, stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(keygen_usage, stderr);
        return 2;
    }
    name = argv[optind];
    if (!*name || name[strlen(name) - 1] == '/' || (opt_dir && strchr(name, '/'))) {
        fprintf(stderr, "coopfs keygen: '%s' is not a key name%s\n", name,
                opt_dir ? " (with --dir, NAME has no '/')" : "");
        return 2;
    }

    /* Where: a path prefix as is, else --dir or the default directory
     * (made if missing, 0700 like ~/.ssh). */
    if (strchr(name, '/')) {
        rc = tools_key_path(name, ".key", kpath, sizeof(kpath));
        if (rc == 0)
            rc = tools_key_path(name, ".pub", ppath, sizeof(ppath));
        if (rc < 0) {
            fprintf(stderr, "coopfs keygen: %s: %s\n", name, strerror(-rc));
            return 2;
        }
    } else {
        if (opt_dir)
            rc = snprintf(dir, sizeof(dir), "%s", opt_dir) < (int)sizeof(dir) ? 0 : -ENAMETOOLONG;
        else
            rc = tools_key_dir(dir, sizeof(dir));
        if (rc == -ENOENT) {
            fprintf(stderr, "coopfs keygen: no --dir, and none of COOPFS_KEYS, "
                            "XDG_CONFIG_HOME and HOME is set\n");
            return 2;
        }
        if (rc == 0)
            rc = join(kpath, sizeof(kpath), dir, name, ".key");
        if (rc == 0)
            rc = join(ppath, sizeof(ppath), dir, name, ".pub");
        if (rc < 0) {
            fprintf(stderr, "coopfs keygen: %s\n", strerror(-rc));
            return 2;
        }
        rc = mkdir_parents(dir, 0700);
        if (rc < 0) {
            fprintf(stderr, "coopfs keygen: cannot make the directory %s: %s\n", dir,
                    strerror(-rc));
            return 1;
        }
    }

    /* Neither half may exist: a new .pub beside an old .key would lie. */
    if (lstat(kpath, &st) == 0 || lstat(ppath, &st) == 0) {
        fprintf(stderr, "coopfs keygen: %s already exists; not overwriting a key\n",
                lstat(kpath, &st) == 0 ? kpath : ppath);
        return 1;
    }
    rc = sig_keygen(&k);
    if (rc < 0) {
        fprintf(stderr, "coopfs keygen: cannot make a key: %s\n", strerror(-rc));
        return 1;
    }
    rc = sig_key_save(kpath, &k);
    if (rc < 0) {
        fprintf(stderr, "coopfs keygen: cannot write %s: %s\n", kpath, strerror(-rc));
        explicit_bzero(&k, sizeof(k));
        return 1;
    }
    rc = sig_pub_save(ppath, &k.pub);
    if (rc < 0) {
        fprintf(stderr, "coopfs keygen: cannot write %s: %s\n", ppath, strerror(-rc));
        /* A private key nobody was told about is better not left behind. */
        unlink(kpath);
        explicit_bzero(&k, sizeof(k));
        return 1;
    }

    fprintf(stderr, "coopfs keygen: wrote %s (private: keep it secret) and %s\n", kpath, ppath);
    sig_pub_to_hex(&k.pub, hex);
    printf("public key %s\n", hex);
    root_key(&k.pub, &rk);
    id_to_hex(&rk, hex);
    printf("root key   %s\n", hex);
    explicit_bzero(&k, sizeof(k));
    return fflush(stdout) == 0 ? 0 : 1;
}
