/* test_log.c — leveled logging (common/log.c), into a tmpfile(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

struct fixture {
    FILE *f;
    char text[4096];
};

static int setup(void **state)
{
    static struct fixture fx;
    memset(&fx, 0, sizeof(fx));
    fx.f = tmpfile();
    if (!fx.f)
        return -1;
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    fclose(fx->f);
    return 0;
}

/* Everything written to the file so far, as a string. */
static const char *contents(struct fixture *fx)
{
    assert_int_equal(fflush(fx->f), 0);
    rewind(fx->f);
    size_t n = fread(fx->text, 1, sizeof(fx->text) - 1, fx->f);
    fx->text[n] = '\0';
    return fx->text;
}

static uint64_t fake_now(void *ctx)
{
    return *(const uint64_t *)ctx;
}

static void test_log_levels(void **state)
{
    struct fixture *fx = *state;
    struct logger lg;
    uint64_t now = 1234;

    log_init(&lg, fx->f, LOG_WARN);
    lg.now_ms = fake_now;
    lg.ctx = &now;

    LOG_D(&lg, "chord", "debug %d", 1);
    LOG_I(&lg, "chord", "info %d", 2);
    log_msg(&lg, LOG_INFO, "chord", "direct info %d", 3);
    assert_string_equal(contents(fx), ""); /* below the level: nothing */

    LOG_W(&lg, "chord", "successor %s timed out", "1.2.3.4:5");
    LOG_E(&lg, "store", "error %d", 4);
    now = 5;
    log_msg(&lg, LOG_WARN, "net", "direct warn");
    assert_string_equal(contents(fx), "t=1.234 warn  chord: successor 1.2.3.4:5 timed out\n"
                                      "t=1.234 error store: error 4\n"
                                      "t=0.005 warn  net: direct warn\n");
}

static void test_log_every_threshold(void **state)
{
    struct fixture *fx = *state;
    static const char *const names[] = {"debug", "info", "warn", "error"};
    uint64_t now = 0;

    for (int level = LOG_DEBUG; level <= LOG_OFF; level++) {
        struct logger lg;
        fclose(fx->f); /* a fresh, empty file for each level */
        fx->f = tmpfile();
        assert_non_null(fx->f);
        log_init(&lg, fx->f, (enum log_level)level);
        lg.now_ms = fake_now;
        lg.ctx = &now;
        LOG_D(&lg, "m", "d");
        LOG_I(&lg, "m", "i");
        LOG_W(&lg, "m", "w");
        LOG_E(&lg, "m", "e");

        char want[256] = "";
        for (int m = level; m < LOG_OFF; m++) {
            char line[64];
            snprintf(line, sizeof(line), "t=0.000 %-5s m: %c\n", names[m], names[m][0]);
            strcat(want, line);
        }
        assert_string_equal(contents(fx), want);
    }
}

static void test_log_prefix_and_clock(void **state)
{
    struct fixture *fx = *state;
    struct logger lg;
    uint64_t now = UINT64_MAX;

    log_init(&lg, fx->f, LOG_DEBUG);
    lg.now_ms = fake_now;
    lg.ctx = &now;
    lg.prefix = "10.0.0.1:4000";
    LOG_D(&lg, "chord", "joined");
    now = 0;
    lg.prefix = NULL;
    LOG_I(&lg, "fs", "%s=%u", "inodes", 7u);
    assert_string_equal(contents(fx), "t=18446744073709551.615 debug 10.0.0.1:4000 chord: joined\n"
                                      "t=0.000 info  fs: inodes=7\n");
}

/* Without a clock hook the stamp is UTC wall time,
 * "YYYY-MM-DDTHH:MM:SS.mmmZ". */
static void test_log_wall_clock(void **state)
{
    struct fixture *fx = *state;
    struct logger lg;
    static const char pattern[] = "####-##-##T##:##:##.###Z warn  chord: hello 42\n";

    log_init(&lg, fx->f, LOG_INFO);
    LOG_W(&lg, "chord", "hello %d", 42);
    const char *s = contents(fx);
    assert_int_equal(strlen(s), strlen(pattern));
    for (size_t i = 0; pattern[i]; i++) {
        bool ok = pattern[i] == '#' ? isdigit((unsigned char)s[i]) : s[i] == pattern[i];
        if (!ok)
            fail_msg("line \"%s\" differs from \"%s\" at %zu", s, pattern, i);
    }
}

static void test_log_silent(void **state)
{
    struct fixture *fx = *state;
    struct logger lg;
    int evaluated = 0;

    /* f == NULL: nothing printed, nothing crashes, at any level */
    log_init(&lg, NULL, LOG_DEBUG);
    assert_false(log_enabled(&lg, LOG_ERROR));
    LOG_D(&lg, "m", "%d", evaluated++);
    LOG_E(&lg, "m", "%d", evaluated++);
    log_msg(&lg, LOG_ERROR, "m", "direct");
    assert_int_equal(evaluated, 0); /* disabled: the arguments are not evaluated */

    log_init_silent(&lg);
    assert_null(lg.f);
    assert_int_equal(lg.level, LOG_OFF);
    LOG_E(&lg, "m", "%d", evaluated++);
    log_msg(&lg, LOG_ERROR, "m", "direct");
    assert_int_equal(evaluated, 0);

    /* a NULL logger is silent too */
    LOG_E((const struct logger *)NULL, "m", "%d", evaluated++);
    log_msg(NULL, LOG_ERROR, "m", "direct");
    assert_int_equal(evaluated, 0);

    /* level off with a file: nothing reaches it */
    log_init(&lg, fx->f, LOG_OFF);
    LOG_E(&lg, "m", "%d", evaluated++);
    assert_int_equal(evaluated, 0);
    assert_string_equal(contents(fx), "");

    /* enabled: the arguments are evaluated once */
    log_init(&lg, fx->f, LOG_ERROR);
    LOG_E(&lg, "m", "%d", evaluated++);
    assert_int_equal(evaluated, 1);
}

static void test_log_level_parse(void **state)
{
    static const struct {
        const char *s;
        enum log_level level;
    } good[] = {
        {"debug", LOG_DEBUG}, {"info", LOG_INFO}, {"warn", LOG_WARN},
        {"error", LOG_ERROR}, {"off", LOG_OFF},
    };
    static const char *const bad[] = {"",       "DEBUG", "Info",   "warning", "err",
                                      "error ", " off",  "debugx", "4",       "none"};
    (void)state;

    for (size_t i = 0; i < N_ELEMS(good); i++) {
        enum log_level l = (enum log_level)99;
        assert_int_equal(log_level_parse(good[i].s, &l), 0);
        assert_int_equal(l, good[i].level);
    }
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        enum log_level l = (enum log_level)99;
        if (log_level_parse(bad[i], &l) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_int_equal(l, 99);
    }
    enum log_level l = (enum log_level)99;
    assert_int_equal(log_level_parse(NULL, &l), -EINVAL);
    assert_int_equal(l, 99);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_every_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_prefix_and_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_wall_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_silent, setup, teardown),
        cmocka_unit_test(test_log_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
