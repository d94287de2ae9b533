/* The native UDP fast path: shared declarations of answer.c (parse, table, reply) and
 * loop.c (the recvmmsg/sendmmsg loop and the module).
 *
 * Every byte that arrives from the network is untrusted: each read below is checked
 * against the datagram's length, and anything this code does not fully understand is a
 * miss, handed to the Python responder, which decides what the query deserves. */
#ifndef GSLB_NATIVE_H
#define GSLB_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stddef.h>

/* The native locks: what the GIL was for the native state, so that the UDP loop answers
 * from its table without the GIL (loop.c), and a Python thread holding the GIL (a GeoIP
 * rebuild, a configuration version, a TCP answer) never delays an answer C can give.
 *
 * Each Table has its own lock (a table being built is never waited for); the state the
 * tables share (the query counts, the latency histogram, the cookie secrets, the probe
 * key, the rate limiters) is under `native_mutex`. Always taken in this order: a Loop's
 * lock, a Table's, native_mutex. The loop takes them without the GIL for the C part of a
 * batch and never waits for the GIL while it holds one. A thread holding the GIL never
 * blocks on one either (lock_gil lets the GIL go while it waits): the holder may be in a
 * method running Python code (an iterator) and need the GIL back before it lets go. */
#include <pthread.h>
extern pthread_mutex_t native_mutex;

static inline void lock_gil(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) != 0) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(m);
        Py_END_ALLOW_THREADS
    }
}

/* `name`, a METH_O, METH_NOARGS or METH_VARARGS method of Table, as `name##_locked`,
 * under the table's lock (table_unlock below); LOCKED_KW the same for a METH_VARARGS |
 * METH_KEYWORDS one. */
#define LOCKED(name)                                                                   \
    static PyObject *name##_locked(Table *self, PyObject *arg)                         \
    {                                                                                  \
        lock_gil(&self->lock);                                                         \
        PyObject *result = name(self, arg);                                            \
        table_unlock(self);                                                            \
        return result;                                                                 \
    }
#define LOCKED_KW(name)                                                                \
    static PyObject *name##_locked(Table *self, PyObject *args, PyObject *kwds)        \
    {                                                                                  \
        lock_gil(&self->lock);                                                         \
        PyObject *result = name(self, args, kwds);                                     \
        table_unlock(self);                                                            \
        return result;                                                                 \
    }

#define HEADER_SIZE 12
#define MAX_NAME 255
#define KEY_TAIL 14        /* qtype, limit, payload, do, nsid, ecs family, ecs source, cookie,
                            * anchored, what follows */
#define MAX_KEY (MAX_NAME + KEY_TAIL)
#define MAX_BUCKET 64      /* steering bucket bytes appended to a steered key */
#define MAX_KEY_EXTRA MAX_NAME  /* what may follow KEY_TAIL: a bucket or a chain gap */
#define MAX_ECS_ADDRESS 16
#define MAX_UDP_REPLY 65535
#define COOKIE_REPLY 24    /* the reply's COOKIE value: client cookie (8), server cookie (16) */

/* The slot count (a power of two, at least `minimum`) of an open-addressing table that
 * holds `count` entries at most half full; 0 when no machine could hold it (the
 * doubling would overflow first). */
static inline size_t slots_for(size_t count, size_t minimum)
{
    if (count > ((size_t)1 << 40))
        return 0;
    size_t slots = minimum;
    while (slots < count * 2)
        slots <<= 1;
    return slots;
}

/* Big-endian fields and ASCII case, as every file here reads and writes them. */
static inline uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}
static inline void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}
static inline unsigned char lower_ascii(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* An owner's records (gslb/dns/blob.py): type (2) ttl (4) rdlength (2) rdata, back to back. */
typedef struct {
    const unsigned char *data;
    size_t length;
} blob_t;

/* The next record at *offset: 1, 0 at the end, -1 when the blob is malformed. */
static inline int next_record(blob_t b, size_t *offset, uint16_t *type, uint32_t *ttl,
                              const unsigned char **rdata, size_t *rdlength)
{
    if (*offset >= b.length)
        return 0;
    if (b.length - *offset < 8)
        return -1;
    const unsigned char *p = b.data + *offset;
    *type = get16(p);
    *ttl = get32(p + 2);
    *rdlength = get16(p + 6);
    if (*rdlength > b.length - *offset - 8)
        return -1;
    *rdata = p + 8;
    *offset += 8 + *rdlength;
    return 1;
}

/* What a query asks, as far as the answer table needs to know. */
typedef struct {
    size_t question_end;            /* offset just past QTYPE/QCLASS */
    size_t name_length;             /* wire length of the question name, root included */
    uint16_t qtype;
    uint16_t flags;                 /* the query's header flags */
    int edns;                       /* an OPT record was present */
    uint16_t payload;               /* its UDP payload size */
    int do_bit;
    int nsid;                       /* an (empty) NSID option was present */
    int ecs_family;                 /* 0: no ECS option */
    int ecs_source;                 /* -1: no ECS option */
    size_t ecs_length;
    int probe;                      /* the node's own readiness probe (set_probe) */
    const unsigned char *cookie_sent; /* the COOKIE option's value in the datagram */
    size_t cookie_length;           /* 0: no COOKIE option; else 8 or 16..40 */
    int cookie;                     /* the reply carries cookie_reply (cookie_check) */
    int cookie_valid;               /* the server cookie is this fleet's, fresh (RRL reads it) */
    unsigned char cookie_reply[COOKIE_REPLY];
    unsigned char ecs_address[MAX_ECS_ADDRESS];
    unsigned char name[MAX_NAME];   /* lowercase question name */
} query_t;

/* SipHash-2-4 (siphash.c) under a per-process random key. */
typedef struct {
    uint64_t k0, k1;
} hash_key_t;
uint64_t siphash24(const hash_key_t *key, const unsigned char *data, size_t n);
int hash_key_init(hash_key_t *key);
void hash_key_from(hash_key_t *key, const unsigned char bytes[16]);  /* as siphash() takes it */
PyObject *native_siphash(PyObject *module, PyObject *args);

/* One rendered response, as the Python answer cache keeps it (see gslb/dns/answers.py). */
typedef struct entry {
    uint32_t key_length;
    uint32_t body_length;           /* counts (6 bytes) + everything after the question */
    uint16_t flags;                 /* header flags without RD/CD */
    uint16_t ecs_length;            /* trailing ECS address bytes replaced per query */
    uint16_t anchor_offset;         /* where the anchor started in the rendered question */
    uint16_t pointer_count;         /* movable pointers: (position in body, target) pairs */
    uint16_t cookie_at;             /* the COOKIE value, counted back from the end; 0: none */
    uint32_t label;                 /* the query-count label it is counted under */
    int32_t zone;                   /* built in C (render.c): its zone, counted by
                                       count_render; -1: Python's, counted by label */
    unsigned char data[];           /* key, then pointers (4 bytes each), then body */
} entry_t;

typedef struct {
    uint64_t hash;
    entry_t *entry;                 /* NULL: empty; TOMBSTONE: moved to the young table */
} slot_t;

typedef struct {
    slot_t *slots;
    size_t mask;                    /* slot count - 1 (a power of two) */
    size_t count;                   /* live entries */
    size_t used;                    /* live entries plus tombstones */
} generation_t;

/* The names of the served zones, for the anchor walk: 32-bit fingerprints of (zone,
 * name), 4 bytes a slot, at most half full (a million-name zone costs 8 MiB). Each
 * name is added once with all its flags, so two names meeting in one slot are a
 * collision, marked NAME_COLLIDED: the walk then trusts nothing there. */
/* A name the table knows in full: its zone's own bytes objects (held), so render.c
 * finds an owner's records by comparing bytes, without a dict lookup (which writes the
 * reference count of the key it compares, and so copies its page in every worker). */
typedef struct {
    PyObject *key;                  /* the name, as the zone's dict or set holds it */
    PyObject *blob;                 /* its records (Zone.records[key]); NULL: an empty
                                       non-terminal */
} owner_t;

/* While names are added, `owners_at` maps each slot to its owner (4 bytes a slot). Once
 * sealed (`seal_names`), the owners sit in slot order and a bit per slot says which
 * slots have one: an owner's index is the count of bits before its slot, from a count
 * per 512 slots and at most eight popcounts. A million names then cost 0.3 MiB there
 * instead of 8. */
typedef struct {
    uint32_t *slots;                /* fingerprint with the low 4 bits holding the flags */
    uint32_t *owners_at;            /* per slot: index + 1 into `owners`; 0: not known.
                                       NULL once sealed */
    uint64_t *held;                 /* sealed: a bit per slot, set where an owner is */
    uint32_t *held_before;          /* sealed: the owners before each 512 slots */
    owner_t *owners;
    uint32_t *owner_zones;          /* the zone of each owner (beside `owners`, which
                                       would pad it to 24 bytes: 8 MiB per million) */
    size_t owner_count, owner_room;
    size_t mask;
    size_t count;
} names_t;

#define NAME_EXISTS 1
#define NAME_CUT 2
#define NAME_DNAME 4
#define NAME_COLLIDED 8             /* two names share this fingerprint */

/* A signed zone's NSEC or NSEC3 chain (denial.c): owners (wire names back to back,
 * `offsets` into them) in canonical or hash order, and for NSEC3 the hashes. */
typedef struct {
    unsigned char *names;
    size_t *offsets;
    unsigned char *hashes;                /* 20 bytes per owner (NSEC3) */
    size_t count;
    int nsec3;
    unsigned char salt[255];
    size_t salt_length;
    unsigned iterations;
} denial_t;

/* A served zone: its origin, and (zone_data) the zone's own records for render.c:
 * `Zone.records` (owner -> blob), `Zone.ents`, the apex blob, all referenced here. */
typedef struct {
    unsigned char *origin;                /* lowercase; one allocation with origin_case */
    unsigned char *origin_case;           /* as configured: the SOA owner, the metrics */
    size_t length;
    PyObject *records, *ents, *apex;      /* NULL until zone_data(): no answers built */
    int signed_zone;
    uint32_t negative_ttl;                /* RFC 2308: min(SOA TTL, SOA MINIMUM) */
    denial_t *denial;                     /* a signed zone's chain; NULL: not given */
} zone_t;

/* Steering (steer.c): a record's rule map blocks for one address family, read in place
 * from the rule map's bytes objects (held here): records with the same rules share one
 * rule map, megabytes with a City database, and so share its blocks here too. */
typedef struct {
    const unsigned char *starts;    /* big-endian block starts, 4 or 16 bytes each */
    const unsigned char *prefixes;
    const unsigned char *results;   /* native int32 rule indexes (-1: no rule), unaligned */
    size_t count;
    PyObject *held[3];              /* the bytes objects they point into */
} rule_blocks_t;

typedef struct {
    uint32_t version;               /* the record's state version: part of its keys */
    int servable;                   /* the bucket is version, rule, block (and slot) only */
    int weighted;                   /* the draw's slot is part of the bucket */
    int hashed;                     /* the client network's `hash` slot is too */
    rule_blocks_t v4, v6;
    int located;                    /* closest or latency: the location part follows */
    int closest, latency;           /* which of them */
    const unsigned char *closest_classes;  /* native int32 per location entry */
    size_t closest_count;
    PyObject *closest_held;
} steer_record_t;

#define MAX_STEERED_TYPES 8
typedef struct {
    unsigned char name[MAX_NAME];
    size_t length;
    int type_count;
    uint16_t qtypes[MAX_STEERED_TYPES];
    int32_t records[MAX_STEERED_TYPES];
    int32_t cname_record;           /* answers every other type; -1: none */
} steer_owner_t;

typedef struct {
    steer_record_t *records;
    size_t record_count;
    steer_owner_t *owners;
    size_t owner_count, owner_room; /* owners grow by doubling */
    uint32_t *owner_slots;          /* owner index + 1, by hash; 0: empty */
    size_t owner_mask;
    /* gslb.steering.geo.LocationMap per family (results: entries, prefixes: capped
     * network lengths; count 0: no database), and the RTT table's classes
     * (gslb.steering.located.LatencyClasses): network-key runs per family (prefixes
     * unused), the region class of each location entry. */
    rule_blocks_t where[2];
    rule_blocks_t nets[2];
    const unsigned char *regions;
    size_t region_count;
    PyObject *regions_held;
    int network_keys, latency_set;
    PyObject *dropped;              /* maps let go of, freed once the lock is (table_unlock) */
} steering_t;

/* kind (1), version (4), rule (4), family (1), scope (1), hash slot (2), slot (1) */
#define STEER_BUCKET 14
/* then, for closest and latency records: closest class (4), its scope (1), latency
 * network-key class (4), region class (4), its scope (1) */
#define LOCATION_BUCKET 14

typedef struct {
    PyObject_HEAD
    generation_t young, old;
    size_t capacity;                /* entries per generation */
    int nsid_configured;
    int cookies;                    /* replies carry DNS cookies (set_cookies holds the secrets) */
    uint16_t max_payload;
    hash_key_t key;                 /* keys every hash below: random per process */
    names_t names;
    zone_t *zones;
    size_t zone_count, zone_room;   /* zones grow by doubling */
    uint32_t *zone_slots;           /* zone index + 1 by hash of the origin; 0: empty */
    size_t zone_mask;
    size_t longest_origin;          /* no longer suffix of a name can be a zone's origin */
    int root_zone;                  /* index of the root zone, -1 when none */
    steering_t steering;
    pthread_mutex_t lock;           /* see the native locks above */
} Table;

extern PyTypeObject TableType;

/* Let go of the table's lock; then free what a method let go of (steering.dropped, see
 * drop_later in steer.c). A GeoIP rebuild replaces rule and location maps of tens of
 * megabytes each; freeing one gives its pages back to the system, which takes
 * milliseconds the UDP loop must not spend waiting for the lock. */
static inline void table_unlock(Table *t)
{
    PyObject *dropped = t->steering.dropped;
    t->steering.dropped = NULL;
    pthread_mutex_unlock(&t->lock);
    Py_XDECREF(dropped);
}

/* Counts of answers given in C, for the metrics (read by `native_counts`): hits per
 * label id, and the latency histogram of sampled answers (as gslb.observability.taps:
 * slot i counts answers under 2**i microseconds, the last slot the sum in ns). */
#define LATENCY_SLOTS 65
extern uint64_t *label_hits;
extern size_t label_room;
extern uint64_t latency[LATENCY_SLOTS];
PyObject *native_counts(PyObject *module, PyObject *unused);

/* set_probe(option_code, key): queries whose EDNS option `option_code` holds `key` are
 * /ready's own probes (gslb/server/probe.py): answered, counted nowhere. */
PyObject *set_probe(PyObject *module, PyObject *args);

/* Parse a datagram; 1 when the table may answer it, 0 when it is Python's to decide. */
int parse_query(const unsigned char *data, size_t length, query_t *query);

/* The client who asked: address family (4 or 6, 0 unknown), address bytes, and the
 * random slot (0-63) of the weighted draw for this query. */
typedef struct {
    int family;
    unsigned char address[16];
    unsigned slot;
} peer_t;

/* DNS cookies (cookie.c, as gslb/dns/cookies.py): with the table's cookies on and a
 * COOKIE option in the query, set `cookie`, `cookie_valid` and `cookie_reply` for this
 * client. Call after parse_query, before table_answer. */
void cookie_check(const Table *t, query_t *q, const peer_t *peer);
PyObject *set_cookies(PyObject *module, PyObject *args);

/* Write the reply for `query` into `out` (room for `room` bytes); its length, or 0 on a
 * miss. `anchored` tells whether a per-anchor entry served it. Without `may_build`
 * (the loop, without the GIL) a reply that would be built from the zone data (whose
 * dicts only the GIL guards) is a miss too. Under the native lock. */
size_t table_answer(Table *table, const unsigned char *data, const query_t *query,
                    const peer_t *peer, unsigned char *out, size_t room, int *anchored,
                    int may_build);

/* The name set and the origin index (answer.c), for render.c. */
unsigned names_flags(const Table *t, size_t zone, const unsigned char *name, size_t n);
/* 1 and the name's owner_t when the zone has the name, 0 when it has not, -1 when the
 * name set cannot tell (two names share its slot, or the zone gave no data). */
int names_owner(const Table *t, size_t zone, const unsigned char *name, size_t n,
                const owner_t **owner);
int zone_of(const Table *t, const unsigned char *name, size_t n);

/* 1 when the table was initialised, else 0 with RuntimeError set. */
int table_ready(const Table *t);

/* Is this an uncompressed wire name of n bytes? 0, else -1 with ValueError set. */
int check_name(const char *name, Py_ssize_t n);

/* With DO, the chain gap a missing name's anchored answer is keyed by (Denial.gap):
 * 1 and the covering record's owner, 0 when the answer has none (unsigned zone, no
 * chain, a cut), -1 when C cannot tell (a miss). `anchor`: the anchor's offset. */
int denial_gap(const Table *t, const unsigned char *name, size_t n, size_t anchor,
               const unsigned char **gap, size_t *gap_length);
PyObject *Table_denial(Table *self, PyObject *args);
void denial_free(denial_t *d);
PyObject *native_nsec3_hash(PyObject *module, PyObject *args);

/* Where a built reply's compression pointers are (position, target), so that an
 * anchored reply can be kept as a table entry whose pointers move with the name. */
#define MAX_MOVES 64
typedef struct {
    uint16_t position[MAX_MOVES], target[MAX_MOVES];
    size_t count;                   /* more than MAX_MOVES: not kept */
    size_t anchor;                  /* the anchor the reply was built for (its offset) */
} moves_t;

/* The reply built from the zone data (render.c) for a query the table has no entry
 * for, from `zone` (the one answering the question); 0 when it is Python's to give.
 * `limit` is the reply's size limit. */
size_t table_render(Table *t, int zone, const unsigned char *data, const query_t *q,
                    size_t limit, unsigned char *out, size_t room, moves_t *moves);
/* Count an answer given in C from the zone data, under its zone, type and rcode (with
 * BUILT_HIT: served from an entry built so before); -1 when it cannot be counted. */
#define BUILT_HIT 0x80
int count_render(const zone_t *z, uint16_t qtype, int rcode);
/* [(origin_wire, qtype, rcode, count)]: the answers table_render gave, for the metrics. */
PyObject *render_counts(void);

/* The steering bucket of a query into `out`: its length; 0 when the name is not
 * steered; -1 when it is but C cannot compute the bucket (a miss). */
int steer_bucket(const steering_t *s, const query_t *q, int peer_family,
                 const unsigned char *peer, unsigned slot, unsigned char *out);
void steering_free(steering_t *s);
/* Is this lowercase wire name a steered owner? */
int steer_covers(const steering_t *s, const unsigned char *name, size_t n);
PyObject *Table_add_record(Table *self, PyObject *args);
PyObject *Table_set_blocks(Table *self, PyObject *args);
PyObject *Table_set_closest(Table *self, PyObject *args);
PyObject *Table_add_owner(Table *self, PyObject *args);
PyObject *Table_set_versions(Table *self, PyObject *arg);
PyObject *Table_set_locations(Table *self, PyObject *args);
PyObject *Table_set_latency(Table *self, PyObject *args);

/* Response rate limiting (rrl.c). */
typedef struct {
    int family;
    unsigned prefix;
    unsigned char address[16];
} rrl_network_t;

typedef struct {
    int cls;
    uint16_t qtype;                 /* positive answers only, else 0 */
    size_t name_length;
    size_t question_end;            /* where a truncated (slipped) reply ends */
    unsigned char name[MAX_NAME];
} rrl_class_t;

struct rrl_shared;
#define RRL_LOG_PER_SECOND 5        /* log lines about limited networks, whole node */
typedef struct {
    int family;
    int cls;
    size_t name_length;
    unsigned char network[16];
    unsigned char name[MAX_NAME];
} rrl_log_t;

typedef struct {
    PyObject_HEAD
    int64_t rate, slip, window;
    unsigned v4_prefix, v6_prefix;
    rrl_network_t *exempt;
    size_t exempt_count;
    hash_key_t key;
    struct rrl_shared *shared;      /* the buckets: mapped shared, inherited by forks */
    PyObject *log;                  /* callable(network, class, name) or NULL */
    rrl_log_t logs[RRL_LOG_PER_SECOND]; /* lines for `log`, written without the GIL */
    size_t log_count;
} Limiter;

extern PyTypeObject LimiterType;
enum { RRL_PASS, RRL_DROP, RRL_SLIP };
uint64_t rrl_now(void);
void rrl_classify(const unsigned char *reply, size_t n, rrl_class_t *c);
int rrl_check(Limiter *l, const peer_t *peer, unsigned char *reply, size_t *length,
              uint64_t now);
/* Hand the log lines rrl_check kept to the limiter's `log` callable: with the GIL, not
 * the native lock (the callable is Python). */
void rrl_flush_logs(Limiter *l);
PyObject *native_rrl_classify(PyObject *module, PyObject *args);

#endif
