/* store_reader.c — the reader threads of the store: store_read_async
 * queues a read, one of STORE_READERS threads takes it, does store_read
 * (open, read, check, and quarantine of a bad file under ns_lock, as on
 * the loop before) and posts the completion with the bytes to the queue
 * the writer posts to, so the loop thread never reads a file or hashes a
 * block to serve it.
 *
 * Reads are independent of each other and of the writer: a read that
 * races a rename sees the old file or the new one (store_read retries when
 * the file it checked was replaced), never a mix.
 */
#include "blockstore/store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void store_ops_free(struct store_op *op)
{
    while (op) {
        struct store_op *next = op->next;
        free(op->out);
        free(op);
        op = next;
    }
}

int store_read_async(struct store *st, enum store_type type, const struct id *key, uint64_t token)
{
    struct store_op *op;

    if (type != STORE_CONTENT && type != STORE_ROOT && type != STORE_KV)
        return -EINVAL;
    op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->kind = STORE_OP_READ;
    op->type = (uint8_t)type;
    op->fd = -1;
    op->key = *key;
    op->token = token;
    pthread_mutex_lock(&st->lock);
    *st->rq_tail = op;
    st->rq_tail = &op->next;
    pthread_cond_signal(&st->rcond);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

void *store_reader_main(void *arg)
{
    struct store *st = arg;

    pthread_mutex_lock(&st->lock);
    for (;;) {
        struct store_op *op;
        bool was_empty;

        while (!st->rq_head && !st->stopping)
            pthread_cond_wait(&st->rcond, &st->lock);
        if (st->stopping)
            break; /* reads still queued are dropped by store_close */
        op = st->rq_head;
        st->rq_head = op->next;
        if (!st->rq_head)
            st->rq_tail = &st->rq_head;
        op->next = NULL;
        pthread_mutex_unlock(&st->lock);

        op->status = store_read(st, (enum store_type)op->type, &op->key, &op->out, &op->out_len);

        pthread_mutex_lock(&st->lock);
        /* A completion queued behind others is taken by the poll that
         * their wake started (the loop polls until the queue is empty):
         * only a read that finds the queue empty wakes the loop. */
        was_empty = !st->done_head;
        *st->done_tail = op;
        st->done_tail = &op->next;
        if (was_empty && st->wake) {
            pthread_mutex_unlock(&st->lock);
            st->wake(st->wake_ctx);
            pthread_mutex_lock(&st->lock);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}
