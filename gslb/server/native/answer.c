/* The answer table: rendered responses keyed like the Python answer cache's entries,
 * and the parse, anchor walk and patching that serve them without entering Python.
 *
 * The Python side (gslb/server/fastpath.py) fills the table: every entry the Python
 * answer cache stores for a UDP variant is put here instead, under a key built by the
 * same rules (`key_for` in fastpath.py and `write_key` below must agree byte for
 * byte). A query is answered here only when it is a plain QUERY for class IN with one
 * uncompressed question and at most one OPT record that parses cleanly; everything
 * else (errors, TCP-only types, CHAOS, malformed bytes) is a miss. */
#include "native.h"
#include <arpa/inet.h>
#include <limits.h>
#include <string.h>

#define QR 0x8000
#define OPCODE_MASK 0x7800
#define RD_CD 0x0110
#define OPT 41
#define DS 43
#define CLASS_IN 1
#define MIN_PAYLOAD 512
#define NO_EDNS_LIMIT 512
#define OPTION_NSID 3
#define OPTION_ECS 8
#define OPTION_COOKIE 10
#define TOMBSTONE ((entry_t *)1)


uint64_t *label_hits;
size_t label_room;
uint64_t latency[LATENCY_SLOTS];

static int label_reserve(uint32_t label)
{
    if (label < label_room)
        return 0;
    size_t room = label_room ? label_room : 64;
    while (room <= label)
        room *= 2;
    uint64_t *grown = PyMem_Realloc(label_hits, room * sizeof(uint64_t));
    if (grown == NULL)
        return -1;
    memset(grown + label_room, 0, (room - label_room) * sizeof(uint64_t));
    label_hits = grown;
    label_room = room;
    return 0;
}

/* native_counts() -> (label hits as array('Q') bytes, latency as array('Q') bytes,
 * [(origin_wire, qtype, rcode, count)] of the answers built in C) */
PyObject *native_counts(PyObject *module, PyObject *unused)
{
    lock_gil(&native_mutex);
    PyObject *built = render_counts();
    PyObject *result = built == NULL ? NULL : Py_BuildValue(
        "(y#y#N)", (const char *)label_hits, (Py_ssize_t)(label_room * sizeof(uint64_t)),
        (const char *)latency, (Py_ssize_t)sizeof(latency), built);
    pthread_mutex_unlock(&native_mutex);
    return result;
}

/* ---- the readiness probe's key ------------------------------------------------- */

#define PROBE_KEY_SIZE 16
static unsigned char probe_key[PROBE_KEY_SIZE];
static uint16_t probe_code;
static int probe_set;

PyObject *set_probe(PyObject *module, PyObject *args)
{
    unsigned int code;
    const char *key;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "Iy#", &code, &key, &n))
        return NULL;
    if (code > 0xFFFF || n != PROBE_KEY_SIZE) {
        PyErr_SetString(PyExc_ValueError, "set_probe(code, key): a 16-bit code, a 16-byte key");
        return NULL;
    }
    lock_gil(&native_mutex);
    memcpy(probe_key, key, PROBE_KEY_SIZE);
    probe_code = (uint16_t)code;
    probe_set = 1;
    pthread_mutex_unlock(&native_mutex);
    Py_RETURN_NONE;
}

/* Does an option's value hold the probe key? No early exit a client could time. */
static int is_probe_key(const unsigned char *value, size_t size)
{
    if (size != PROBE_KEY_SIZE)
        return 0;
    unsigned char differ = 0;
    for (size_t i = 0; i < PROBE_KEY_SIZE; i++)
        differ |= (unsigned char)(value[i] ^ probe_key[i]);
    return differ == 0;
}

/* ---- parse ---------------------------------------------------------------------- */

static int special_type(uint16_t qtype)
{
    /* IXFR, AXFR: transfers, the handler's own path. Every other type is looked up: the
     * table only holds what the Python answer path stored under the same key. */
    return qtype == 251 || qtype == 252;
}

/* The EDNS options: NSID must be empty, ECS valid (RFC 7871 6, 7.1.2), one COOKIE of 8
 * or 16 to 40 bytes (RFC 7873 5.2.2; else FORMERR, Python's), the probe's noted (the
 * last one counts, as in gslb/dns/edns.py), others skipped. */
static int parse_options(const unsigned char *p, size_t length, query_t *q)
{
    size_t offset = 0;
    while (offset < length) {
        if (length - offset < 4)
            return 0;
        uint16_t code = get16(p + offset), size = get16(p + offset + 2);
        offset += 4;
        if (size > length - offset)
            return 0;
        const unsigned char *value = p + offset;
        offset += size;
        if (code == OPTION_NSID) {
            if (size)
                return 0;
            q->nsid = 1;
        } else if (code == OPTION_ECS) {
            if (q->ecs_family || size < 4)
                return 0;
            unsigned family = get16(value), source = value[2], scope = value[3];
            size_t address = size - 4u;
            if ((family != 1 && family != 2) || scope != 0)
                return 0;
            if (source > (family == 1 ? 32u : 128u) || address != (source + 7) / 8)
                return 0;
            if (source % 8 && (value[size - 1] & (0xFF >> (source % 8))))
                return 0;
            q->ecs_family = (int)family;
            q->ecs_source = (int)source;
            q->ecs_length = address;
            memcpy(q->ecs_address, value + 4, address);
        } else if (code == OPTION_COOKIE) {
            if (q->cookie_length || size < 8 || (size > 8 && size < 16) || size > 40)
                return 0;
            q->cookie_sent = value;
            q->cookie_length = size;
        } else if (probe_set && code == probe_code) {
            q->probe = is_probe_key(value, size);
        }
    }
    return 1;
}

int parse_query(const unsigned char *data, size_t length, query_t *q)
{
    if (length < HEADER_SIZE)
        return 0;
    uint16_t flags = get16(data + 2);
    if (flags & (QR | OPCODE_MASK) || get16(data + 4) != 1 || get16(data + 6) || get16(data + 8))
        return 0;
    uint16_t arcount = get16(data + 10);
    if (arcount > 1)
        return 0;
    size_t offset = HEADER_SIZE;
    for (;;) {  /* the question name: plain labels only */
        if (offset >= length)
            return 0;
        unsigned label = data[offset];
        if (label > 63)
            return 0;
        if (offset + 1 - HEADER_SIZE > MAX_NAME)
            return 0;
        if (label == 0)
            break;
        offset += label + 1u;
    }
    size_t name_length = offset + 1 - HEADER_SIZE;
    offset += 1;
    if (length - offset < 4)
        return 0;
    q->qtype = get16(data + offset);
    if (get16(data + offset + 2) != CLASS_IN || special_type(q->qtype))
        return 0;
    offset += 4;
    q->question_end = offset;
    q->name_length = name_length;
    q->flags = flags;
    q->edns = q->do_bit = q->nsid = q->ecs_family = q->probe = 0;
    q->cookie = q->cookie_valid = 0;
    q->cookie_length = 0;
    q->ecs_source = -1;
    q->ecs_length = 0;
    q->payload = 0;
    if (arcount) {  /* the OPT record: owned by the root, last in the datagram */
        if (length - offset < 11 || data[offset] != 0 || get16(data + offset + 1) != OPT)
            return 0;
        q->payload = get16(data + offset + 3);
        const unsigned char *ttl = data + offset + 5;
        if (ttl[1] != 0)  /* EDNS version: BADVERS is the handler's to answer */
            return 0;
        q->do_bit = (ttl[2] & 0x80) != 0;
        size_t rdlength = get16(data + offset + 9);
        offset += 11;
        if (rdlength != length - offset || !parse_options(data + offset, rdlength, q))
            return 0;
        q->edns = 1;
        offset += rdlength;
    }
    if (offset != length)
        return 0;
    for (size_t i = 0; i < name_length; i++) {
        unsigned char c = data[HEADER_SIZE + i];
        q->name[i] = lower_ascii(c);
    }
    return 1;
}

/* ---- keys ----------------------------------------------------------------------- */

/* name + qtype, limit, payload, DO, NSID, ECS family, ECS source, cookie, anchored: the
 * Python answer cache's variant tuple in fixed-width fields. */
static unsigned size_limit(const Table *t, const query_t *q)
{
    unsigned limit = NO_EDNS_LIMIT;
    if (q->edns) {
        limit = q->payload < t->max_payload ? q->payload : t->max_payload;
        if (limit < MIN_PAYLOAD)
            limit = MIN_PAYLOAD;
    }
    return limit;
}

static size_t write_key(const Table *t, const query_t *q, const unsigned char *name,
                        size_t name_length, int anchored, unsigned char *key)
{
    unsigned limit = size_limit(t, q);
    memcpy(key, name, name_length);
    unsigned char *tail = key + name_length;
    put16(tail, q->qtype);
    put16(tail + 2, limit);
    put16(tail + 4, q->edns ? t->max_payload : 0);
    tail[6] = (unsigned char)(q->edns && q->do_bit);
    tail[7] = (unsigned char)(q->edns && q->nsid && t->nsid_configured);
    tail[8] = (unsigned char)q->ecs_family;
    put16(tail + 9, (unsigned)(q->ecs_source & 0xFFFF));
    tail[11] = (unsigned char)q->cookie;
    tail[12] = (unsigned char)anchored;
    tail[13] = 0;  /* 1: a steering bucket follows; 2: a signed zone's chain gap */
    return name_length + KEY_TAIL;
}

/* Entries and slots come from the C allocator, not Python's: the loop stores and
 * promotes them without the GIL, which pymalloc needs; and pymalloc would put them in
 * the free slots of pools the zone's objects filled before the workers forked, and
 * every entry a worker keeps would then copy a page it shared. */
static entry_t *entry_alloc(size_t size) { return PyMem_RawMalloc(size); }
static void entry_free(entry_t *e) { PyMem_RawFree(e); }

/* ---- generations: open addressing, linear probing, two generations as a cheap LRU -- */

static int generation_init(generation_t *g, size_t capacity)
{
    size_t slots = slots_for(capacity, 16);
    g->slots = slots ? PyMem_RawCalloc(slots, sizeof(slot_t)) : NULL;
    if (g->slots == NULL)
        return -1;
    g->mask = slots - 1;
    g->count = g->used = 0;
    return 0;
}

static void generation_free(generation_t *g)
{
    if (g->slots == NULL)
        return;
    for (size_t i = 0; i <= g->mask; i++)
        if (g->slots[i].entry != NULL && g->slots[i].entry != TOMBSTONE)
            entry_free(g->slots[i].entry);
    PyMem_RawFree(g->slots);
    g->slots = NULL;
}

/* The slot holding `key`, or NULL. */
static slot_t *generation_find(generation_t *g, uint64_t h, const unsigned char *key, size_t n)
{
    for (size_t i = h & g->mask;; i = (i + 1) & g->mask) {
        slot_t *s = &g->slots[i];
        if (s->entry == NULL)
            return NULL;
        if (s->hash == h && s->entry != TOMBSTONE && s->entry->key_length == n &&
            memcmp(s->entry->data, key, n) == 0)
            return s;
    }
}

/* Insert (or replace) in the young generation; a full one becomes the old one. */
static int table_insert(Table *t, uint64_t h, entry_t *e)
{
    slot_t *existing = generation_find(&t->young, h, e->data, e->key_length);
    if (existing != NULL) {
        entry_free(existing->entry);
        existing->entry = e;
        return 0;
    }
    if (t->young.used >= t->capacity) {
        generation_t fresh;
        if (generation_init(&fresh, t->capacity) < 0)
            return -1;
        generation_free(&t->old);
        t->old = t->young;
        t->young = fresh;
    }
    generation_t *g = &t->young;
    size_t i = h & g->mask;
    while (g->slots[i].entry != NULL)
        i = (i + 1) & g->mask;
    g->slots[i].hash = h;
    g->slots[i].entry = e;
    g->count++;
    g->used++;
    return 0;
}

static entry_t *table_get(Table *t, const unsigned char *key, size_t n)
{
    uint64_t h = siphash24(&t->key, key, n);
    slot_t *s = generation_find(&t->young, h, key, n);
    if (s != NULL)
        return s->entry;
    s = generation_find(&t->old, h, key, n);
    if (s == NULL)
        return NULL;
    entry_t *e = s->entry;  /* promote: detach from the old generation first */
    s->entry = TOMBSTONE;
    t->old.count--;
    if (table_insert(t, h, e) < 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* ---- zone names and the anchor walk (mirrors WireIndex.anchor in gslb/dns/answers.py) */

/* A name's fingerprint (upper bits, never 0, low 4 bits clear) and its home slot; the
 * zone is mixed in so the same name in two zones lands apart. */
static uint32_t name_hash(const hash_key_t *key, size_t zone, const unsigned char *name,
                          size_t n, uint64_t *home)
{
    uint64_t h = siphash24(key, name, n) ^ ((uint64_t)(zone + 1) * 0x9E3779B97F4A7C15ULL);
    h ^= h >> 29;  /* the zone's bits reach the fingerprint and the home slot alike */
    uint32_t print = (uint32_t)(h >> 32) & ~(uint32_t)15;
    *home = h;
    return print ? print : 16;
}

/* Room for `count` names at most half full: fingerprints carry no home slot, so the
 * set never grows; the Python side reserves every zone's names before adding them. */
static void names_free(names_t *names)
{
    for (size_t i = 0; i < names->owner_count; i++) {
        Py_DECREF(names->owners[i].key);
        Py_XDECREF(names->owners[i].blob);
    }
    PyMem_Free(names->owners);
    PyMem_Free(names->owner_zones);
    PyMem_Free(names->owners_at);
    PyMem_Free(names->held);
    PyMem_Free(names->held_before);
    PyMem_Free(names->slots);
    memset(names, 0, sizeof(*names));
}

/* The owners in slot order with a bit per slot in place of `owners_at`: copied into a
 * new array in one pass over the slots (independent reads the memory system overlaps;
 * moving them in place followed one chain of dependent reads, three times slower for a
 * million names). Owners noted in a slot that a collision then voided are let go.
 * Nothing is added after. */
static int names_seal(names_t *names)
{
    if (names->owners_at == NULL)
        return 0;  /* sealed already, or nothing reserved */
    size_t slots = names->mask + 1, count = names->owner_count, kept = 0;
    uint64_t *held = PyMem_Calloc((slots + 63) / 64, sizeof(uint64_t));
    uint32_t *before = PyMem_Calloc((slots + 511) / 512, sizeof(uint32_t));
    uint64_t *moved = PyMem_Calloc((count + 63) / 64 + 1, sizeof(uint64_t));
    owner_t *owners = PyMem_Malloc((count ? count : 1) * sizeof(owner_t));
    uint32_t *zones = PyMem_Malloc((count ? count : 1) * sizeof(uint32_t));
    if (held == NULL || before == NULL || moved == NULL || owners == NULL || zones == NULL) {
        PyMem_Free(held);
        PyMem_Free(before);
        PyMem_Free(moved);
        PyMem_Free(owners);
        PyMem_Free(zones);
        return -1;
    }
    for (size_t i = 0; i < slots; i++) {
        if (i % 512 == 0)
            before[i / 512] = (uint32_t)kept;
        uint32_t at = names->owners_at[i];
        if (at == 0)
            continue;
        held[i / 64] |= (uint64_t)1 << (i % 64);
        owners[kept] = names->owners[at - 1];
        zones[kept++] = names->owner_zones[at - 1];
        moved[(at - 1) / 64] |= (uint64_t)1 << ((at - 1) % 64);
    }
    for (size_t i = 0; i < count; i++)
        if (!(moved[i / 64] >> (i % 64) & 1)) {
            Py_DECREF(names->owners[i].key);
            Py_XDECREF(names->owners[i].blob);
        }
    PyMem_Free(moved);
    PyMem_Free(names->owners);
    PyMem_Free(names->owner_zones);
    PyMem_Free(names->owners_at);
    names->owners = owners;
    names->owner_zones = zones;
    names->owners_at = NULL;
    names->owner_count = names->owner_room = kept;
    names->held = held;
    names->held_before = before;
    return 0;
}

/* The owner noted in slot `i`, as index + 1; 0: none. */
static size_t names_owner_at(const names_t *names, size_t i)
{
    if (names->owners_at != NULL)
        return names->owners_at[i];
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (!(names->held[i / 64] & bit))
        return 0;
    size_t rank = names->held_before[i / 512];
    for (size_t w = i / 512 * 8; w < i / 64; w++)
        rank += (size_t)__builtin_popcountll(names->held[w]);
    return rank + (size_t)__builtin_popcountll(names->held[i / 64] & (bit - 1)) + 1;
}

static int names_reserve(names_t *names, size_t count)
{
    size_t slots = slots_for(count, 1024);
    uint32_t *fresh = slots ? PyMem_Calloc(slots, sizeof(uint32_t)) : NULL;
    uint32_t *owners_at = slots ? PyMem_Calloc(slots, sizeof(uint32_t)) : NULL;
    if (fresh == NULL || owners_at == NULL) {
        PyMem_Free(fresh);
        PyMem_Free(owners_at);
        return -1;
    }
    names_free(names);
    names->slots = fresh;
    names->owners_at = owners_at;
    names->mask = slots - 1;
    return 0;
}

/* Note the zone's own objects for a name just put in `slot`. */
static int names_keep(names_t *names, size_t slot, PyObject *key, PyObject *blob, size_t zone)
{
    if (names->owner_count == names->owner_room) {
        size_t room = names->owner_room ? names->owner_room * 2 : 1024;
        owner_t *grown = PyMem_Realloc(names->owners, room * sizeof(owner_t));
        if (grown == NULL)
            return -1;
        names->owners = grown;
        uint32_t *zones = PyMem_Realloc(names->owner_zones, room * sizeof(uint32_t));
        if (zones == NULL)
            return -1;
        names->owner_zones = zones;
        names->owner_room = room;
    }
    names->owners[names->owner_count] = (owner_t){Py_NewRef(key), Py_XNewRef(blob)};
    names->owner_zones[names->owner_count] = (uint32_t)zone;
    names->owners_at[slot] = (uint32_t)++names->owner_count;
    return 0;
}

/* Add a name by its fingerprint `h` and home slot: the slot it took (>= 0), -1 when it
 * collided, -2 when there is no room for it. */
static int names_add(names_t *names, uint32_t h, uint64_t home, unsigned flag)
{
    if (names->slots == NULL || names->owners_at == NULL ||
        (names->count + 1) * 4 > (names->mask + 1) * 3)
        return -2;  /* more names than reserved, or sealed */
    size_t i = home & names->mask;
    while (names->slots[i]) {
        if ((names->slots[i] & ~(uint32_t)15) == h) {  /* another name: trust neither */
            names->slots[i] |= flag | NAME_COLLIDED;
            names->owners_at[i] = 0;
            return -1;
        }
        i = (i + 1) & names->mask;
    }
    names->slots[i] = h | flag;
    names->count++;
    return i <= INT_MAX ? (int)i : -1;
}

int names_owner(const Table *t, size_t zone, const unsigned char *name, size_t n,
                const owner_t **owner)
{
    const names_t *names = &t->names;
    if (names->slots == NULL)
        return -1;
    uint64_t home;
    uint32_t h = name_hash(&t->key, zone, name, n, &home);
    for (size_t i = home & names->mask; names->slots[i]; i = (i + 1) & names->mask) {
        if ((names->slots[i] & ~(uint32_t)15) != h)
            continue;
        size_t at = names_owner_at(names, i);
        if (at == 0 || names->slots[i] & NAME_COLLIDED)
            return -1;
        const owner_t *o = &names->owners[at - 1];
        if (names->owner_zones[at - 1] != zone || (size_t)PyBytes_GET_SIZE(o->key) != n ||
            memcmp(PyBytes_AS_STRING(o->key), name, n) != 0)
            return 0;  /* a missing name with a present one's fingerprint */
        *owner = o;
        return 1;
    }
    return 0;
}

/* The flags of a name in a zone; 0 when it does not exist there. A missing name whose
 * fingerprint is a present one's looks present (or a cut): that leads the walk to a key
 * nothing was stored under (anchors are names that exist), a miss, never a wrong
 * answer. Two present names in one slot hold the union of their flags and
 * NAME_COLLIDED: the walk gives up there (render.c confirms every flag in the zone). */
unsigned names_flags(const Table *t, size_t zone, const unsigned char *name, size_t n)
{
    const names_t *names = &t->names;
    if (names->slots == NULL)
        return 0;
    uint64_t home;
    uint32_t h = name_hash(&t->key, zone, name, n, &home);
    for (size_t i = home & names->mask; names->slots[i]; i = (i + 1) & names->mask)
        if ((names->slots[i] & ~(uint32_t)15) == h)
            return names->slots[i] & 15;
    return 0;
}

/* The served zone whose origin is exactly this name, or -1: one probe of the origin
 * index per label of the query, whatever the number of zones. */
int zone_of(const Table *t, const unsigned char *name, size_t n)
{
    if (t->zone_slots == NULL || n > t->longest_origin)
        return -1;  /* a 110-label name costs a probe per suffix as long as an origin */
    for (size_t i = siphash24(&t->key, name, n) & t->zone_mask; t->zone_slots[i];
         i = (i + 1) & t->zone_mask) {
        const zone_t *z = &t->zones[t->zone_slots[i] - 1];
        if (z->length == n && memcmp(z->origin, name, n) == 0)
            return (int)(t->zone_slots[i] - 1);
    }
    return -1;
}

/* One zone into the origin index, which has room; an origin served twice keeps its
 * first zone (as the scan did). */
static int zone_index_put(Table *t, size_t index)
{
    const zone_t *zone = &t->zones[index];
    size_t i = siphash24(&t->key, zone->origin, zone->length) & t->zone_mask;
    for (; t->zone_slots[i]; i = (i + 1) & t->zone_mask) {
        const zone_t *z = &t->zones[t->zone_slots[i] - 1];
        if (z->length == zone->length && memcmp(z->origin, zone->origin, zone->length) == 0)
            return 0;
    }
    t->zone_slots[i] = (uint32_t)index + 1;
    return 0;
}

/* Put zone `index` into the origin index (kept at most half full; grown by rebuilding). */
static int zone_index_add(Table *t, size_t index)
{
    if (t->zone_slots == NULL || (index + 1) * 2 > t->zone_mask + 1) {
        size_t slots = slots_for(index + 1, 16);
        uint32_t *fresh = slots ? PyMem_Calloc(slots, sizeof(uint32_t)) : NULL;
        if (fresh == NULL)
            return -1;
        PyMem_Free(t->zone_slots);
        t->zone_slots = fresh;
        t->zone_mask = slots - 1;
        for (size_t z = 0; z < index; z++)
            if (zone_index_put(t, z) < 0)
                return -1;
    }
    return zone_index_put(t, index);
}

static size_t count_labels(const unsigned char *name)
{
    size_t labels = 0;
    for (size_t i = 0; name[i]; i += name[i] + 1u)
        labels++;
    return labels;
}

/* The anchor's offset in the (lowercase) name: the name itself (0), its closest
 * encloser, the zone cut above it, or the root when no served zone holds it; and the
 * zone that answers the question (Zones.for_question), -1 for none. */
static size_t anchor_of(const Table *t, const unsigned char *name, size_t length, uint16_t qtype,
                        int *answering)
{
    size_t offsets[128], count = 0;
    for (size_t i = 0; name[i]; i += name[i] + 1u)
        offsets[count++] = i;
    size_t below = 0;
    int zone = -1;
    for (below = 0; below < count; below++)
        if ((zone = zone_of(t, name + offsets[below], length - offsets[below])) >= 0)
            break;
    *answering = -1;
    if (zone < 0) {
        below = count;
        zone = t->root_zone;
        if (zone < 0)
            return length - 1;
    }
    if (qtype == DS && below == 0 && count) {  /* DS at a child apex is the parent's */
        int parent = -1;
        for (size_t k = 1; k < count && parent < 0; k++)
            parent = zone_of(t, name + offsets[k], length - offsets[k]);
        if (parent < 0)
            parent = t->root_zone;
        if (parent >= 0) {
            zone = parent;
            below = count - count_labels(t->zones[parent].origin);
        }
    }
    *answering = zone;
    size_t apex = length - t->zones[zone].length;
    if (below && names_flags(t, (size_t)zone, name + apex, length - apex) & (NAME_DNAME | NAME_COLLIDED))
        return 0;  /* the answer spells the query's own labels: never shared */
    size_t previous = apex;
    for (size_t index = below; index-- > 0;) {
        size_t at = offsets[index];
        unsigned flags = names_flags(t, (size_t)zone, name + at, length - at);
        if (flags & NAME_COLLIDED)
            return 0;  /* two names share this slot: the entry is the exact one or none */
        if (flags & NAME_CUT && !(index == 0 && qtype == DS))
            return at;
        if (!(flags & NAME_EXISTS))
            return previous;
        if (index && flags & NAME_DNAME)
            return 0;
        previous = at;
    }
    return 0;
}

/* ---- answering ------------------------------------------------------------------ */

/* A reply render.c built, kept as the table entry Python would have stored for it
 * (AnswerCache.store): the body after the question and, for an anchored one (`at`: the
 * anchor's offset), its pointers to move with the name's length. An anchored reply is
 * not kept when a pointer goes into labels below the anchor (then it holds for this
 * name only) or it is too long for pointers to move. */
static void keep_built(Table *t, const unsigned char *key, size_t n, const unsigned char *reply,
                       size_t length, const query_t *q, size_t at, const moves_t *moves, int zone)
{
    size_t anchor_offset = at ? q->question_end - 4 - (q->name_length - at) : 0;
    size_t movable = at ? moves->count : 0;  /* an exact entry's pointers never move */
    if (moves->anchor != at || length < q->question_end ||
        (at && (moves->count > MAX_MOVES || length > 0x3FFF / 2)))
        return;  /* the walk and the lookup disagree, or the pointers cannot move */
    for (size_t i = 0; i < movable; i++)
        if (moves->target[i] < anchor_offset || moves->position[i] < q->question_end)
            return;
    size_t body = 6 + length - q->question_end;
    entry_t *e = entry_alloc(sizeof(entry_t) + n + 4 * movable + body);
    if (e == NULL)
        return;
    e->key_length = (uint32_t)n;
    e->body_length = (uint32_t)body;
    e->flags = (uint16_t)(get16(reply + 2) & ~RD_CD);
    e->ecs_length = (uint16_t)(q->ecs_family ? q->ecs_length : 0);
    /* the COOKIE value, then the ECS option: patched per query as in a stored entry */
    e->cookie_at = (uint16_t)(q->cookie ? COOKIE_REPLY + (q->ecs_family ? 8 + q->ecs_length : 0) : 0);
    e->anchor_offset = (uint16_t)anchor_offset;
    e->pointer_count = (uint16_t)movable;
    e->label = 0;
    e->zone = zone;
    memcpy(e->data, key, n);
    unsigned char *p = e->data + n;
    for (size_t i = 0; i < movable; i++) {
        put16(p + 4 * i, moves->position[i] - q->question_end + 6);
        put16(p + 4 * i + 2, moves->target[i]);
    }
    p += 4 * movable;
    memcpy(p, reply + 6, 6);
    memcpy(p + 6, reply + q->question_end, length - q->question_end);
    if (table_insert(t, siphash24(&t->key, e->data, e->key_length), e) < 0)
        entry_free(e);
}

size_t table_answer(Table *t, const unsigned char *data, const query_t *q,
                    const peer_t *peer, unsigned char *out, size_t room, int *anchored,
                    int may_build)
{
    unsigned char key[MAX_KEY + MAX_KEY_EXTRA];
    size_t n = write_key(t, q, q->name, q->name_length, 0, key);
    int bucket = steer_bucket(&t->steering, q, peer->family, peer->address, peer->slot,
                              key + n);
    if (bucket < 0)
        return 0;
    if (bucket > 0) {
        key[n - 1] = 1;
        n += (size_t)bucket;
    }
    entry_t *e = table_get(t, key, n);
    long delta = 0;
    *anchored = 0;
    if (e == NULL && bucket)
        return 0;  /* a steered name is answered by its exact entry or by Python */
    if (e == NULL) {
        int zone;
        size_t at = anchor_of(t, q->name, q->name_length, q->qtype, &zone);
        if (at != 0) {
            n = write_key(t, q, q->name + at, q->name_length - at, 1, key);
            const unsigned char *gap;
            size_t gap_length;
            int gapped = q->edns && q->do_bit
                ? denial_gap(t, q->name, q->name_length, at, &gap, &gap_length) : 0;
            if (gapped < 0)
                return 0;
            if (gapped) {  /* a signed zone's proof: the entry of this gap of the chain */
                key[n - 1] = 2;
                memcpy(key + n, gap, gap_length);
                n += gap_length;
            }
            e = table_get(t, key, n);
        }
        if (e == NULL) {  /* built from the zone data, or Python's */
            if (!may_build)
                return 0;
            moves_t moves;
            size_t length = zone < 0 ? 0 : table_render(t, zone, data, q, size_limit(t, q),
                                                        out, room, &moves);
            if (length)  /* kept as Python keeps its answers: the next one is a hit */
                keep_built(t, key, n, out, length, q, at, &moves, zone);
            return length;
        }
        delta = (long)(q->question_end - 4 - (q->name_length - at)) - (long)e->anchor_offset;
        *anchored = 1;
    }
    const unsigned char *pointers = e->data + e->key_length;
    const unsigned char *body = pointers + 4u * e->pointer_count;
    size_t total = q->question_end + e->body_length - 6;
    if (*anchored && total > size_limit(t, q))
        return 0;  /* a longer name no longer fits: the full path decides what does */
    if (total > room || e->ecs_length != q->ecs_length || e->body_length < 6 ||
        (e->cookie_at && !q->cookie))
        return 0;
    memcpy(out, data, 2);
    put16(out + 2, e->flags | (q->flags & RD_CD));
    memcpy(out + 4, data + 4, 2);
    memcpy(out + 6, body, 6);
    memcpy(out + HEADER_SIZE, data + HEADER_SIZE, q->question_end - HEADER_SIZE);
    memcpy(out + q->question_end, body + 6, e->body_length - 6);
    for (size_t i = 0; delta && i < e->pointer_count; i++) {
        size_t position = get16(pointers + 4 * i);
        long target = (long)get16(pointers + 4 * i + 2) + delta;
        if (target < 0 || target > 0x3FFF || position + 2 > e->body_length)
            return 0;
        put16(out + q->question_end + position - 6, 0xC000u | (unsigned)target);
    }
    if (e->ecs_length)
        memcpy(out + total - e->ecs_length, q->ecs_address, e->ecs_length);
    if (e->cookie_at)  /* before the ECS option: this client's cookie */
        memcpy(out + total - e->cookie_at, q->cookie_reply, COOKIE_REPLY);
    if (e->label && e->label < label_room && !q->probe)  /* 0: not counted */
        label_hits[e->label]++;
    else if (e->zone >= 0 && (size_t)e->zone < t->zone_count && !q->probe)
        (void)count_render(&t->zones[e->zone], q->qtype, (e->flags & 0xF) | BUILT_HIT);
    return total;
}

/* ---- the Python type ------------------------------------------------------------ */

static int Table_init(Table *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"capacity", "max_payload", "nsid", "hash_key", "cookies", NULL};
    Py_ssize_t capacity, key_length = 0;
    int max_payload, nsid, cookies = 0;
    const char *key = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nip|y#p", kwlist, &capacity, &max_payload, &nsid,
                                     &key, &key_length, &cookies))
        return -1;
    if (key != NULL && key_length != 16) {
        PyErr_SetString(PyExc_ValueError, "hash_key is 16 bytes");
        return -1;
    }
    if (capacity < 1 || max_payload < MIN_PAYLOAD || max_payload > 65535) {
        PyErr_SetString(PyExc_ValueError, "capacity must be >= 1, max_payload 512..65535");
        return -1;
    }
    if (self->young.slots != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Table is already initialised");
        return -1;
    }
    self->capacity = (size_t)capacity;
    self->max_payload = (uint16_t)max_payload;
    self->nsid_configured = nsid;
    self->cookies = cookies;
    self->root_zone = -1;
    if (key != NULL)  /* a test's fixed key: collisions it can reproduce */
        hash_key_from(&self->key, (const unsigned char *)key);
    else if (hash_key_init(&self->key) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (generation_init(&self->young, self->capacity) < 0 ||
        generation_init(&self->old, 1) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int Table_init_locked(Table *self, PyObject *args, PyObject *kwds)
{
    lock_gil(&self->lock);
    int result = Table_init(self, args, kwds);
    pthread_mutex_unlock(&self->lock);
    return result;
}

static PyObject *Table_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Table *self = (Table *)PyType_GenericNew(type, args, kwds);
    if (self != NULL)
        pthread_mutex_init(&self->lock, NULL);
    return (PyObject *)self;
}

/* Never under the lock: no loop holds a table it frees (Loop holds a reference). */
static void Table_dealloc(Table *self)
{
    pthread_mutex_destroy(&self->lock);
    generation_free(&self->young);
    generation_free(&self->old);
    names_free(&self->names);
    for (size_t i = 0; i < self->zone_count; i++) {
        Py_XDECREF(self->zones[i].records);
        Py_XDECREF(self->zones[i].ents);
        Py_XDECREF(self->zones[i].apex);
        denial_free(self->zones[i].denial);
        PyMem_Free(self->zones[i].origin);
    }
    PyMem_Free(self->zones);
    PyMem_Free(self->zone_slots);
    steering_free(&self->steering);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A Table made by __new__ alone has no generations: every method checks first. */
int table_ready(const Table *t)
{
    if (t->young.slots != NULL)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "Table is not initialised");
    return 0;
}

int check_name(const char *name, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n && name[i]) {
        if ((unsigned char)name[i] > 63)
            break;
        i += (unsigned char)name[i] + 1;
    }
    if (n < 1 || n > MAX_NAME || i != n - 1 || name[i] != 0) {  /* ends with the root */
        PyErr_SetString(PyExc_ValueError, "not an uncompressed wire name");
        return -1;
    }
    return 0;
}

static PyObject *Table_add_zone(Table *self, PyObject *args)
{
    const char *origin;
    Py_ssize_t n;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "y#", &origin, &n) ||
        check_name(origin, n) < 0)
        return NULL;
    if (self->zone_count == self->zone_room) {
        size_t room = self->zone_room ? self->zone_room * 2 : 16;
        zone_t *zones = PyMem_Realloc(self->zones, room * sizeof(zone_t));
        if (zones == NULL)
            return PyErr_NoMemory();
        self->zones = zones;
        self->zone_room = room;
    }
    /* the origin's two forms in one allocation of their own size: a server of
     * thousands of zones holds no MAX_NAME buffers per zone */
    unsigned char *names = PyMem_Malloc(2 * (size_t)n);
    if (names == NULL)
        return PyErr_NoMemory();
    zone_t *zone = &self->zones[self->zone_count];
    memset(zone, 0, sizeof(*zone));
    zone->origin = names;
    zone->origin_case = names + n;
    memcpy(zone->origin, origin, (size_t)n);
    memcpy(zone->origin_case, origin, (size_t)n);
    zone->length = (size_t)n;
    if (zone_index_add(self, self->zone_count) < 0) {
        PyMem_Free(names);
        return PyErr_NoMemory();
    }
    if ((size_t)n > self->longest_origin)
        self->longest_origin = (size_t)n;
    if (n == 1)
        self->root_zone = (int)self->zone_count;
    return PyLong_FromSize_t(self->zone_count++);
}

/* zone_data(zone, records, ents, origin_case, signed): the zone's own data, which
 * render.c builds answers from: `Zone.records` (a dict of lowercase wire owner -> blob),
 * `Zone.ents` (a set), the origin as configured, and whether the zone is signed. */
static PyObject *Table_zone_data(Table *self, PyObject *args)
{
    Py_ssize_t index, n;
    PyObject *records, *ents;
    const char *origin;
    int signed_zone;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "nO!O!y#p", &index, &PyDict_Type, &records, &PyFrozenSet_Type,
                          &ents, &origin, &n, &signed_zone) || check_name(origin, n) < 0)
        return NULL;
    if (index < 0 || (size_t)index >= self->zone_count) {
        PyErr_SetString(PyExc_ValueError, "unknown zone");
        return NULL;
    }
    zone_t *zone = &self->zones[index];
    unsigned char lower[MAX_NAME];
    for (Py_ssize_t i = 0; i < n; i++)
        lower[i] = lower_ascii((unsigned char)origin[i]);
    if ((size_t)n != zone->length || memcmp(lower, zone->origin, zone->length) != 0) {
        PyErr_SetString(PyExc_ValueError, "zone_data: the origin is not the zone's");
        return NULL;
    }
    PyObject *key = PyBytes_FromStringAndSize((const char *)zone->origin, (Py_ssize_t)zone->length);
    PyObject *apex = key ? PyDict_GetItemWithError(records, key) : NULL;
    Py_XDECREF(key);
    if (apex == NULL || !PyBytes_Check(apex)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "zone_data: no records at the apex");
        return NULL;
    }
    /* the SOA: its TTL and MINIMUM (the last four bytes of its rdata) */
    blob_t blob = {(const unsigned char *)PyBytes_AS_STRING(apex), (size_t)PyBytes_GET_SIZE(apex)};
    size_t offset = 0, rdlength;
    uint16_t type;
    uint32_t ttl;
    const unsigned char *rdata;
    int found = 0;
    while (!found && next_record(blob, &offset, &type, &ttl, &rdata, &rdlength) > 0) {
        if (type == 6 && rdlength >= 22) {
            uint32_t minimum = get32(rdata + rdlength - 4);
            zone->negative_ttl = ttl < minimum ? ttl : minimum;
            found = 1;
        }
    }
    if (!found) {
        PyErr_SetString(PyExc_ValueError, "zone_data: no SOA at the apex");
        return NULL;
    }
    memcpy(zone->origin_case, origin, (size_t)n);
    Py_XSETREF(zone->records, Py_NewRef(records));
    Py_XSETREF(zone->ents, Py_NewRef(ents));
    Py_XSETREF(zone->apex, Py_NewRef(apex));
    zone->signed_zone = signed_zone;
    Py_RETURN_NONE;
}

/* reserve_names(count): room for this many names (all zones), before add_names. */
static PyObject *Table_reserve_names(Table *self, PyObject *arg)
{
    if (!table_ready(self))
        return NULL;
    Py_ssize_t count = PyLong_AsSsize_t(arg);
    if (count < 0)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "count < 0"), NULL);
    if (names_reserve(&self->names, (size_t)count) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* seal_names(): the names are all added; their index takes its compact form. */
static PyObject *Table_seal_names(Table *self, PyObject *unused)
{
    (void)unused;
    if (!table_ready(self))
        return NULL;
    if (names_seal(&self->names) < 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* A name of add_names, hashed (and its slots fetched ahead) before it is added. */
typedef struct {
    PyObject *item, *blob;
    uint32_t print;
    uint64_t home;
} name_ahead_t;

#define NAMES_AHEAD 16  /* names hashed ahead: their slots' cache misses overlap */

/* Check and hash a name of add_names; ask for its slots (and its blob, whose count is
 * written) in the cache. -1: an exception is set. */
static int hash_name(Table *self, Py_ssize_t zone, PyObject *item, PyObject *blob,
                     name_ahead_t *ahead)
{
    char *name;
    Py_ssize_t n;
    if (PyBytes_AsStringAndSize(item, &name, &n) < 0 || check_name(name, n) < 0)
        return -1;
    *ahead = (name_ahead_t){item, blob, 0, 0};
    ahead->print = name_hash(&self->key, (size_t)zone, (unsigned char *)name, (size_t)n,
                             &ahead->home);
    names_t *names = &self->names;
    if (names->slots != NULL && names->owners_at != NULL) {
        __builtin_prefetch(&names->slots[ahead->home & names->mask], 1);
        __builtin_prefetch(&names->owners_at[ahead->home & names->mask], 1);
    }
    if (blob != NULL)
        __builtin_prefetch(blob, 1);
    return 0;
}

/* One name of add_names, hashed; `blob` is its records when the caller has them at hand
 * (from the zone's own dict), else NULL and they are looked up. -1: an exception is
 * set. */
static int add_name(Table *self, Py_ssize_t zone, const name_ahead_t *ahead, unsigned flag)
{
    PyObject *item = ahead->item, *blob = ahead->blob;
    int slot = names_add(&self->names, ahead->print, ahead->home, flag);
    if (slot == -2) {
        PyErr_SetString(PyExc_ValueError, "more names than reserve_names() made room for, "
                        "or added after seal_names()");
        return -1;
    }
    PyObject *records = self->zones[zone].records;
    if (slot < 0 || records == NULL)
        return 0;
    if (blob == NULL) {  /* the zone's own objects, for render.c */
        blob = PyDict_GetItemWithError(records, item);
        if (blob == NULL && PyErr_Occurred())
            return -1;
    }
    if (names_keep(&self->names, (size_t)slot, item, blob, (size_t)zone) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* add_names(zone, names, flags, skip=None): every wire name of an iterable in a zone
 * but those in `skip` (a container), each name once in all, with all its flags (a
 * name added twice is taken for a collision). The zone's own records dict is walked
 * in place, its blobs taken as they come: no lookup per name. */
static PyObject *Table_add_names(Table *self, PyObject *args)
{
    Py_ssize_t zone;
    PyObject *iterable, *skip = Py_None;
    unsigned int flag;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "nOI|O", &zone, &iterable, &flag, &skip))
        return NULL;
    if (zone < 0 || (size_t)zone >= self->zone_count || !flag || flag > 7) {
        PyErr_SetString(PyExc_ValueError, "unknown zone or bad flag");
        return NULL;
    }
    int skipping = skip != Py_None;
    if (iterable == self->zones[zone].records) {
        PyObject *key, *blob;
        Py_ssize_t position = 0;
        name_ahead_t ahead[NAMES_AHEAD];
        int count = 0, more = 1;
        while (more) {
            more = PyDict_Next(iterable, &position, &key, &blob);
            if (more) {
                int skipped = skipping ? PySequence_Contains(skip, key) : 0;
                if (skipped < 0 || (!skipped && hash_name(self, zone, key, blob, &ahead[count++]) < 0))
                    return NULL;
            }
            if (count == NAMES_AHEAD || (!more && count)) {
                for (int i = 0; i < count; i++)
                    if (add_name(self, zone, &ahead[i], flag) < 0)
                        return NULL;
                count = 0;
            }
        }
        Py_RETURN_NONE;
    }
    PyObject *iterator = PyObject_GetIter(iterable), *item;
    if (iterator == NULL)
        return NULL;
    while ((item = PyIter_Next(iterator)) != NULL) {
        int skipped = skipping ? PySequence_Contains(skip, item) : 0;
        name_ahead_t one;
        int bad = skipped < 0 || (!skipped && (hash_name(self, zone, item, NULL, &one) < 0 ||
                                               add_name(self, zone, &one, flag) < 0));
        Py_DECREF(item);
        if (bad) {
            Py_DECREF(iterator);
            return NULL;
        }
    }
    Py_DECREF(iterator);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* put(key, flags, body, pointers, anchor_offset, ecs_length, label, cookie_at): one
 * rendered response, counted under label id `label` when served, its COOKIE value
 * `cookie_at` bytes back from its end (0: none). */
static PyObject *Table_put(Table *self, PyObject *args)
{
    const char *key, *body;
    Py_ssize_t key_length, body_length;
    unsigned int flags, anchor_offset, ecs_length, label = 0, cookie_at = 0;
    PyObject *pointers;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "y#Iy#OII|II", &key, &key_length, &flags, &body, &body_length,
                          &pointers, &anchor_offset, &ecs_length, &label, &cookie_at))
        return NULL;
    lock_gil(&native_mutex);
    int reserved = label_reserve(label);
    pthread_mutex_unlock(&native_mutex);
    if (reserved < 0)
        return PyErr_NoMemory();
    PyObject *fast = PySequence_Fast(pointers, "pointers must be a sequence");
    if (fast == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    if (key_length <= KEY_TAIL || key_length > MAX_KEY + MAX_KEY_EXTRA || body_length < 6 ||
        body_length > MAX_UDP_REPLY || count > 0xFFFF || flags > 0xFFFF ||
        anchor_offset > 0xFFFF || ecs_length > MAX_ECS_ADDRESS ||
        (cookie_at && (cookie_at < COOKIE_REPLY + ecs_length || cookie_at + 6 > (size_t)body_length))) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "entry out of range");
        return NULL;
    }
    entry_t *e = entry_alloc(sizeof(entry_t) + (size_t)key_length + 4u * (size_t)count +
                              (size_t)body_length);
    if (e == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    e->key_length = (uint32_t)key_length;
    e->body_length = (uint32_t)body_length;
    e->flags = (uint16_t)flags;
    e->ecs_length = (uint16_t)ecs_length;
    e->anchor_offset = (uint16_t)anchor_offset;
    e->pointer_count = (uint16_t)count;
    e->cookie_at = (uint16_t)cookie_at;
    e->label = label;
    e->zone = -1;
    memcpy(e->data, key, (size_t)key_length);
    unsigned char *p = e->data + key_length;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned int position, target;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "II", &position, &target) ||
            position < 6 || position + 2 > (size_t)body_length || target > 0x3FFF) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "pointer out of range");
            Py_DECREF(fast);
            entry_free(e);
            return NULL;
        }
        put16(p + 4 * i, position);
        put16(p + 4 * i + 2, target);
    }
    Py_DECREF(fast);
    memcpy(p + 4 * count, body, (size_t)body_length);
    if (table_insert(self, siphash24(&self->key, e->data, e->key_length), e) < 0) {
        entry_free(e);
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

/* answer(datagram, host="127.0.0.1", slot=0): the reply the socket loop would send
 * for a datagram from `host` with this weighted-draw slot, or None on a miss. */
static PyObject *Table_answer(Table *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"datagram", "host", "slot", NULL};
    Py_buffer view;
    const char *host = "127.0.0.1";
    unsigned int slot = 0;
    if (!table_ready(self) ||
        !PyArg_ParseTupleAndKeywords(args, kwds, "y*|sI", kwlist, &view, &host, &slot))
        return NULL;
    peer_t peer = {.slot = slot};
    if (inet_pton(AF_INET, host, peer.address) == 1)
        peer.family = 4;
    else if (inet_pton(AF_INET6, host, peer.address) == 1)
        peer.family = 6;
    query_t q;
    unsigned char *out = PyMem_Malloc(MAX_UDP_REPLY);
    PyObject *result = NULL;
    int anchored;
    size_t n = 0;
    lock_gil(&native_mutex);  /* the probe key, the cookie secrets, the counts */
    if (out == NULL)
        result = PyErr_NoMemory();
    else if (parse_query(view.buf, (size_t)view.len, &q)) {
        cookie_check(self, &q, &peer);
        n = table_answer(self, view.buf, &q, &peer, out, MAX_UDP_REPLY, &anchored, 1);
    }
    pthread_mutex_unlock(&native_mutex);
    if (out != NULL)
        result = n ? PyBytes_FromStringAndSize((char *)out, (Py_ssize_t)n) : Py_NewRef(Py_None);
    PyMem_Free(out);
    PyBuffer_Release(&view);
    return result;
}

/* cookie(datagram, host="127.0.0.1") -> (value, valid): what cookie_check makes of a
 * datagram from `host`: the reply's COOKIE value (None: no cookie in the reply, or a
 * datagram the table does not parse) and whether the server cookie verified. */
static PyObject *Table_cookie(Table *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"datagram", "host", NULL};
    Py_buffer view;
    const char *host = "127.0.0.1";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|s", kwlist, &view, &host))
        return NULL;
    peer_t peer = {0};
    if (inet_pton(AF_INET, host, peer.address) == 1)
        peer.family = 4;
    else if (inet_pton(AF_INET6, host, peer.address) == 1)
        peer.family = 6;
    query_t q;
    lock_gil(&native_mutex);
    int parsed = parse_query(view.buf, (size_t)view.len, &q);
    if (parsed)
        cookie_check(self, &q, &peer);
    pthread_mutex_unlock(&native_mutex);
    PyBuffer_Release(&view);
    if (!parsed || !q.cookie)
        return Py_BuildValue("(OO)", Py_None, parsed && q.cookie_valid ? Py_True : Py_False);
    return Py_BuildValue("(y#O)", (const char *)q.cookie_reply, (Py_ssize_t)COOKIE_REPLY,
                         q.cookie_valid ? Py_True : Py_False);
}

static Py_ssize_t Table_len(Table *self)
{
    return (Py_ssize_t)(self->young.count + self->old.count);
}

/* Every method under the table's lock (see the native locks in native.h). */
LOCKED(Table_add_zone)
LOCKED(Table_zone_data)
LOCKED(Table_denial)
LOCKED(Table_reserve_names)
LOCKED(Table_seal_names)
LOCKED(Table_add_names)
LOCKED(Table_put)
LOCKED(Table_add_record)
LOCKED(Table_set_locations)
LOCKED(Table_set_latency)
LOCKED(Table_add_owner)
LOCKED(Table_set_closest)
LOCKED(Table_set_blocks)
LOCKED(Table_set_versions)
LOCKED_KW(Table_answer)
LOCKED_KW(Table_cookie)

static PyMethodDef Table_methods[] = {
    {"add_zone", (PyCFunction)Table_add_zone_locked, METH_VARARGS,
     "add_zone(origin_wire) -> index: a served zone, for the anchor walk."},
    {"zone_data", (PyCFunction)Table_zone_data_locked, METH_VARARGS,
     "zone_data(zone, records, ents, origin_wire, signed): the zone's records (owner -> "
     "blob), empty non-terminals, origin as configured and signedness, for answers built in C."},
    {"denial", (PyCFunction)Table_denial_locked, METH_VARARGS,
     "denial(zone, nsec3, owners, hashes, salt, iterations): a signed zone's NSEC chain "
     "(owners in canonical order) or NSEC3 chain (owners in hash order, 20-byte hashes)."},
    {"reserve_names", (PyCFunction)Table_reserve_names_locked, METH_O,
     "reserve_names(count): room for this many zone names, before add_names."},
    {"seal_names", (PyCFunction)Table_seal_names_locked, METH_NOARGS,
     "seal_names(): every name added: the index takes its compact form (no add after)."},
    {"add_names", (PyCFunction)Table_add_names_locked, METH_VARARGS,
     "add_names(zone, names, flags, skip=None): lowercase wire names of a zone but those in "
     "`skip`, with all their flags (1 "
     "exists, 2 cut, 4 DNAME); each name once (a second add counts as a collision)."},
    {"put", (PyCFunction)Table_put_locked, METH_VARARGS,
     "put(key, flags, body, pointers, anchor_offset, ecs_length, label=0, cookie_at=0): "
     "store one rendered response."},
    {"answer", (PyCFunction)(void (*)(void))Table_answer_locked, METH_VARARGS | METH_KEYWORDS,
     "answer(datagram, host='127.0.0.1', slot=0) -> bytes | None: the reply from the "
     "table for a datagram from host with this weighted-draw slot, None on a miss."},
    {"cookie", (PyCFunction)(void (*)(void))Table_cookie_locked, METH_VARARGS | METH_KEYWORDS,
     "cookie(datagram, host='127.0.0.1') -> (value | None, valid): the reply's COOKIE "
     "value for a datagram from host, and whether its server cookie verified."},
    {"add_record", (PyCFunction)Table_add_record_locked, METH_VARARGS,
     "add_record(servable, weighted, hashed, v4_starts, v4_prefixes, v4_rules, v6_starts, "
     "v6_prefixes, v6_rules, located, closest_classes | None, latency) -> index: a steered "
     "record's rule map blocks and location classes."},
    {"set_locations", (PyCFunction)Table_set_locations_locked, METH_VARARGS,
     "set_locations(v4_starts, v4_entries, v4_prefixes, v6_...): the location map's runs."},
    {"set_latency", (PyCFunction)Table_set_latency_locked, METH_VARARGS,
     "set_latency(network_keys, regions, v4_starts, v4_ids, v6_starts, v6_ids): the RTT "
     "table's classes."},
    {"add_owner", (PyCFunction)Table_add_owner_locked, METH_VARARGS,
     "add_owner(owner_wire, ((qtype, record), ...), cname_record): a steered owner."},
    {"set_closest", (PyCFunction)Table_set_closest_locked, METH_VARARGS,
     "set_closest(record, closest_classes): a closest record's class array replaced."},
    {"set_blocks", (PyCFunction)Table_set_blocks_locked, METH_VARARGS,
     "set_blocks(record, v4_starts, v4_prefixes, v4_rules, v6_starts, v6_prefixes, v6_rules): "
     "a record's rule map blocks replaced (its cached answers stay)."},
    {"set_versions", (PyCFunction)Table_set_versions_locked, METH_O,
     "set_versions(array('I')): every steered record's state version, in record order."},
    {NULL}
};

static PySequenceMethods Table_as_sequence = {.sq_length = (lenfunc)Table_len};

PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gslb.server._fastpath.Table",
    .tp_doc = "Rendered responses keyed like the answer cache, served by the socket loop.",
    .tp_basicsize = sizeof(Table),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Table_new,
    .tp_init = (initproc)Table_init_locked,
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_methods = Table_methods,
    .tp_as_sequence = &Table_as_sequence,
};
