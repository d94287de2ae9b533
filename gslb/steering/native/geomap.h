/* Geo steering maps in C: the MaxMind DB search-tree walk (mmdb.c), the rule blocks and
 * their lookup (blocks.c), and the Python module over both (module.c).
 *
 * A database file is untrusted input: every node number, record value, data offset and
 * length read from it is checked against the file before use, loops in the tree and
 * costly data are cut off by budgets, and whatever does not fit the format is an error
 * naming the database and the offset, never a read outside the file. Nothing here calls
 * Python: module.c runs the walk without the GIL. */
#ifndef GSLB_GEOMAP_H
#define GSLB_GEOMAP_H

#include <stddef.h>
#include <stdint.h>

typedef unsigned __int128 u128;

#define GEO_MAX_DATABASES 8
#define GEO_ERROR_SIZE 256
#define GEO_ASN_NONE INT64_MIN

/* uint64 -> int32, open addressing; UINT64_MAX is never a key. A key and its value share
 * a slot: one cache miss a lookup (the walk makes one per network). */
typedef struct {
    uint64_t key;
    int32_t value;
} memo_slot_t;

typedef struct {
    memo_slot_t *slots;
    size_t mask, count;
} memo_t;

int memo_get(const memo_t *memo, uint64_t key, int32_t *value);
int memo_put(memo_t *memo, uint64_t key, int32_t value); /* -1: out of memory */
void memo_free(memo_t *memo);

/* Ids interned by content: the slots hold ids, the caller compares contents. */
typedef struct {
    int32_t *slots; /* -1: empty */
    size_t mask, count;
} idtab_t;

/* Growable array of fixed-size items. */
typedef struct {
    uint8_t *bytes;
    size_t count, capacity, width;
} vec_t;

void *vec_push(vec_t *vec); /* room for one more item; NULL: out of memory */
void vec_free(vec_t *vec);

/* A family's partition: run i covers [start i, start i+1 - 1] (the last run to the top of
 * the family) and has id i; starts are big-endian, `width` bytes each, the first 0. */
typedef struct {
    vec_t starts;  /* width 4 or 16 */
    vec_t ids;     /* int32 */
    vec_t prefixes; /* uint8, the location walk only: see walk_t.locations */
} runs_t;

/* What rules test of a place: string ids (-1: unknown), the ASN, and which databases had
 * a record for it (bit i: database i). */
typedef struct {
    int32_t continent, country, subdivision;
    int64_t asn;
    uint32_t mask;
    uint32_t coordinates;  /* the location walk: GEO_HAS_* and GEO_ODD_* bits */
    double latitude, longitude;
} fields_t;

#define GEO_HAS_LATITUDE 1u
#define GEO_HAS_LONGITUDE 2u
#define GEO_ODD_LATITUDE 4u   /* present, but no double or float: a number only Python reads */
#define GEO_ODD_LONGITUDE 8u
#define GEO_ALIAS (-2)        /* the location walk's id for IPv4's ranges of the IPv6 family */

typedef struct {
    const uint8_t *bytes;
    uint32_t length;
    int database;
} string_ref_t;

/* A place: continent, country, subdivision string ids (-1: unknown). */
typedef struct {
    int32_t continent, country, subdivision;
} place_t;

typedef struct {
    const uint8_t *tree;   /* the file; the search tree at its start */
    uint32_t node_count;
    int record_size;       /* 24, 28 or 32 */
    int ip_version;        /* 4 or 6 */
    const uint8_t *data;   /* the data section */
    size_t data_size;
    uint32_t ipv4_start;   /* the record at ::/96 (at the root of an IPv4 tree) */
    uint64_t reads_left;   /* node reads allowed: a tree reads each node once */
    uint64_t work_left;    /* control bytes the decoder may still read */
} db_t;

typedef struct {
    db_t db[GEO_MAX_DATABASES];
    int count;
    runs_t runs[2];        /* IPv4, IPv6 */
    vec_t entries;         /* fields_t: the ids the runs hold */
    vec_t strings;         /* string_ref_t */
    idtab_t entry_index, string_index;
    memo_t records;        /* (database, data offset) -> entry id */
    memo_t values;         /* (database, kind, offset) -> string id */
    memo_t merged;         /* (entry, entry) -> entry */
    uint32_t last_state[GEO_MAX_DATABASES];  /* the last leaf: each database's record */
    int32_t last_entry[GEO_MAX_DATABASES];   /* and its entry (where it had a record) */
    int32_t last_key;
    int have_last;
    /* The location walk (what `locate` answers, for closest and latency): entries hold
     * place and coordinates (no ASN); a run also keeps the length of the network the
     * databases' leaves give it (capped at cap[family]), and runs merge only when both
     * agree; ::/96 and the aliases of the IPv4 subtree are GEO_ALIAS (a lookup there
     * follows the alias, which this walk does not). Lookups are of client networks,
     * at most cap[family] long: below that length only the leftmost leaf is walked. */
    int locations;
    int cap[2];
    int failed;            /* the database an error is about, -1: none */
    int no_memory;
    char error[GEO_ERROR_SIZE];
} walk_t;

void walk_init(walk_t *w);
/* Add a database: the whole file, and where its metadata marker starts. -1 on error. */
int walk_add(walk_t *w, const uint8_t *file, size_t size, uint32_t node_count,
             int record_size, int ip_version, size_t data_end);
int walk_run(walk_t *w); /* both families; -1 on error (w->error, w->failed, w->no_memory) */
void walk_free_memos(walk_t *w); /* the lookup tables, once the walk is done */
/* The distinct places of the entries (place_t, into `places`) and each entry's place
 * (`entry_place`, entries.count int32). -1 on error (out of memory). */
int walk_places(walk_t *w, vec_t *places, int32_t *entry_place);
void walk_free(walk_t *w);

/* Rule blocks: the geo partition (runs with key ids, each key's rule, `unknown` for id -1)
 * over the subnet partition (runs with rule indexes), where a subnet's rule wins when it
 * comes first; neighbours with the same rule merged, each maximal run cut into the fewest
 * aligned CIDR blocks. Rule -1 is "no rule". */
typedef struct {
    vec_t starts;          /* width bytes each, big-endian */
    vec_t prefixes;        /* uint8 */
    vec_t results;         /* int32 */
} blocks_t;

int rule_blocks(int width, const uint8_t *geo_starts, const uint8_t *geo_ids, size_t geo_count,
                const uint8_t *rule_of, size_t keys, int32_t unknown,
                const uint8_t *subnet_starts, const uint8_t *subnet_rules, size_t subnet_count,
                blocks_t *out, char *error);
void blocks_free(blocks_t *blocks);

/* The first rule of each key: the earlier of its place's rule and its ASN's rule (asns
 * sorted, GEO_ASN_NONE: no ASN); -1 when neither. -1 if an index is out of range. */
int key_rules(const uint8_t *key_place, const uint8_t *key_asn, size_t keys,
              const uint8_t *place_rules, size_t places, const uint8_t *asns,
              const uint8_t *asn_rules, size_t asn_count, int32_t *out, char *error);

/* Index of the last start <= address (starts sorted, `width` bytes each); -1 if none. */
long find_start(const uint8_t *starts, size_t count, int width, const uint8_t *address);

static inline u128 load_be(const uint8_t *p, int width) {
    u128 value = 0;
    for (int i = 0; i < width; i++)
        value = value << 8 | p[i];
    return value;
}

static inline void store_be(uint8_t *p, int width, u128 value) {
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (uint8_t)value;
        value >>= 8;
    }
}

#endif
