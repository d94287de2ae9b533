/* Response rate limiting (RRL) for the native UDP loop, after the reply is known.
 *
 * Every reply is put in a class from its own bytes (the same rules as gslb/dns/rrl.py):
 * positive (keyed by qname and qtype), nodata (qname), nxdomain (the zone: the owner of
 * the authority SOA), referral (the delegation: the owner of the authority NS), error
 * (any other rcode, one per network). A token bucket per (client network, class, name)
 * holds `rate * window` responses and refills at `rate` per second; a reply finding it
 * empty is limited: dropped, or every `slip`th one sent truncated (TC, no records) so a
 * real client retries over TCP.
 *
 * The buckets live in a fixed table of RRL_ENTRIES (4-way sets, the least recently seen
 * of a full set replaced), keyed by SipHash under a random key, in memory mapped shared:
 * the workers forked from the process that made the Limiter count into one table. They
 * update it without locks; a race loses an update now and then, as Knot's table may. */
#include "native.h"
#include <arpa/inet.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define RRL_ENTRIES (1u << 16)    /* 2 MiB of buckets, shared by every worker */
#define RRL_WAYS 4
#define MILLI 1000                /* a bucket counts thousandths of a response */
#define TC 0x02                   /* in the header's third byte */
#define AA 0x04
#define TYPE_NS 2
#define TYPE_SOA 6

enum { CLS_POSITIVE, CLS_NODATA, CLS_NXDOMAIN, CLS_REFERRAL, CLS_ERROR, RRL_CLASSES };
static const char *class_names[RRL_CLASSES] = {"positive", "nodata", "nxdomain", "referral",
                                                "error"};
static uint64_t limited[2][RRL_CLASSES];  /* [dropped, slipped]: per process, not shared */

typedef struct {
    uint64_t tag;                  /* SipHash of the key, 0: empty */
    int64_t tokens;                /* thousandths of a response */
    uint64_t time;                 /* ms (CLOCK_MONOTONIC_COARSE) of the last reply */
    uint32_t limited;              /* limited replies, for the slip */
    uint32_t logged;               /* second of the last log line + 1, 0: never */
} bucket_t;

struct rrl_shared {
    uint64_t log_second;
    uint32_t log_count;
    bucket_t buckets[RRL_ENTRIES];
};


uint64_t rrl_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* ---- classification ------------------------------------------------------------- */

/* Past a (possibly compressed) name at `at`; 0 when it runs off the message. */
static size_t skip_name(const unsigned char *m, size_t n, size_t at)
{
    while (at < n) {
        unsigned label = m[at];
        if (label >= 0xC0)
            return at + 2 <= n ? at + 2 : 0;
        if (label > 63)
            return 0;
        at += label + 1u;
        if (label == 0)
            return at;
    }
    return 0;
}

/* The lowercase wire name at `at`, pointers followed; 0 when malformed. */
static size_t read_name(const unsigned char *m, size_t n, size_t at, unsigned char *out)
{
    size_t length = 0;
    for (int hops = 0; at < n;) {
        unsigned label = m[at];
        if (label >= 0xC0) {
            if (at + 1 >= n || ++hops > 16)
                return 0;
            at = (size_t)(label & 0x3F) << 8 | m[at + 1];
            continue;
        }
        if (label > 63 || at + 1 + label > n || length + 1 + label > MAX_NAME)
            return 0;
        out[length++] = (unsigned char)label;
        if (label == 0)
            return length;
        for (unsigned i = 1; i <= label; i++) {
            unsigned char c = m[at + i];
            out[length++] = lower_ascii(c);
        }
        at += label + 1u;
    }
    return 0;
}

/* Which class a reply is in, and the name (and for positive answers the type) it is
 * counted under: the root name when the reply does not say. */
void rrl_classify(const unsigned char *m, size_t n, rrl_class_t *c)
{
    c->cls = CLS_ERROR;
    c->qtype = 0;
    c->name[0] = 0;
    c->name_length = 1;
    c->question_end = n < HEADER_SIZE ? n : HEADER_SIZE;
    if (n < HEADER_SIZE || get16(m + 4) != 1)
        return;
    unsigned rcode = m[3] & 0x0F;
    size_t at = skip_name(m, n, HEADER_SIZE);
    if (at == 0 || at + 4 > n || (rcode != 0 && rcode != 3))
        return;
    c->question_end = at + 4;
    size_t qname = read_name(m, n, HEADER_SIZE, c->name);
    if (qname == 0) {
        c->name[0] = 0;  /* a partly read name is no name */
        return;
    }
    uint16_t answers = get16(m + 6), authority = get16(m + 8), want;
    if (rcode == 0 && answers) {
        c->cls = CLS_POSITIVE;
        c->qtype = get16(m + at);
        c->name_length = qname;
        return;
    }
    if (rcode == 0 && ((m[2] & AA) || !authority)) {
        c->cls = CLS_NODATA;
        c->name_length = qname;
        return;
    }
    c->cls = rcode == 0 ? CLS_REFERRAL : CLS_NXDOMAIN;
    c->name[0] = 0;
    want = rcode == 0 ? TYPE_NS : TYPE_SOA;
    at += 4;
    for (unsigned i = 0; i < (unsigned)answers + authority; i++) {
        size_t owner = at;
        at = skip_name(m, n, at);
        if (at == 0 || at + 10 > n)
            return;
        if (i >= answers && get16(m + at) == want) {
            size_t length = read_name(m, n, owner, c->name);
            c->name_length = length ? length : 1;
            if (!length)
                c->name[0] = 0;
            return;
        }
        at += 10u + get16(m + at + 8);
    }
}

/* ---- the buckets ---------------------------------------------------------------- */

static int in_network(const rrl_network_t *net, const peer_t *peer)
{
    if (net->family != peer->family)
        return 0;
    unsigned whole = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->address, peer->address, whole) != 0)
        return 0;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return rest == 0 || (net->address[whole] & mask) == (peer->address[whole] & mask);
}

/* The client's network: its address with the bits past the prefix cleared. */
static void network_of(const Limiter *l, const peer_t *peer, unsigned char *out)
{
    unsigned prefix = peer->family == 4 ? l->v4_prefix : l->v6_prefix;
    memset(out, 0, 16);
    memcpy(out, peer->address, prefix / 8);
    if (prefix % 8)
        out[prefix / 8] = peer->address[prefix / 8] & (unsigned char)(0xFF << (8 - prefix % 8));
}

static bucket_t *bucket_for(Limiter *l, uint64_t tag, uint64_t now, int *fresh)
{
    bucket_t *set = l->shared->buckets + (tag % (RRL_ENTRIES / RRL_WAYS)) * RRL_WAYS;
    bucket_t *oldest = set;
    for (int i = 0; i < RRL_WAYS; i++) {
        if (set[i].tag == tag) {
            *fresh = 0;
            return &set[i];
        }
        if (set[i].tag == 0 || set[i].time < oldest->time)
            oldest = &set[i];
        if (set[i].tag == 0)
            break;
    }
    *fresh = 1;
    return oldest;
}

/* One line about a newly limited bucket: at most once a window per bucket, and at most
 * RRL_LOG_PER_SECOND for the node. */
static void log_limited(Limiter *l, bucket_t *b, const rrl_class_t *c, int family,
                        const unsigned char *network, uint64_t now)
{
    uint32_t second = (uint32_t)(now / 1000u) + 1u;
    if (l->log == NULL || (b->logged && second - b->logged < (uint32_t)l->window))
        return;
    struct rrl_shared *s = l->shared;
    if (s->log_second != second) {
        s->log_second = second;
        s->log_count = 0;
    }
    if (s->log_count >= RRL_LOG_PER_SECOND)
        return;
    if (l->log_count == RRL_LOG_PER_SECOND)
        return;  /* not handed over yet: this second's lines are there already */
    s->log_count++;
    b->logged = second;
    rrl_log_t *line = &l->logs[l->log_count++];
    line->family = family;
    line->cls = c->cls;
    memcpy(line->network, network, family == 4 ? 4 : 16);
    memcpy(line->name, c->name, c->name_length);
    line->name_length = c->name_length;
}

void rrl_flush_logs(Limiter *l)
{
    rrl_log_t lines[RRL_LOG_PER_SECOND];
    lock_gil(&native_mutex);
    size_t count = l->log_count;
    memcpy(lines, l->logs, count * sizeof(*lines));
    l->log_count = 0;
    pthread_mutex_unlock(&native_mutex);
    for (size_t i = 0; i < count; i++) {
        PyObject *result = PyObject_CallFunction(
            l->log, "y#sy#", (const char *)lines[i].network,
            (Py_ssize_t)(lines[i].family == 4 ? 4 : 16), class_names[lines[i].cls],
            (const char *)lines[i].name, (Py_ssize_t)lines[i].name_length);
        if (result == NULL)
            PyErr_WriteUnraisable(l->log);
        Py_XDECREF(result);
    }
}

/* The verdict on one reply to `peer`: RRL_PASS, RRL_DROP, or RRL_SLIP (the reply then
 * rewritten in place as its truncated form, `*length` shortened). */
int rrl_check(Limiter *l, const peer_t *peer, unsigned char *reply, size_t *length,
              uint64_t now)
{
    if (peer->family == 0)
        return RRL_PASS;
    for (size_t i = 0; i < l->exempt_count; i++)
        if (in_network(&l->exempt[i], peer))
            return RRL_PASS;
    rrl_class_t c;
    rrl_classify(reply, *length, &c);
    unsigned char key[2 + 16 + 2 + MAX_NAME];
    key[0] = (unsigned char)c.cls;
    key[1] = (unsigned char)peer->family;
    network_of(l, peer, key + 2);
    key[18] = (unsigned char)(c.qtype >> 8);
    key[19] = (unsigned char)c.qtype;
    memcpy(key + 20, c.name, c.name_length);
    uint64_t tag = siphash24(&l->key, key, 20 + c.name_length) | 1u;
    int fresh;
    bucket_t *b = bucket_for(l, tag, now, &fresh);
    int64_t capacity = l->rate * l->window * MILLI;
    if (fresh) {
        b->tag = tag;
        b->tokens = capacity;
        b->limited = b->logged = 0;
    } else if (now > b->time) {
        uint64_t elapsed = now - b->time;
        if (elapsed > (uint64_t)l->window * MILLI)
            elapsed = (uint64_t)l->window * MILLI;  /* long enough to fill it */
        b->tokens += (int64_t)elapsed * l->rate;
        if (b->tokens > capacity)
            b->tokens = capacity;
    }
    b->time = now;
    if (b->tokens >= MILLI) {
        b->tokens -= MILLI;
        return RRL_PASS;
    }
    b->limited++;
    log_limited(l, b, &c, peer->family, key + 2, now);
    if (l->slip && b->limited % (uint32_t)l->slip == 0 && *length >= HEADER_SIZE) {
        limited[1][c.cls]++;
        reply[2] |= TC;
        memset(reply + 4, 0, 8);
        reply[5] = c.question_end > HEADER_SIZE;  /* the question, when there is one */
        *length = c.question_end;
        return RRL_SLIP;
    }
    limited[0][c.cls]++;
    return RRL_DROP;
}

/* ---- the Python type ------------------------------------------------------------ */

static int parse_peer(const char *host, peer_t *peer)
{
    memset(peer, 0, sizeof(*peer));
    if (inet_pton(AF_INET, host, peer->address) == 1)
        peer->family = 4;
    else if (inet_pton(AF_INET6, host, peer->address) == 1)
        peer->family = 6;
    return peer->family;
}

static int Limiter_init(Limiter *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rate", "slip", "window", "ipv4_prefix", "ipv6_prefix", "exempt",
                             "log", NULL};
    long long rate, slip, window;
    unsigned v4, v6;
    PyObject *exempt = NULL, *log = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LLLII|OO", kwlist, &rate, &slip, &window,
                                     &v4, &v6, &exempt, &log))
        return -1;
    if (rate < 1 || rate > 1000000 || slip < 0 || slip > 1000 || window < 1 || window > 3600 ||
        v4 > 32 || v6 > 128) {
        PyErr_SetString(PyExc_ValueError, "rate 1-1000000, slip 0-1000, window 1-3600, "
                        "prefixes 0-32 and 0-128");
        return -1;
    }
    if (self->shared != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Limiter is made once");
        return -1;
    }
    PyObject *fast = exempt && exempt != Py_None
        ? PySequence_Fast(exempt, "exempt: (address, prefix) pairs") : PyTuple_New(0);
    if (fast == NULL)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    self->exempt = PyMem_Calloc((size_t)count + 1, sizeof(rrl_network_t));
    for (Py_ssize_t i = 0; self->exempt != NULL && i < count; i++) {
        const char *address;
        Py_ssize_t n;
        unsigned prefix;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "y#I", &address, &n, &prefix) ||
            (n != 4 && n != 16) || prefix > (unsigned)n * 8) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "exempt: 4 or 16 address bytes and a prefix");
            Py_DECREF(fast);
            return -1;
        }
        self->exempt[i].family = n == 4 ? 4 : 6;
        self->exempt[i].prefix = prefix;
        memcpy(self->exempt[i].address, address, (size_t)n);
        self->exempt_count++;
    }
    Py_DECREF(fast);
    if (self->exempt == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    void *shared = mmap(NULL, sizeof(struct rrl_shared), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (hash_key_init(&self->key) < 0) {
        munmap(shared, sizeof(struct rrl_shared));
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->shared = shared;
    self->rate = rate;
    self->slip = slip;
    self->window = window;
    self->v4_prefix = v4;
    self->v6_prefix = v6;
    self->log = log == Py_None ? NULL : Py_NewRef(log);
    return 0;
}

static void Limiter_dealloc(Limiter *self)
{
    if (self->shared != NULL)
        munmap(self->shared, sizeof(struct rrl_shared));
    PyMem_Free(self->exempt);
    Py_XDECREF(self->log);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* check(reply, host, now_ms=None) -> (verdict, reply or None): what the loop would do. */
static PyObject *Limiter_check(Limiter *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"reply", "host", "now_ms", NULL};
    Py_buffer view;
    const char *host;
    PyObject *when = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*s|O", kwlist, &view, &host, &when))
        return NULL;
    uint64_t now = when == Py_None ? rrl_now() : PyLong_AsUnsignedLongLong(when);
    peer_t peer;
    parse_peer(host, &peer);
    unsigned char *copy = PyMem_Malloc((size_t)view.len + 1);
    size_t length = (size_t)view.len;
    PyObject *result = NULL;
    if (PyErr_Occurred() || copy == NULL) {
        if (copy == NULL)
            PyErr_NoMemory();
    } else {
        memcpy(copy, view.buf, length);
        lock_gil(&native_mutex);
        int verdict = rrl_check(self, &peer, copy, &length, now);
        pthread_mutex_unlock(&native_mutex);
        if (self->log_count)
            rrl_flush_logs(self);
        static const char *names[] = {"pass", "drop", "slip"};
        if (verdict == RRL_DROP)
            result = Py_BuildValue("(sO)", names[verdict], Py_None);
        else
            result = Py_BuildValue("(sy#)", names[verdict], (const char *)copy, (Py_ssize_t)length);
    }
    PyMem_Free(copy);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *Limiter_counts(Limiter *self, PyObject *unused)
{
    uint64_t counts[2][RRL_CLASSES];
    lock_gil(&native_mutex);
    memcpy(counts, limited, sizeof(counts));
    pthread_mutex_unlock(&native_mutex);
    PyObject *out = PyDict_New();
    static const char *actions[2] = {"dropped", "slipped"};
    for (int a = 0; out != NULL && a < 2; a++)
        for (int c = 0; c < RRL_CLASSES; c++) {
            if (!counts[a][c])
                continue;
            PyObject *key = Py_BuildValue("(ss)", actions[a], class_names[c]);
            PyObject *value = PyLong_FromUnsignedLongLong(counts[a][c]);
            if (key == NULL || value == NULL || PyDict_SetItem(out, key, value) < 0)
                Py_CLEAR(out);
            Py_XDECREF(key);
            Py_XDECREF(value);
        }
    return out;
}

/* classify(reply) -> (class, name_wire, qtype): the class a reply is counted in. */
PyObject *native_rrl_classify(PyObject *module, PyObject *args)
{
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "y*", &view))
        return NULL;
    rrl_class_t c;
    rrl_classify(view.buf, (size_t)view.len, &c);
    PyBuffer_Release(&view);
    return Py_BuildValue("(sy#I)", class_names[c.cls], (const char *)c.name,
                         (Py_ssize_t)c.name_length, (unsigned)c.qtype);
}

static PyMethodDef Limiter_methods[] = {
    {"check", (PyCFunction)(void (*)(void))Limiter_check, METH_VARARGS | METH_KEYWORDS,
     "check(reply, host, now_ms=None) -> (verdict, reply): 'pass', 'drop' (None) or "
     "'slip' (the truncated reply), and the bucket charged, as the loop does."},
    {"counts", (PyCFunction)Limiter_counts, METH_NOARGS,
     "counts() -> {(action, class): n}: limited replies of this process, dropped or slipped."},
    {NULL}
};

PyTypeObject LimiterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gslb.server._fastpath.Limiter",
    .tp_doc = "Limiter(rate, slip, window, ipv4_prefix, ipv6_prefix, exempt=(), log=None): "
              "response rate limiting, its buckets shared with processes forked later.",
    .tp_basicsize = sizeof(Limiter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Limiter_init,
    .tp_dealloc = (destructor)Limiter_dealloc,
    .tp_methods = Limiter_methods,
};
