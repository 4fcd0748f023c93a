/* log.c — leveled logging. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_init_silent(struct logger *lg)
{
    memset(lg, 0, sizeof(*lg));
    lg->level = LOG_OFF;
}

void log_init(struct logger *lg, FILE *f, enum log_level level)
{
    memset(lg, 0, sizeof(*lg));
    lg->f = f;
    lg->level = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_msg(const struct logger *lg, enum log_level level, const char *module, const char *fmt,
             ...)
{
    char stamp[40];
    va_list ap;

    if (!log_enabled(lg, level) || level >= LOG_OFF)
        return;
    if (lg->now_ms) {
        uint64_t t = lg->now_ms(lg->ctx);
        snprintf(stamp, sizeof(stamp), "t=%llu.%03llu", (unsigned long long)(t / 1000),
                 (unsigned long long)(t % 1000));
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    }
    flockfile(lg->f);
    fprintf(lg->f, "%s %-5s %s%s%s: ", stamp, level_names[level], lg->prefix ? lg->prefix : "",
            lg->prefix ? " " : "", module);
    va_start(ap, fmt);
    vfprintf(lg->f, fmt, ap);
    va_end(ap);
    fputc('\n', lg->f);
    funlockfile(lg->f);
}
