/* wire.h — bounded big-endian reader and writer for messages.
 *
 * Every read checks the bytes left; a short read sets a sticky error and
 * returns zeros, so a decoder can read a whole message and test once at
 * the end (wire_reader_ok). A writer works on a caller-supplied buffer and
 * likewise sets a sticky error instead of overrunning it.
 */
#ifndef COOPFS_COMMON_WIRE_H
#define COOPFS_COMMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/id.h"

struct wire_reader {
    const uint8_t *p;
    size_t left;
    bool err;
};

void wire_reader_init(struct wire_reader *r, const void *buf, size_t len);
uint8_t wire_get_u8(struct wire_reader *r);
uint16_t wire_get_u16(struct wire_reader *r);
uint32_t wire_get_u32(struct wire_reader *r);
uint64_t wire_get_u64(struct wire_reader *r);
/* Copies len bytes into out (zero-filled on error). */
void wire_get_bytes(struct wire_reader *r, void *out, size_t len);
/* Returns a pointer to the next len bytes inside the buffer and skips
 * them, or NULL (and the sticky error) if fewer are left. */
const uint8_t *wire_get_view(struct wire_reader *r, size_t len);
void wire_get_id(struct wire_reader *r, struct id *out);
/* An address: family u8 (4 or 6), port u16, then 4 or 16 address bytes.
 * An unknown family is an error. */
void wire_get_addr(struct wire_reader *r, struct addr *out);
/* True when no read so far ran short or met a malformed field. */
bool wire_reader_ok(const struct wire_reader *r);
/* True when ok and every byte was consumed. */
bool wire_reader_done(const struct wire_reader *r);
/* Marks the reader failed (for a decoder that finds a bad value). */
void wire_reader_fail(struct wire_reader *r);

struct wire_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool err;
};

void wire_writer_init(struct wire_writer *w, void *buf, size_t cap);
void wire_put_u8(struct wire_writer *w, uint8_t v);
void wire_put_u16(struct wire_writer *w, uint16_t v);
void wire_put_u32(struct wire_writer *w, uint32_t v);
void wire_put_u64(struct wire_writer *w, uint64_t v);
void wire_put_bytes(struct wire_writer *w, const void *data, size_t len);
void wire_put_id(struct wire_writer *w, const struct id *id);
void wire_put_addr(struct wire_writer *w, const struct addr *a);
/* Overwrites a u32 already written at offset off (for length fields). */
void wire_patch_u32(struct wire_writer *w, size_t off, uint32_t v);
bool wire_writer_ok(const struct wire_writer *w);

/* Encoded size of an address. */
size_t wire_addr_size(const struct addr *a);

#endif
