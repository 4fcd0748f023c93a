/* test_store_fail.c — the local store (blockstore/store.c) when the disk
 * fails it: ENOSPC and a rename that fails, which fails the store. The
 * ENOSPC test needs root (a 1 MiB tmpfs mounted in a private mount
 * namespace) and the failure test needs an ext4-like file system that
 * honours the immutable flag; each skips, saying why, otherwise. The
 * fixture is store_fx.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blockstore/block.h"
#include "blockstore/store.h"
#include "blockstore/store_int.h" /* store_set_sync_mode: both barrier forms */
#include "common/hash.h"
#include "common/log.h"
#include "store_fx.h"


/* ENOSPC: a 1 MiB tmpfs in a private mount namespace, in a child. */
static int enospc_child(enum store_sync_mode mode)
{
    char mnt[] = "/tmp/coopfs-store-nospc-XXXXXX";
    char dir[96];
    struct logger lg;
    struct fx f;
    int rc = 1;

    if (!mkdtemp(mnt))
        return 77;
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m,mode=0700") != 0) {
        rmdir(mnt);
        return 77;
    }
    memset(&f, 0, sizeof(f));
    f.mode = mode;
    snprintf(dir, sizeof(dir), "%s/store", mnt);
    strcpy(f.dir, dir);
    log_init_silent(&lg);
    f.lg = lg;
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_mutex_init(&f.gate, NULL);
    if (fx_open(&f) != 0)
        goto out;

    /* Fill the disk: 256 KiB blocks until one is refused. */
    struct id keys[16];
    size_t len, stored = 0;
    int status = 0;
    for (uint32_t i = 0; i < 16 && status == 0; i++) {
        make_content(5000 + i, BLOCK_MAX_DATA, buf_a, &len, &keys[i]);
        if (store_write(f.st, STORE_CONTENT, &keys[i], buf_a, len, i) != 0)
            goto out;
        status = wait_one(&f, i);
        if (status == 0)
            stored++;
    }
    if (status != -ENOSPC || stored == 0 || store_failed(f.st)) {
        fprintf(stderr, "enospc: status %d after %zu blocks\n", status, stored);
        goto out;
    }
    /* The refused write left nothing in tmp/, and used is still exact. */
    char p[160];
    snprintf(p, sizeof(p), "%s/tmp", dir);
    if (count_entries(p) != 0 || store_used(f.st) != stored * len || sum_files(&f) != stored * len)
        goto out;
    /* A lease append that does not fit fails alone, and leaves the log
     * whole: nothing of it stays, and a small one still fits. */
    enum { NL = 2000 }; /* 304,000 bytes: more than the 61 pages left */
    struct lease *ls = calloc(NL, sizeof(*ls));
    struct sig_key k;
    if (!ls)
        goto out;
    make_sig_key(3, &k);
    lease_sign(&k, &keys[1], 1, 1000, &ls[0]);
    for (size_t i = 1; i < NL; i++)
        ls[i] = ls[0];
    status = store_lease_append(f.st, &keys[1], ls, NL, 50) == 0 ? wait_one(&f, 50) : 0;
    free(ls);
    snprintf(p, sizeof(p), "%s/leases.log", dir);
    if (status != -ENOSPC || file_size(p) != 0 || store_failed(f.st)) {
        fprintf(stderr, "enospc: lease append status %d, log %lld bytes\n", status,
                (long long)file_size(p));
        goto out;
    }
    if (store_lease_append(f.st, &keys[1], NULL, 0, 51) != 0 || wait_one(&f, 51) != 0)
        goto out;
    struct lease one;
    lease_sign(&k, &keys[1], 2, 1000, &one);
    if (store_lease_append(f.st, &keys[1], &one, 1, 52) != 0 || wait_one(&f, 52) != 0 ||
        file_size(p) != REC_LEN)
        goto out;
    /* The store goes on: free a block, and a write fits again. */
    if (store_remove(f.st, STORE_CONTENT, &keys[0], 100) != 0 || wait_one(&f, 100) != 0)
        goto out;
    if (store_write(f.st, STORE_CONTENT, &keys[stored], buf_a, len, 101) != 0 ||
        wait_one(&f, 101) != 0)
        goto out;
    uint8_t *got = NULL;
    size_t got_len = 0;
    if (store_read(f.st, STORE_CONTENT, &keys[stored], &got, &got_len) != 0)
        goto out;
    bool same = got_len == len && memcmp(got, buf_a, len) == 0;
    free(got);
    if (!same || store_used(f.st) != stored * len || store_failed(f.st))
        goto out;
    rc = 0;
out:
    store_close(f.st);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    return rc;
}

static void test_enospc(void **state)
{
    enum store_sync_mode mode = *state ? STORE_SYNC_FILES : STORE_SYNC_FS;
    if (geteuid() != 0) {
        print_message("skipped: the ENOSPC test mounts a 1 MiB tmpfs, which needs root\n");
        skip();
    }
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(enospc_child(mode));
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) {
        print_message("skipped: cannot mount a tmpfs in a private mount namespace here\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(ws), 0);
}

/* A rename that fails (an immutable roots/ directory) fails the store: that
 * write and every later one report EIO, and nothing is lost that was
 * acknowledged before. */
static void test_failure_is_fatal(void **state)
{
    struct fx *f = *state;
    struct id kc, kr;
    size_t lc, lr;
    char p[256];
    int fd, flags;

    make_content(80, 1000, buf_a, &lc, &kc);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 1), 0);
    assert_int_equal(wait_one(f, 1), 0);

    snprintf(p, sizeof(p), "%s/roots", f->dir);
    fd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
        close(fd);
        print_message("skipped: no immutable flag on this file system (%s)\n", strerror(errno));
        skip();
    }
    int iflags = flags | FS_IMMUTABLE_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &iflags) != 0) {
        close(fd);
        print_message("skipped: cannot set the immutable flag (%s)\n", strerror(errno));
        skip();
    }
    make_root(80, 1, 8, buf_b, &lr, &kr);
    assert_int_equal(store_write(f->st, STORE_ROOT, &kr, buf_b, lr, 2), 0);
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 3), 0);
    int s2 = wait_one(f, 2), s3 = wait_one(f, 3);
    ioctl(fd, FS_IOC_SETFLAGS, &flags);
    close(fd);
    assert_int_equal(s2, -EIO);
    assert_int_equal(s3, -EIO);
    assert_true(store_failed(f->st));
    assert_int_equal(store_write(f->st, STORE_CONTENT, &kc, buf_a, lc, 4), -EIO);
    assert_int_equal(store_remove(f->st, STORE_CONTENT, &kc, 4), -EIO);
    assert_int_equal(store_lease_append(f->st, &kc, NULL, 0, 4), -EIO);
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);

    /* A restart finds the acknowledged block and an empty tmp/. */
    fx_reopen(f);
    assert_false(store_failed(f->st));
    expect_read(f, STORE_CONTENT, &kc, buf_a, lc);
    expect_absent(f, STORE_ROOT, &kr);
    snprintf(p, sizeof(p), "%s/tmp", f->dir);
    assert_int_equal(count_entries(p), 0);
    assert_int_equal(store_used(f->st), lc);
}

static int files_mode = 1;


int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failure_is_fatal, setup, teardown),
        cmocka_unit_test_prestate(test_enospc, NULL),
        /* The same with per-file barriers. */
        cmocka_unit_test_setup_teardown(test_failure_is_fatal, setup_files, teardown),
        cmocka_unit_test_prestate(test_enospc, &files_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
