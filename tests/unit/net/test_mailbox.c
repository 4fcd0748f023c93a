/* test_mailbox.c — handing work to the loop thread (net/mailbox.c): posts
 * from other threads run on the loop thread, each once, in the order each
 * thread posted them; posts made by a mail function run after it; a closed
 * mailbox refuses posts but runs what it holds; freeing drops the rest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "net/mailbox.h"
#include "net/timer.h"

#define NTHREADS 4
#define NPOSTS   2000

struct fix {
    struct net_loop *l;
    struct net_mailbox *m;
    pthread_t loop_thread;
};

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_int_equal(net_loop_new(&f->l), 0);
    assert_int_equal(net_mailbox_new(f->l, &f->m), 0);
    f->loop_thread = pthread_self();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;

    net_mailbox_free(f->m);
    net_loop_free(f->l);
    free(f);
    return 0;
}

/* --- many threads ------------------------------------------------------ */

struct many {
    struct fix *f;
    pthread_barrier_t go;
    struct net_timer *start;
    atomic_uint post_errors;
    /* the rest only on the loop thread */
    unsigned ran;
    unsigned off_loop_thread;
    unsigned out_of_order;
    int last[NTHREADS]; /* last sequence number seen from each thread */
};

struct item {
    struct many *mt;
    unsigned thread, seq;
};

struct poster {
    struct many *mt;
    unsigned idx;
};

static void mail_item(void *arg)
{
    struct item *it = arg;
    struct many *mt = it->mt;

    if (!pthread_equal(pthread_self(), mt->f->loop_thread))
        mt->off_loop_thread++;
    if ((int)it->seq != mt->last[it->thread] + 1)
        mt->out_of_order++;
    mt->last[it->thread] = (int)it->seq;
    mt->ran++;
    free(it);
}

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    struct many *mt = p->mt;

    pthread_barrier_wait(&mt->go);
    for (unsigned i = 0; i < NPOSTS; i++) {
        struct item *it = malloc(sizeof(*it));
        if (!it) {
            atomic_fetch_add(&mt->post_errors, 1);
            continue;
        }
        *it = (struct item){.mt = mt, .thread = p->idx, .seq = i};
        if (net_mailbox_post(mt->f->m, mail_item, NULL, it) != 0) {
            free(it);
            atomic_fetch_add(&mt->post_errors, 1);
        }
    }
    return NULL;
}

/* On the loop thread, once it runs: let the posters go, so that they post
 * while the loop is running (and may be asleep in epoll). */
static void on_start(void *arg)
{
    struct many *mt = arg;
    pthread_barrier_wait(&mt->go);
}

static bool all_ran(void *arg)
{
    const struct many *mt = arg;
    return mt->ran >= NTHREADS * NPOSTS;
}

static void test_mailbox_threads_each_once_in_order(void **state)
{
    struct fix *f = *state;
    struct many mt = {.f = f};
    struct poster ps[NTHREADS];
    pthread_t th[NTHREADS];

    for (unsigned i = 0; i < NTHREADS; i++)
        mt.last[i] = -1;
    assert_int_equal(pthread_barrier_init(&mt.go, NULL, NTHREADS + 1), 0);
    for (unsigned i = 0; i < NTHREADS; i++) {
        ps[i] = (struct poster){.mt = &mt, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
    }
    assert_int_equal(net_timer_new(f->l, on_start, &mt, &mt.start), 0);
    net_timer_arm(mt.start, 0);

    nt_run_until(f->l, all_ran, &mt);
    for (unsigned i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    /* Anything posted but not yet run would show up here. */
    nt_run_for(f->l, 20);

    assert_int_equal(atomic_load(&mt.post_errors), 0);
    assert_int_equal(mt.ran, NTHREADS * NPOSTS);
    assert_int_equal(mt.off_loop_thread, 0);
    assert_int_equal(mt.out_of_order, 0);
    for (unsigned i = 0; i < NTHREADS; i++)
        assert_int_equal(mt.last[i], NPOSTS - 1);
    net_timer_free(mt.start);
    pthread_barrier_destroy(&mt.go);
}

/* --- a poster waiting for its answer ----------------------------------- */

struct ask {
    struct fix *f;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int question, answer;
    bool answered;        /* protected by lock */
    bool on_loop;         /* the function ran on the loop thread */
    atomic_bool finished; /* the poster has its answer */
};

static void mail_answer(void *arg)
{
    struct ask *a = arg;

    a->on_loop = pthread_equal(pthread_self(), a->f->loop_thread);
    pthread_mutex_lock(&a->lock);
    a->answer = a->question * 2;
    a->answered = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->lock);
}

static void *asker_main(void *arg)
{
    struct ask *a = arg;

    if (net_mailbox_post(a->f->m, mail_answer, NULL, a) == 0) {
        pthread_mutex_lock(&a->lock);
        while (!a->answered)
            pthread_cond_wait(&a->cv, &a->lock);
        pthread_mutex_unlock(&a->lock);
    }
    atomic_store(&a->finished, true);
    return NULL;
}

static bool asker_done(void *arg)
{
    struct ask *a = arg;
    return atomic_load(&a->finished);
}

static void test_mailbox_poster_waits_for_answer(void **state)
{
    struct fix *f = *state;
    struct ask a = {.f = f, .question = 21};
    pthread_t th;

    pthread_mutex_init(&a.lock, NULL);
    pthread_cond_init(&a.cv, NULL);
    assert_int_equal(pthread_create(&th, NULL, asker_main, &a), 0);
    nt_run_until(f->l, asker_done, &a);
    pthread_join(th, NULL);
    assert_true(a.answered);
    assert_true(a.on_loop);
    assert_int_equal(a.answer, 42);
    pthread_cond_destroy(&a.cv);
    pthread_mutex_destroy(&a.lock);
}

/* --- posts from inside a mail function --------------------------------- */

struct nest {
    struct fix *f;
    bool inside_first;
    int order[4];
    unsigned n;
    int post_rc;
    bool second_inside_first;
};

static void mail_second(void *arg)
{
    struct nest *ns = arg;

    if (ns->inside_first)
        ns->second_inside_first = true;
    ns->order[ns->n++] = 2;
}

static void mail_first(void *arg)
{
    struct nest *ns = arg;

    ns->order[ns->n++] = 1;
    ns->inside_first = true;
    ns->post_rc = net_mailbox_post(ns->f->m, mail_second, NULL, ns);
    ns->inside_first = false;
}

static bool nest_done(void *arg)
{
    const struct nest *ns = arg;
    return ns->n >= 2;
}

static void test_mailbox_post_inside_mail_runs_later(void **state)
{
    struct fix *f = *state;
    struct nest ns = {.f = f, .post_rc = 1};

    assert_int_equal(net_mailbox_post(f->m, mail_first, NULL, &ns), 0);
    assert_int_equal(ns.n, 0); /* nothing runs inside post */
    nt_run_until(f->l, nest_done, &ns);
    nt_run_for(f->l, 10);

    assert_int_equal(ns.post_rc, 0);
    assert_int_equal(ns.n, 2);
    assert_int_equal(ns.order[0], 1);
    assert_int_equal(ns.order[1], 2);
    assert_false(ns.second_inside_first);
}

/* --- close and free ---------------------------------------------------- */

struct count {
    unsigned ran, dropped;
    int order[8];
    unsigned n;
};

struct tagged {
    struct count *c;
    int tag;
};

static void mail_count(void *arg)
{
    struct tagged *t = arg;
    t->c->ran++;
    t->c->order[t->c->n++] = t->tag;
}

static void drop_count(void *arg)
{
    struct tagged *t = arg;
    t->c->dropped++;
}

static bool ran_two(void *arg)
{
    const struct count *c = arg;
    return c->ran >= 2;
}

static void test_mailbox_close_refuses_but_runs_queued(void **state)
{
    struct fix *f = *state;
    struct count c = {0};
    struct tagged a = {&c, 1}, b = {&c, 2}, late = {&c, 3};

    assert_int_equal(net_mailbox_post(f->m, mail_count, drop_count, &a), 0);
    assert_int_equal(net_mailbox_post(f->m, mail_count, drop_count, &b), 0);
    net_mailbox_close(f->m);
    assert_int_equal(net_mailbox_post(f->m, mail_count, drop_count, &late), -ESHUTDOWN);
    /* A refused post stays the caller's: it is neither run nor dropped. */
    assert_int_equal(c.dropped, 0);

    nt_run_until(f->l, ran_two, &c);
    nt_run_for(f->l, 10);
    assert_int_equal(c.ran, 2);
    assert_int_equal(c.order[0], 1);
    assert_int_equal(c.order[1], 2);
    assert_int_equal(c.dropped, 0);
    assert_int_equal(net_mailbox_post(f->m, mail_count, NULL, &late), -ESHUTDOWN);
}

static void test_mailbox_free_drops_queued(void **state)
{
    struct fix *f = *state;
    struct count c = {0};
    struct tagged t[3] = {{&c, 1}, {&c, 2}, {&c, 3}};

    assert_int_equal(net_mailbox_post(f->m, mail_count, drop_count, &t[0]), 0);
    assert_int_equal(net_mailbox_post(f->m, mail_count, NULL, &t[1]), 0); /* no drop hook */
    assert_int_equal(net_mailbox_post(f->m, mail_count, drop_count, &t[2]), 0);
    net_mailbox_close(f->m); /* closed mail is still dropped on free */
    net_mailbox_free(f->m);
    f->m = NULL;
    assert_int_equal(c.ran, 0);
    assert_int_equal(c.dropped, 2);

    /* The loop is fine afterwards (the wake-up event went with the mailbox). */
    nt_run_for(f->l, 5);
    assert_int_equal(c.ran, 0);
    net_mailbox_free(NULL);
}

/* --- a thread posting while the loop closes the mailbox ---------------- */

struct race {
    struct fix *f;
    atomic_uint accepted; /* posts that returned 0 */
    atomic_uint refused;  /* posts that returned -ESHUTDOWN */
    atomic_uint other;    /* anything else */
    atomic_bool finished;
    unsigned ran; /* loop thread only */
    unsigned close_after;
};

static void mail_race(void *arg)
{
    struct race *r = arg;

    if (++r->ran == r->close_after)
        net_mailbox_close(r->f->m);
}

static void *racer_main(void *arg)
{
    struct race *r = arg;

    for (;;) {
        int rc = net_mailbox_post(r->f->m, mail_race, NULL, r);
        if (rc == 0) {
            atomic_fetch_add(&r->accepted, 1);
        } else if (rc == -ESHUTDOWN) {
            atomic_fetch_add(&r->refused, 1);
            break;
        } else {
            atomic_fetch_add(&r->other, 1);
            break;
        }
    }
    atomic_store(&r->finished, true);
    return NULL;
}

static bool race_settled(void *arg)
{
    struct race *r = arg;
    return atomic_load(&r->finished) && r->ran == atomic_load(&r->accepted);
}

static void test_mailbox_close_while_posting(void **state)
{
    struct fix *f = *state;
    struct race r = {.f = f, .close_after = 100};
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, racer_main, &r), 0);
    nt_run_until(f->l, race_settled, &r);
    pthread_join(th, NULL);
    nt_run_for(f->l, 10);
    /* Every accepted post ran once; the first refusal ended the thread. */
    assert_int_equal(atomic_load(&r.other), 0);
    assert_int_equal(atomic_load(&r.refused), 1);
    assert_true(atomic_load(&r.accepted) >= r.close_after);
    assert_int_equal(r.ran, atomic_load(&r.accepted));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mailbox_threads_each_once_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_poster_waits_for_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_post_inside_mail_runs_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_close_refuses_but_runs_queued, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_free_drops_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox_close_while_posting, setup, teardown),
    };

    nt_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
