/* The UDP socket loop: receive a batch with recvmmsg, answer what the table holds,
 * hand the rest to a Python callback, send the batch back with sendmmsg.
 *
 * The loop runs in its own thread, without the GIL: it answers what the table holds
 * under the native locks alone (native.h), so the event loop (TCP, reloads, signals)
 * and any Python thread (a GeoIP rebuild) run beside it and never delay those answers.
 * It takes the GIL only for the rest of a batch: a reply built from the zone data
 * (whose dicts the GIL guards), a miss for Python, the rate limiter's log lines.
 * Receives time out every RECV_TIMEOUT_MS so that `stop()` from another thread ends
 * the loop well within a second. The table is swapped under the loop's lock
 * (`loop.table = new`), so the C part of a batch sees one table.
 *
 * The loop reads and writes its own duplicate of the socket's descriptor: closing the
 * Python socket while the loop still runs leaves the socket open for it, and a new
 * socket given the old number is never read or written by an old loop. */
#define _GNU_SOURCE
#include "native.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define BATCH 32
#define BUFFER_SIZE 65536
#define RECV_TIMEOUT_MS 100
#define RECEIVE_BUFFER (1 << 20)  /* 1 MiB: a smaller one drops queries under load */

typedef struct {
    unsigned long long received, answered, anchored, probes, passed, sent, dropped, send_errors,
        batches;
} counters_t;

pthread_mutex_t native_mutex = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t lock;  /* guards `table` and `limiter` (see the native locks) */
    int fd;           /* the loop's own duplicate of the socket's descriptor ... */
    int own_fd;       /* ... when set: closed when run() ends, never a number reused */
    PyObject *table;  /* a Table, or None: every query goes to Python */
    PyObject *miss;   /* callable(datagram, host, port, draw) -> list[bytes] */
    Limiter *limiter; /* response rate limiting; NULL: off (nothing checked) */
    volatile int stopping;
    int running;
    uint64_t random;  /* xorshift state for the weighted draw */
    unsigned long long seen;  /* queries, for the latency sample */
    unsigned long latency_mask;  /* time a C answer when (seen & mask) == 0 */
    counters_t counters;
} Loop;

typedef struct {
    struct mmsghdr in[BATCH], out[BATCH];
    struct iovec in_iov[BATCH], out_iov[BATCH];
    struct sockaddr_storage from[BATCH];
    unsigned char *in_buf, *out_buf;  /* query i's reply goes to out_buf + i * BUFFER_SIZE */
    size_t length[BATCH];             /* its length; 0: nothing to send */
    uint32_t draw[BATCH];             /* its weighted draw */
    int later[BATCH];                 /* its answer needs the GIL */
    int timed[BATCH];                 /* its latency is sampled, from `started` */
    struct timespec started[BATCH];
} batch_t;

static int batch_init(batch_t *b)
{
    b->in_buf = PyMem_Malloc((size_t)BATCH * BUFFER_SIZE);
    b->out_buf = PyMem_Malloc((size_t)BATCH * BUFFER_SIZE);
    if (b->in_buf == NULL || b->out_buf == NULL)
        return -1;
    for (int i = 0; i < BATCH; i++) {
        b->in_iov[i].iov_base = b->in_buf + (size_t)i * BUFFER_SIZE;
        b->in_iov[i].iov_len = BUFFER_SIZE;
    }
    return 0;
}

static void batch_reset(batch_t *b)
{
    memset(b->in, 0, sizeof(b->in));
    for (int i = 0; i < BATCH; i++) {
        b->in[i].msg_hdr.msg_iov = &b->in_iov[i];
        b->in[i].msg_hdr.msg_iovlen = 1;
        b->in[i].msg_hdr.msg_name = &b->from[i];
        b->in[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
    }
}

static PyObject *host_of(const struct sockaddr_storage *from)
{
    char text[INET6_ADDRSTRLEN];
    const void *address = from->ss_family == AF_INET6
        ? (const void *)&((const struct sockaddr_in6 *)from)->sin6_addr
        : (const void *)&((const struct sockaddr_in *)from)->sin_addr;
    if (inet_ntop(from->ss_family, address, text, sizeof(text)) == NULL)
        text[0] = 0;
    return PyUnicode_FromString(text);
}

/* The weighted draw for one query, in [0, 2**32): xorshift64, seeded per loop. The table
 * uses its slot (draw % 64) and a miss hands the same draw to Python, so the entry Python
 * renders is the one this query looked for (not a random other slot). */
static uint32_t next_draw(Loop *self)
{
    uint64_t x = self->random;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->random = x;
    return (uint32_t)(x >> 32);
}

static void peer_of(const struct sockaddr_storage *from, peer_t *peer, unsigned slot)
{
    peer->slot = slot;
    if (from->ss_family == AF_INET) {
        peer->family = 4;
        memcpy(peer->address, &((const struct sockaddr_in *)from)->sin_addr, 4);
    } else if (from->ss_family == AF_INET6) {
        peer->family = 6;
        memcpy(peer->address, &((const struct sockaddr_in6 *)from)->sin6_addr, 16);
    } else {
        peer->family = 0;
    }
}

/* One sampled answer's latency, into the histogram the metrics read. */
static void record_latency(const struct timespec *started)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t ns = (uint64_t)(now.tv_sec - started->tv_sec) * 1000000000ULL +
                  (uint64_t)(now.tv_nsec - started->tv_nsec);
    unsigned slot = 0;
    for (uint64_t us = ns / 1000; us; us >>= 1)
        slot++;  /* bit length, as (elapsed // 1000).bit_length() */
    latency[slot < LATENCY_SLOTS - 1 ? slot : LATENCY_SLOTS - 2]++;
    latency[LATENCY_SLOTS - 1] += ns;
}

static long port_of(const struct sockaddr_storage *from)
{
    if (from->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
    return ntohs(((const struct sockaddr_in *)from)->sin_port);
}

static void send_one(Loop *self, const void *data, size_t length, const struct msghdr *to)
{
    if (sendto(self->fd, data, length, 0, to->msg_name, to->msg_namelen) < 0)
        self->counters.send_errors++;
    else
        self->counters.sent++;
}

/* A miss: ask Python. The first reply goes out with the batch, any further ones now.
 * With RRL on, `*exempt` says whether Python found the query exempt from it (the
 * node's probe, a valid server cookie: the miss callable's `rrl_exempt`). */
static size_t ask_python(Loop *self, batch_t *b, int i, uint32_t draw, unsigned char *out,
                         int *exempt)
{
    PyObject *datagram = PyBytes_FromStringAndSize((char *)b->in_iov[i].iov_base,
                                                   (Py_ssize_t)b->in[i].msg_len);
    PyObject *host = host_of(&b->from[i]);
    PyObject *port = PyLong_FromLong(port_of(&b->from[i]));
    PyObject *number = PyLong_FromUnsignedLong(draw);
    PyObject *replies = NULL;
    size_t length = 0;
    self->counters.passed++;
    if (datagram != NULL && host != NULL && port != NULL && number != NULL)
        replies = PyObject_CallFunctionObjArgs(self->miss, datagram, host, port, number, NULL);
    Py_XDECREF(datagram);
    Py_XDECREF(host);
    Py_XDECREF(port);
    Py_XDECREF(number);
    PyObject *fast = replies ? PySequence_Fast(replies, "miss must return a list") : NULL;
    Py_XDECREF(replies);
    if (fast != NULL && self->limiter != NULL) {
        PyObject *flag = PyObject_GetAttrString(self->miss, "rrl_exempt");
        *exempt = flag != NULL && PyObject_IsTrue(flag) == 1;
        Py_XDECREF(flag);
        PyErr_Clear();
    }
    if (fast == NULL) {
        PyErr_WriteUnraisable(self->miss);
        return 0;
    }
    for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(fast); k++) {
        char *data;
        Py_ssize_t n;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(fast, k), &data, &n) < 0) {
            PyErr_WriteUnraisable(self->miss);
            break;
        }
        if (k == 0 && n <= BUFFER_SIZE) {
            memcpy(out, data, (size_t)n);
            length = (size_t)n;
        } else {
            send_one(self, data, (size_t)n, &b->in[i].msg_hdr);
        }
    }
    Py_DECREF(fast);
    return length;
}

/* An answer C gave to query i: timed when sampled, counted. */
static void count_answer(Loop *self, batch_t *b, int i, const query_t *q, int anchored)
{
    if (b->timed[i] && !q->probe)
        record_latency(&b->started[i]);
    if (q->probe) {
        self->counters.probes++;  /* /ready's own query: not client traffic */
    } else {
        self->counters.answered++;
        self->counters.anchored += (unsigned)anchored;
    }
}

/* Query i's reply past the rate limiter (under native_mutex): kept, truncated (slip)
 * or dropped (length 0). Exempt: the node's probe, a valid server cookie, or what
 * Python found exempt. */
static void limit_reply(Limiter *limiter, batch_t *b, int i, const query_t *q, int parsed,
                        int exempt)
{
    if (!b->length[i] || limiter == NULL || exempt || (parsed && (q->probe || q->cookie_valid)))
        return;
    peer_t peer;
    peer_of(&b->from[i], &peer, 0);
    unsigned char *out = b->out_buf + (size_t)i * BUFFER_SIZE;
    if (rrl_check(limiter, &peer, out, &b->length[i], rrl_now()) == RRL_DROP)
        b->length[i] = 0;
}

/* Query i from `table`, under its lock and native_mutex: parsed into `q` (`*parsed`),
 * its cookie checked, answered from what the table holds (`may_build`: or built from
 * the zone data); the reply's length, 0 when C has none. The first try of a query (the
 * C part, `may_build` 0) starts its latency sample. */
static size_t table_reply(Loop *self, Table *table, batch_t *b, int i, query_t *q,
                          int *parsed, int *anchored, int may_build)
{
    const unsigned char *data = b->in_iov[i].iov_base;
    if (!parse_query(data, b->in[i].msg_len, q))
        return 0;
    *parsed = 1;
    if (!may_build && !(self->seen++ & self->latency_mask)) {
        b->timed[i] = 1;
        clock_gettime(CLOCK_MONOTONIC, &b->started[i]);
    }
    peer_t peer;
    peer_of(&b->from[i], &peer, b->draw[i] % 64);
    if (q->cookie_length)  /* nothing to do, and nothing spent, without a cookie */
        cookie_check(table, q, &peer);
    return table_answer(table, data, q, &peer, b->out_buf + (size_t)i * BUFFER_SIZE,
                        BUFFER_SIZE, anchored, may_build);
}

/* The C part of a batch, without the GIL, under the loop's lock, its table's and
 * native_mutex: every query the table answers as it stands; the others are marked
 * `later`. How many are. */
static int answer_in_c(Loop *self, batch_t *b, int received)
{
    int later = 0;
    Table *table = self->table != Py_None ? (Table *)self->table : NULL;
    for (int i = 0; i < received; i++) {
        query_t q;
        size_t length = 0;
        int anchored = 0, parsed = 0;
        b->length[i] = 0;
        b->later[i] = b->timed[i] = 0;
        self->counters.received++;
        if (b->in[i].msg_hdr.msg_flags & MSG_TRUNC) {
            self->counters.dropped++;  /* larger than any query we answer */
            continue;
        }
        b->draw[i] = next_draw(self);
        if (table != NULL)
            length = table_reply(self, table, b, i, &q, &parsed, &anchored, 0);
        if (!length) {
            b->later[i] = 1;
            later++;
            continue;
        }
        count_answer(self, b, i, &q, anchored);
        b->length[i] = length;
        limit_reply(self->limiter, b, i, &q, parsed, 0);
    }
    return later;
}

/* The rest of a batch, with the GIL: a reply built from the zone data, else Python's. */
static void answer_with_python(Loop *self, batch_t *b, int received)
{
    PyObject *table = Py_NewRef(self->table);  /* swapped under the GIL too */
    Limiter *limiter = self->limiter;
    Py_XINCREF(limiter);
    for (int i = 0; i < received; i++) {
        if (!b->later[i])
            continue;
        query_t q;
        size_t length = 0;
        int anchored = 0, parsed = 0, exempt = 0;
        if (table != Py_None) {
            Table *t = (Table *)table;
            lock_gil(&t->lock);
            lock_gil(&native_mutex);
            length = table_reply(self, t, b, i, &q, &parsed, &anchored, 1);
            if (length)
                count_answer(self, b, i, &q, anchored);
            pthread_mutex_unlock(&native_mutex);
            pthread_mutex_unlock(&t->lock);
        }
        if (!length)
            length = ask_python(self, b, i, b->draw[i], b->out_buf + (size_t)i * BUFFER_SIZE,
                                &exempt);
        b->length[i] = length;
        if (length && limiter != NULL) {
            lock_gil(&native_mutex);
            limit_reply(limiter, b, i, &q, parsed, exempt);
            pthread_mutex_unlock(&native_mutex);
        }
    }
    Py_DECREF(table);
    if (limiter != NULL && limiter->log_count)
        rrl_flush_logs(limiter);
    Py_XDECREF(limiter);
}

/* The replies, in the order of their queries, into the send vectors; how many. */
static int gather_replies(batch_t *b, int received)
{
    int replies = 0;
    for (int i = 0; i < received; i++) {
        if (!b->length[i])
            continue;
        struct mmsghdr *m = &b->out[replies];
        memset(m, 0, sizeof(*m));
        b->out_iov[replies].iov_base = b->out_buf + (size_t)i * BUFFER_SIZE;
        b->out_iov[replies].iov_len = b->length[i];
        m->msg_hdr.msg_iov = &b->out_iov[replies];
        m->msg_hdr.msg_iovlen = 1;
        m->msg_hdr.msg_name = b->in[i].msg_hdr.msg_name;
        m->msg_hdr.msg_namelen = b->in[i].msg_hdr.msg_namelen;
        replies++;
    }
    return replies;
}

/* Without the GIL. */
static void send_batch(Loop *self, batch_t *b, int count)
{
    int done = 0;
    while (done < count) {
        int sent = sendmmsg(self->fd, b->out + done, (unsigned)(count - done), 0);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            self->counters.send_errors++;
            done++;  /* skip the message the kernel refused */
            continue;
        }
        self->counters.sent += (unsigned)sent;
        done += sent;
    }
}

static int configure_socket(int fd)
{
    struct timeval timeout = {0, RECV_TIMEOUT_MS * 1000};
    int size = RECEIVE_BUFFER;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));  /* best effort */
    return 0;
}

static void close_fd(Loop *self)
{
    if (self->own_fd)
        close(self->fd);
    self->own_fd = 0;
    self->fd = -1;
}

static PyObject *Loop_run(Loop *self, PyObject *unused)
{
    if (self->miss == NULL) {  /* made by __new__ alone */
        PyErr_SetString(PyExc_RuntimeError, "Loop is not initialised");
        return NULL;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the loop is already running");
        return NULL;
    }
    if (!self->own_fd) {
        errno = EBADF;  /* run() once per Loop(fd, ...): its descriptor went with it */
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (configure_socket(self->fd) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    batch_t *b = PyMem_Calloc(1, sizeof(batch_t));
    if (b == NULL || batch_init(b) < 0) {
        if (b) {
            PyMem_Free(b->in_buf);
            PyMem_Free(b->out_buf);
        }
        PyMem_Free(b);
        return PyErr_NoMemory();
    }
    PyObject *result = Py_None;
    self->running = 1;
    PyThreadState *thread = PyEval_SaveThread();
    while (!self->stopping) {
        batch_reset(b);
        int received = recvmmsg(self->fd, b->in, BATCH, MSG_WAITFORONE, NULL);
        if (received < 0) {
            int error = errno;
            PyEval_RestoreThread(thread);
            if (error == EBADF || error == ENOTSOCK) {  /* the socket is gone: stop */
                errno = error;
                result = PyErr_SetFromErrno(PyExc_OSError);
                break;
            }
            /* timeouts, EINTR, ICMP errors reported on the socket: carry on */
            if (PyErr_CheckSignals() < 0) {  /* only the main thread runs handlers */
                result = NULL;
                break;
            }
            thread = PyEval_SaveThread();
            continue;
        }
        if (received == 0)  /* the socket was shut down by stop() */
            continue;
        self->counters.batches++;
        pthread_mutex_lock(&self->lock);
        Table *table = self->table != Py_None ? (Table *)self->table : NULL;
        if (table != NULL)
            pthread_mutex_lock(&table->lock);
        pthread_mutex_lock(&native_mutex);
        int later = answer_in_c(self, b, received);
        int logs = self->limiter != NULL && self->limiter->log_count;
        pthread_mutex_unlock(&native_mutex);
        if (table != NULL)
            pthread_mutex_unlock(&table->lock);
        pthread_mutex_unlock(&self->lock);
        if (later || logs) {
            PyEval_RestoreThread(thread);
            if (later)
                answer_with_python(self, b, received);
            else if (self->limiter != NULL)
                rrl_flush_logs(self->limiter);
            thread = PyEval_SaveThread();
        }
        send_batch(self, b, gather_replies(b, received));
    }
    if (result == Py_None)  /* stopped: the loop still runs without the GIL */
        PyEval_RestoreThread(thread);
    self->running = 0;
    close_fd(self);  /* the socket is released with the loop's end */
    PyMem_Free(b->in_buf);
    PyMem_Free(b->out_buf);
    PyMem_Free(b);
    return result == Py_None ? Py_NewRef(Py_None) : result;
}

static PyObject *Loop_stop(Loop *self, PyObject *unused)
{
    self->stopping = 1;
    Py_RETURN_NONE;
}

static PyObject *Loop_counters(Loop *self, PyObject *unused)
{
    counters_t *c = &self->counters;
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
                         "received", c->received, "answered", c->answered,
                         "anchored", c->anchored, "probes", c->probes,
                         "passed", c->passed, "sent", c->sent,
                         "dropped", c->dropped, "send_errors", c->send_errors,
                         "batches", c->batches);
}

static int Loop_init(Loop *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", "table", "miss", NULL};
    int fd;
    PyObject *table, *miss;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOO", kwlist, &fd, &table, &miss))
        return -1;
    if (table != Py_None && !PyObject_TypeCheck(table, &TableType)) {
        PyErr_SetString(PyExc_TypeError, "table must be a Table or None");
        return -1;
    }
    if (!PyCallable_Check(miss)) {
        PyErr_SetString(PyExc_TypeError, "miss must be callable");
        return -1;
    }
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError, "the loop is running");
        return -1;
    }
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    close_fd(self);
    self->fd = own;
    self->own_fd = 1;
    if (getrandom(&self->random, sizeof(self->random), 0) != sizeof(self->random) || !self->random)
        self->random = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)self;
    Py_XSETREF(self->table, Py_NewRef(table));
    Py_XSETREF(self->miss, Py_NewRef(miss));
    return 0;
}

static PyObject *Loop_get_table(Loop *self, void *closure)
{
    return Py_NewRef(self->table ? self->table : Py_None);
}

/* The swap: one reference assignment under the GIL, between two batches. */
static int Loop_set_table(Loop *self, PyObject *value, void *closure)
{
    if (value == NULL || (value != Py_None && !PyObject_TypeCheck(value, &TableType))) {
        PyErr_SetString(PyExc_TypeError, "table must be a Table or None");
        return -1;
    }
    PyObject *old = self->table;
    lock_gil(&self->lock);
    self->table = Py_NewRef(value);
    pthread_mutex_unlock(&self->lock);
    Py_XDECREF(old);  /* not under the lock: freeing a table takes its time */
    return 0;
}

static PyObject *Loop_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Loop *self = (Loop *)PyType_GenericNew(type, args, kwds);
    if (self != NULL)
        pthread_mutex_init(&self->lock, NULL);
    return (PyObject *)self;
}

static void Loop_dealloc(Loop *self)
{
    pthread_mutex_destroy(&self->lock);
    close_fd(self);
    Py_XDECREF(self->table);
    Py_XDECREF(self->miss);
    Py_XDECREF(self->limiter);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Loop_methods[] = {
    {"run", (PyCFunction)Loop_run, METH_NOARGS,
     "run(): answer datagrams until stop() (returns within about 0.1 s of it); once per Loop: "
     "its own descriptor of the socket is closed when it returns."},
    {"stop", (PyCFunction)Loop_stop, METH_NOARGS, "stop(): ask run() to return."},
    {"counters", (PyCFunction)Loop_counters, METH_NOARGS,
     "counters() -> dict: received, answered (in C), anchored (of those, from a per-anchor "
     "entry), probes (/ready's, answered in C), passed (to Python), sent, dropped, "
     "send_errors, batches."},
    {NULL}
};

static PyObject *Loop_get_mask(Loop *self, void *closure)
{
    return PyLong_FromUnsignedLong(self->latency_mask);
}

static int Loop_set_mask(Loop *self, PyObject *value, void *closure)
{
    unsigned long mask = value ? PyLong_AsUnsignedLong(value) : 0;
    if (PyErr_Occurred())
        return -1;
    lock_gil(&self->lock);
    self->latency_mask = mask;
    pthread_mutex_unlock(&self->lock);
    return 0;
}

static PyObject *Loop_get_limiter(Loop *self, void *closure)
{
    return Py_NewRef(self->limiter ? (PyObject *)self->limiter : Py_None);
}

static int Loop_set_limiter(Loop *self, PyObject *value, void *closure)
{
    if (value == NULL || (value != Py_None && !PyObject_TypeCheck(value, &LimiterType))) {
        PyErr_SetString(PyExc_TypeError, "limiter must be a Limiter or None");
        return -1;
    }
    Limiter *old = self->limiter;
    lock_gil(&self->lock);
    self->limiter = value == Py_None ? NULL : (Limiter *)Py_NewRef(value);
    pthread_mutex_unlock(&self->lock);
    Py_XDECREF(old);
    return 0;
}

static PyGetSetDef Loop_getset[] = {
    {"limiter", (getter)Loop_get_limiter, (setter)Loop_set_limiter,
     "The Limiter every reply passes (response rate limiting), or None: none checked.", NULL},
    {"latency_mask", (getter)Loop_get_mask, (setter)Loop_set_mask,
     "Time one answer given in C when (queries & mask) == 0 (the taps' sample).", NULL},
    {"table", (getter)Loop_get_table, (setter)Loop_set_table,
     "The Table answered from; assigning swaps it between two batches.", NULL},
    {NULL}
};

static PyTypeObject LoopType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gslb.server._fastpath.Loop",
    .tp_doc = "Loop(fd, table, miss): a recvmmsg/sendmmsg UDP loop over one bound socket.",
    .tp_basicsize = sizeof(Loop),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Loop_new,
    .tp_init = (initproc)Loop_init,
    .tp_dealloc = (destructor)Loop_dealloc,
    .tp_methods = Loop_methods,
    .tp_getset = Loop_getset,
};

/* map_large_blocks() -> bool: every block of 128 KiB or more in a mapping of its own
 * from now on (glibc's M_MMAP_THRESHOLD, fixed). Left alone, glibc raises that threshold
 * each time such a block is freed (up to 32 MiB), and a load's large blocks (the dicts'
 * entries, the name index, the parse's scratch) then share the heap with small ones,
 * which keep pages of it from going back when the large ones around them are freed
 * (a 1M-record zone: 45 MiB of heap resident once trimmed, 4 MiB more in all than
 * with them mapped). A mapped block goes back whole when freed, and pages of it never
 * written cost nothing. False: not glibc. */
static PyObject *map_large_blocks(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
#ifdef __GLIBC__
    return PyBool_FromLong(mallopt(M_MMAP_THRESHOLD, 128 * 1024));
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef module_methods[] = {
    {"nsec3_hash", native_nsec3_hash, METH_VARARGS,
     "nsec3_hash(name_wire, salt, iterations) -> bytes: RFC 5155's hash, as the table computes it."},
    {"rrl_classify", native_rrl_classify, METH_VARARGS,
     "rrl_classify(reply) -> (class, name_wire, qtype): the RRL class a reply counts in."},
    {"siphash", native_siphash, METH_VARARGS,
     "siphash(key16, data) -> int: SipHash-2-4, the keyed hash of the answer tables."},
    {"map_large_blocks", map_large_blocks, METH_NOARGS,
     "map_large_blocks() -> bool: blocks of 128 KiB or more mapped on their own (glibc)."},
    {"native_counts", native_counts, METH_NOARGS,
     "native_counts() -> (hits per label id, latency histogram): array('Q') bytes each."},
    {"set_cookies", set_cookies, METH_VARARGS,
     "set_cookies(secrets, now=0): the DNS cookie secrets (16 bytes each, the first signs, "
     "all verify; empty: off); `now` fixes the clock (tests), 0 follows the real one."},
    {"set_probe", set_probe, METH_VARARGS,
     "set_probe(option_code, key): queries whose EDNS option holds the 16-byte key are "
     "the node's readiness probes, answered but counted nowhere."},
    {NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath",
    "The native UDP fast path: an answer table and a batched socket loop.", -1,
    module_methods,
};

/* A child forked while a loop thread held native_mutex would find it held forever (the
 * thread is not in the child): it starts with the mutex free. */
static void native_mutex_reset(void)
{
    pthread_mutex_init(&native_mutex, NULL);
}

PyMODINIT_FUNC PyInit__fastpath(void)
{
    if (pthread_atfork(NULL, NULL, native_mutex_reset) != 0)
        return PyErr_NoMemory();
    if (PyType_Ready(&TableType) < 0 || PyType_Ready(&LoopType) < 0 ||
        PyType_Ready(&LimiterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Table", (PyObject *)&TableType) < 0 ||
        PyModule_AddObjectRef(m, "Loop", (PyObject *)&LoopType) < 0 ||
        PyModule_AddObjectRef(m, "Limiter", (PyObject *)&LimiterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
