/* buf.h — a growable byte string, for building replies, JSON and SVG.
 *
 *     struct buf b = BUF_INIT;
 *     buf_printf(&b, "{\"n\": %d}", n);
 *     use(b.data, b.len);
 *     buf_release(&b);
 *
 * data is always NUL-terminated (when non-NULL) so text can be used as a
 * C string. An allocation failure is sticky: later appends do nothing and
 * b.failed stays true, so a caller checks once at the end.
 */
#ifndef COOPFS_COMMON_BUF_H
#define COOPFS_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len, cap;
    bool failed;
};

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

void buf_init(struct buf *b);
/* Frees the bytes and leaves b empty and usable. */
void buf_release(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
/* Appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
/* Appends s with the XML special characters escaped. */
void buf_xml_str(struct buf *b, const char *s);
/* Hands the bytes to the caller (free() them) and leaves b empty; NULL if
 * an allocation failed. */
char *buf_detach(struct buf *b, size_t *len);

#endif
