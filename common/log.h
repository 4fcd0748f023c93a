/* log.h — leveled logging to a FILE* owned by the caller.
 *
 * There is no global logger: every module that logs is handed a struct
 * logger. A logger with f == NULL, or a level below the message's, prints
 * nothing, which is how tests silence it. Lines look like
 *   2026-11-21T10:00:00.123Z warn  chord: successor 1.2.3.4:5 timed out
 * (the time comes from the logger's clock hook, so the simulator prints
 * virtual time).
 */
#ifndef COOPFS_COMMON_LOG_H
#define COOPFS_COMMON_LOG_H

#include <stdint.h>
#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

struct logger {
    FILE *f;                       /* not owned; NULL = silent */
    enum log_level level;          /* messages below it are dropped */
    uint64_t (*now_ms)(void *ctx); /* optional clock for the time stamp */
    void *ctx;
    const char *prefix; /* optional, e.g. the node's address */
};

/* A silent logger. */
void log_init_silent(struct logger *lg);
/* Logs to f at level. */
void log_init(struct logger *lg, FILE *f, enum log_level level);
/* Parses "debug", "info", "warn", "error", "off". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

void log_msg(const struct logger *lg, enum log_level level, const char *module, const char *fmt,
             ...) __attribute__((format(printf, 4, 5)));

static inline int log_enabled(const struct logger *lg, enum log_level level)
{
    return lg && lg->f && level >= lg->level;
}

#define LOG_D(lg, mod, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled((lg), LOG_DEBUG))                                                          \
            log_msg((lg), LOG_DEBUG, (mod), __VA_ARGS__);                                          \
    } while (0)
#define LOG_I(lg, mod, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled((lg), LOG_INFO))                                                           \
            log_msg((lg), LOG_INFO, (mod), __VA_ARGS__);                                           \
    } while (0)
#define LOG_W(lg, mod, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled((lg), LOG_WARN))                                                           \
            log_msg((lg), LOG_WARN, (mod), __VA_ARGS__);                                           \
    } while (0)
#define LOG_E(lg, mod, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled((lg), LOG_ERROR))                                                          \
            log_msg((lg), LOG_ERROR, (mod), __VA_ARGS__);                                          \
    } while (0)

#endif
