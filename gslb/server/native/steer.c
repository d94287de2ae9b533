/* Steered names in C: the part of a steered answer's cache key that depends on the
 * client (gslb.steering.front.Steering.bucket), computed without Python.
 *
 * For each steered owner the table knows which record answers which query type (as
 * `Steering._record_for`), and for each record its rule map as compact sorted arrays
 * (the blocks of gslb.steering.geo.RuleMap: start, prefix, rule). The bucket is then
 * (the record's state version, matching rule, the ECS scope it holds on, the weighted
 * draw's slot): not the block itself, so every client network that the same rule
 * matches on equally long blocks shares one answer, and
 * the answer is the table entry stored under the key with that bucket appended.
 * A `hash` record's bucket adds the client network's hash slot. A `closest` or `latency`
 * record's bucket goes on with its location classes (gslb.steering.located): the class
 * of the client's location entry (from the location map, shared by every record) and
 * the scope it holds on. Clients only Python can place (IPv4's ranges of the IPv6
 * family, odd coordinates) are misses. */
#include "native.h"
#include <string.h>

#define TYPE_ANY 255
#define ECS_MAX_V4 24
#define ECS_MAX_V6 56
#define HASH_SLOTS 4096
#define NO_HASH_SLOT 0xFFFF

static uint64_t owner_hash(const unsigned char *name, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= name[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static steer_owner_t *owner_find(const steering_t *s, const unsigned char *name, size_t n)
{
    if (s->owner_slots == NULL)
        return NULL;
    uint64_t h = owner_hash(name, n);
    for (size_t i = h & s->owner_mask; s->owner_slots[i]; i = (i + 1) & s->owner_mask) {
        steer_owner_t *o = &s->owners[s->owner_slots[i] - 1];
        if (o->length == n && memcmp(o->name, name, n) == 0)
            return o;
    }
    return NULL;
}

int steer_covers(const steering_t *s, const unsigned char *name, size_t n)
{
    return owner_find(s, name, n) != NULL;
}

/* The record answering this type at this owner (Steering._record_for); -1: none. */
static int record_for(const steer_owner_t *o, uint16_t qtype)
{
    for (int i = 0; i < o->type_count; i++)
        if (o->qtypes[i] == qtype)
            return o->records[i];
    if (qtype == TYPE_ANY)
        return o->type_count ? o->records[0] : -1;
    return o->cname_record;
}

/* The client network: the ECS subnet when it has a prefix, else the peer's address,
 * cut to /24 or /56 (RFC 7871 11.1), as Steering.client. */
static int client_network(const query_t *q, int peer_family, const unsigned char *peer,
                          unsigned char address[16], int *prefix)
{
    int family;
    memset(address, 0, 16);
    if (q->ecs_family && q->ecs_source > 0) {
        family = q->ecs_family == 1 ? 4 : 6;
        memcpy(address, q->ecs_address, q->ecs_length);
        *prefix = q->ecs_source;
    } else if (peer_family == 4 || peer_family == 6) {
        family = peer_family;
        memcpy(address, peer, family == 4 ? 4 : 16);
        *prefix = family == 4 ? 32 : 128;
    } else {
        return 0;
    }
    int limit = family == 4 ? ECS_MAX_V4 : ECS_MAX_V6;
    if (*prefix > limit)
        *prefix = limit;
    for (int bit = *prefix; bit < 128; bit++)
        address[bit / 8] &= (unsigned char)~(0x80 >> (bit % 8));
    return family;
}

/* The `hash` policy's slot of a client network, as gslb.steering.model.hash_slot:
 * FNV-1a (64 bits) over family, prefix length and the address bytes, mod HASH_SLOTS. */
static unsigned hash_slot(int family, int prefix, const unsigned char address[16])
{
    uint64_t h = 0xcbf29ce484222325ULL;
    unsigned char head[2] = {(unsigned char)family, (unsigned char)prefix};
    for (int i = 0; i < 2; i++)
        h = (h ^ head[i]) * 0x100000001b3ULL;
    for (int i = 0; i < (family == 4 ? 4 : 16); i++)
        h = (h ^ address[i]) * 0x100000001b3ULL;
    return (unsigned)(h % HASH_SLOTS);
}

/* The block of the rule map holding `address`: the last start at or below it. */
static long block_of(const rule_blocks_t *b, const unsigned char *address, size_t width)
{
    long low = 0, high = (long)b->count - 1, found = -1;
    while (low <= high) {
        long middle = (low + high) / 2;
        if (memcmp(b->starts + (size_t)middle * width, address, width) <= 0) {
            found = middle;
            low = middle + 1;
        } else {
            high = middle - 1;
        }
    }
    return found;
}

/* The int32 at index i of a native array of `count` (unaligned); 0 past its end. */
static int load32(const unsigned char *values, size_t count, size_t i, int32_t *value)
{
    if (i >= count)
        return 0;
    memcpy(value, values + i * sizeof(*value), sizeof(*value));
    return 1;
}

/* The location part of the bucket (Steering._location), after the first STEER_BUCKET
 * bytes; -1 where C cannot place the client. */
static int location_part(const steering_t *s, const steer_record_t *r, int family,
                         const unsigned char *address, int prefix, unsigned char *out)
{
    size_t width = family == 4 ? 4 : 16;
    const rule_blocks_t *where = &s->where[family == 6];
    int32_t entry = -1;
    unsigned scope = (unsigned)prefix;
    if (where->count) {
        long run = block_of(where, address, width);
        if (run < 0 || !load32(where->results, where->count, (size_t)run, &entry))
            return -1;
        if (entry < -1)
            return -1;  /* an alias of the IPv4 subtree: Python's */
        if (entry >= 0)
            scope = where->prefixes[run];
    }
    int32_t closest = -1, net = -1, region = -1;
    unsigned closest_scope = 255, latency_scope = 255;
    if (r->closest) {
        closest = 0;
        if (entry >= 0 && !load32(r->closest_classes, r->closest_count, (size_t)entry, &closest))
            return -1;
        if (closest < 0)
            return -1;  /* a coordinate only Python reads */
        closest_scope = scope;
    }
    if (r->latency) {
        if (!s->latency_set)
            return -1;
        const rule_blocks_t *nets = &s->nets[family == 6];
        long run = block_of(nets, address, width);
        if (run < 0 || !load32(nets->results, nets->count, (size_t)run, &net))
            return -1;
        region = 0;
        if (entry >= 0 && !load32(s->regions, s->region_count, (size_t)entry, &region))
            return -1;
        latency_scope = s->network_keys ? (unsigned)prefix : scope;
    }
    put32(out, (uint32_t)closest);
    out[4] = (unsigned char)closest_scope;
    put32(out + 5, (uint32_t)net);
    put32(out + 9, (uint32_t)region);
    out[13] = (unsigned char)latency_scope;
    return LOCATION_BUCKET;
}

int steer_bucket(const steering_t *s, const query_t *q, int peer_family,
                 const unsigned char *peer, unsigned slot, unsigned char *out)
{
    const steer_owner_t *o = owner_find(s, q->name, q->name_length);
    if (o == NULL)
        return 0;
    int index = record_for(o, q->qtype);
    if (index < 0) {
        out[0] = 0;  /* a covered owner asked for a type nothing steers: ("static",) */
        return 1;
    }
    const steer_record_t *r = &s->records[index];
    if (!r->servable)
        return -1;
    unsigned char address[16];
    int prefix;
    int family = client_network(q, peer_family, peer, address, &prefix);
    if (!family)
        return -1;
    const rule_blocks_t *b = family == 4 ? &r->v4 : &r->v6;
    size_t width = family == 4 ? 4 : 16;
    long block = block_of(b, address, width);
    if (block < 0)
        return -1;
    out[0] = 1;
    out[1] = (unsigned char)(r->version >> 24);
    out[2] = (unsigned char)(r->version >> 16);
    out[3] = (unsigned char)(r->version >> 8);
    out[4] = (unsigned char)r->version;
    int32_t rule;  /* the bytes object's data need not be aligned for an int32_t */
    memcpy(&rule, b->results + (size_t)block * sizeof(rule), sizeof(rule));
    uint32_t wide = (uint32_t)rule;  /* every rule index, -1 as 0xFFFFFFFF */
    out[5] = (unsigned char)(wide >> 24);
    out[6] = (unsigned char)(wide >> 16);
    out[7] = (unsigned char)(wide >> 8);
    out[8] = (unsigned char)wide;
    out[9] = (unsigned char)family;
    unsigned scope = b->prefixes[block], limit = family == 4 ? ECS_MAX_V4 : ECS_MAX_V6;
    out[10] = (unsigned char)(scope < limit ? scope : limit);
    unsigned hashed = r->hashed ? hash_slot(family, prefix, address) : NO_HASH_SLOT;
    out[11] = (unsigned char)(hashed >> 8);
    out[12] = (unsigned char)hashed;
    out[13] = r->weighted ? (unsigned char)(slot % 64) : 0xFF;
    if (!r->located)
        return STEER_BUCKET;
    int located = location_part(s, r, family, address, prefix, out + STEER_BUCKET);
    return located < 0 ? -1 : STEER_BUCKET + located;
}

static void blocks_release(rule_blocks_t *b)
{
    for (int i = 0; i < 3; i++)
        Py_CLEAR(b->held[i]);
}

/* `*held` handed to s->dropped (freed by table_unlock once the lock is let go), or
 * freed here should the list not grow. Only on a path that succeeds: it may clear a
 * MemoryError. */
static void drop_later(steering_t *s, PyObject **held)
{
    PyObject *object = *held;
    *held = NULL;
    if (object == NULL)
        return;
    if (s->dropped == NULL)
        s->dropped = PyList_New(0);
    if (s->dropped == NULL || PyList_Append(s->dropped, object) < 0)
        PyErr_Clear();
    Py_DECREF(object);
}

static void blocks_drop(steering_t *s, rule_blocks_t *b)
{
    for (int i = 0; i < 3; i++)
        drop_later(s, &b->held[i]);
}

void steering_free(steering_t *s)
{
    for (size_t i = 0; i < s->record_count; i++) {
        blocks_release(&s->records[i].v4);
        blocks_release(&s->records[i].v6);
        Py_CLEAR(s->records[i].closest_held);
    }
    for (int f = 0; f < 2; f++) {
        blocks_release(&s->where[f]);
        blocks_release(&s->nets[f]);
    }
    Py_CLEAR(s->regions_held);
    Py_CLEAR(s->dropped);
    PyMem_Free(s->records);
    PyMem_Free(s->owners);
    PyMem_Free(s->owner_slots);
    memset(s, 0, sizeof(*s));
}

/* One family's blocks: starts (big-endian, `width` bytes each), prefixes, rules (native
 * int32), each a bytes object that is held, not copied. */
static int blocks_from(rule_blocks_t *b, PyObject *starts, PyObject *prefixes,
                       PyObject *results, size_t width)
{
    Py_ssize_t count = PyBytes_GET_SIZE(prefixes);
    const char *rules = PyBytes_AS_STRING(results);
    if (count < 1 || PyBytes_GET_SIZE(starts) != count * (Py_ssize_t)width ||
        PyBytes_GET_SIZE(results) != count * 4) {
        PyErr_SetString(PyExc_ValueError, "rule map blocks do not line up");
        return -1;
    }
    b->starts = (const unsigned char *)PyBytes_AS_STRING(starts);
    b->prefixes = (const unsigned char *)PyBytes_AS_STRING(prefixes);
    b->results = (const unsigned char *)rules;
    b->count = (size_t)count;
    b->held[0] = Py_NewRef(starts);
    b->held[1] = Py_NewRef(prefixes);
    b->held[2] = Py_NewRef(results);
    return 0;
}

/* add_record(servable, weighted, hashed, v4 starts, v4 prefixes, v4 rules, v6 ...,
 *            [located, closest classes or None, latency]) -> index */
PyObject *Table_add_record(Table *self, PyObject *args)
{
    int servable, weighted, hashed, located = 0, latency = 0;
    PyObject *s4, *p4, *r4, *s6, *p6, *r6, *closest = Py_None;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "pppSSSSSS|pOp", &servable, &weighted, &hashed, &s4, &p4, &r4, &s6,
                          &p6, &r6, &located, &closest, &latency))
        return NULL;
    if (closest != Py_None && (!PyBytes_Check(closest) || PyBytes_GET_SIZE(closest) % 4)) {
        PyErr_SetString(PyExc_ValueError, "closest classes are int32 bytes or None");
        return NULL;
    }
    steering_t *s = &self->steering;
    steer_record_t *records = PyMem_Realloc(s->records, (s->record_count + 1) * sizeof(*records));
    if (records == NULL)
        return PyErr_NoMemory();
    s->records = records;
    steer_record_t *r = &records[s->record_count];
    memset(r, 0, sizeof(*r));
    r->servable = servable;
    r->weighted = weighted;
    r->hashed = hashed;
    if (blocks_from(&r->v4, s4, p4, r4, 4) < 0)
        return NULL;
    if (blocks_from(&r->v6, s6, p6, r6, 16) < 0) {
        blocks_release(&r->v4);
        return NULL;
    }
    r->located = located;
    r->latency = latency;
    if (closest != Py_None) {
        r->closest = 1;
        r->closest_classes = (const unsigned char *)PyBytes_AS_STRING(closest);
        r->closest_count = (size_t)PyBytes_GET_SIZE(closest) / 4;
        r->closest_held = Py_NewRef(closest);
    }
    return PyLong_FromSize_t(s->record_count++);
}

/* set_blocks(record, v4 starts, v4 prefixes, v4 rules, v6 ...): a record's rule map
 * replaced in place (a GeoIP database changed). Under the GIL, between two batches: a
 * batch sees the old blocks or the new ones. The entries stay: a steered key holds the
 * rule and the scope, not the client's network, so its answer is the same under any
 * database. */
PyObject *Table_set_blocks(Table *self, PyObject *args)
{
    Py_ssize_t index;
    PyObject *s4, *p4, *r4, *s6, *p6, *r6;
    if (!table_ready(self) ||
        !PyArg_ParseTuple(args, "nSSSSSS", &index, &s4, &p4, &r4, &s6, &p6, &r6))
        return NULL;
    steering_t *s = &self->steering;
    if (index < 0 || (size_t)index >= s->record_count) {
        PyErr_SetString(PyExc_IndexError, "no such steered record");
        return NULL;
    }
    rule_blocks_t v4, v6;
    if (blocks_from(&v4, s4, p4, r4, 4) < 0)
        return NULL;
    if (blocks_from(&v6, s6, p6, r6, 16) < 0) {
        blocks_release(&v4);
        return NULL;
    }
    steer_record_t *r = &s->records[index];
    rule_blocks_t old4 = r->v4, old6 = r->v6;
    r->v4 = v4;
    r->v6 = v6;
    blocks_drop(s, &old4);
    blocks_drop(s, &old6);
    Py_RETURN_NONE;
}

/* set_closest(record, closest classes): a closest record's class array replaced (a
 * replaced GeoIP database numbers its location entries anew); its version changes with
 * it (set_versions), so no entry of the old classes is found. */
PyObject *Table_set_closest(Table *self, PyObject *args)
{
    Py_ssize_t index;
    PyObject *closest;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "nS", &index, &closest))
        return NULL;
    steering_t *s = &self->steering;
    if (index < 0 || (size_t)index >= s->record_count) {
        PyErr_SetString(PyExc_IndexError, "no such steered record");
        return NULL;
    }
    steer_record_t *r = &s->records[index];
    if (!r->closest) {
        PyErr_SetString(PyExc_ValueError, "the record has no closest classes");
        return NULL;
    }
    if (PyBytes_GET_SIZE(closest) % 4) {
        PyErr_SetString(PyExc_ValueError, "closest classes are int32 bytes");
        return NULL;
    }
    r->closest_classes = (const unsigned char *)PyBytes_AS_STRING(closest);
    r->closest_count = (size_t)PyBytes_GET_SIZE(closest) / 4;
    PyObject *old = r->closest_held;
    r->closest_held = Py_NewRef(closest);
    drop_later(s, &old);
    Py_RETURN_NONE;
}

static void owner_slot_put(steering_t *s, size_t k)
{
    size_t i = owner_hash(s->owners[k].name, s->owners[k].length) & s->owner_mask;
    while (s->owner_slots[i])
        i = (i + 1) & s->owner_mask;
    s->owner_slots[i] = (uint32_t)k + 1;
}

/* Index the newest owner: one insertion, and a rebuild at twice the size when the index
 * would pass half full, so n owners cost O(n) in all (not a rebuild per owner). */
static int owners_index(steering_t *s)
{
    size_t count = s->owner_count;
    if (s->owner_slots == NULL || count * 2 > s->owner_mask + 1) {
        size_t slots = slots_for(count, 16);
        uint32_t *fresh = slots ? PyMem_Calloc(slots, sizeof(uint32_t)) : NULL;
        if (fresh == NULL)
            return -1;
        PyMem_Free(s->owner_slots);
        s->owner_slots = fresh;
        s->owner_mask = slots - 1;
        for (size_t k = 0; k + 1 < count; k++)
            owner_slot_put(s, k);
    }
    owner_slot_put(s, count - 1);
    return 0;
}

/* add_owner(owner_wire, ((qtype, record), ...), cname_record) */
PyObject *Table_add_owner(Table *self, PyObject *args)
{
    const char *name;
    Py_ssize_t n;
    PyObject *types;
    int cname;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "y#O!i", &name, &n, &PyTuple_Type, &types, &cname))
        return NULL;
    steering_t *s = &self->steering;
    Py_ssize_t count = PyTuple_GET_SIZE(types);
    if (n < 1 || n > MAX_NAME || count > MAX_STEERED_TYPES || cname >= (int)s->record_count) {
        PyErr_SetString(PyExc_ValueError, "bad steered owner");
        return NULL;
    }
    steer_owner_t owner;
    memset(&owner, 0, sizeof(owner));
    memcpy(owner.name, name, (size_t)n);
    owner.length = (size_t)n;
    owner.cname_record = cname;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned int qtype;
        int record;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(types, i), "Ii", &qtype, &record))
            return NULL;
        if (qtype > 0xFFFF || record < 0 || record >= (int)s->record_count) {
            PyErr_SetString(PyExc_ValueError, "bad steered type");
            return NULL;
        }
        owner.qtypes[i] = (uint16_t)qtype;
        owner.records[i] = record;
    }
    owner.type_count = (int)count;
    if (s->owner_count == s->owner_room) {
        size_t room = s->owner_room ? s->owner_room * 2 : 16;
        steer_owner_t *owners = room < UINT32_MAX ? PyMem_Realloc(s->owners, room * sizeof(*owners)) : NULL;
        if (owners == NULL)
            return PyErr_NoMemory();
        s->owners = owners;
        s->owner_room = room;
    }
    s->owners[s->owner_count++] = owner;
    if (owners_index(s) < 0) {
        s->owner_count--;  /* not indexed: not added */
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

/* set_versions(array('I') bytes): every record's state version at once, so a state
 * change reaches all records between two batches. */
PyObject *Table_set_versions(Table *self, PyObject *arg)
{
    Py_buffer view;
    if (!table_ready(self) || PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    steering_t *s = &self->steering;
    if ((size_t)view.len != s->record_count * sizeof(uint32_t)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "one 32-bit version per record");
        return NULL;
    }
    const uint32_t *versions = view.buf;
    for (size_t i = 0; i < s->record_count; i++)
        s->records[i].version = versions[i];
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* Two families of runs (starts, int32 values, prefixes) in place of `runs`. */
static int runs_from(steering_t *s, rule_blocks_t runs[2], PyObject *items[6])
{
    rule_blocks_t fresh[2];
    memset(fresh, 0, sizeof(fresh));
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < 3; i++) {
            if (!PyBytes_Check(items[3 * f + i])) {
                PyErr_SetString(PyExc_TypeError, "runs are bytes");
                blocks_release(&fresh[0]);
                return -1;
            }
        }
        if (blocks_from(&fresh[f], items[3 * f], items[3 * f + 2], items[3 * f + 1], f ? 16 : 4) < 0) {
            blocks_release(&fresh[0]);
            return -1;
        }
    }
    for (int f = 0; f < 2; f++) {
        blocks_drop(s, &runs[f]);
        runs[f] = fresh[f];
    }
    return 0;
}

/* set_locations(v4 starts, v4 entries, v4 prefixes, v6 ...): the location map. */
PyObject *Table_set_locations(Table *self, PyObject *args)
{
    PyObject *items[6];
    if (!table_ready(self) || !PyArg_ParseTuple(args, "SSSSSS", &items[0], &items[1], &items[2],
                                                &items[3], &items[4], &items[5]))
        return NULL;
    if (runs_from(&self->steering, self->steering.where, items) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* set_latency(network_keys, regions, v4 starts, v4 ids, v4 prefixes, v6 ...): the RTT
 * table's classes, replaced at once between two batches. */
PyObject *Table_set_latency(Table *self, PyObject *args)
{
    int network_keys;
    PyObject *regions, *items[6];
    if (!table_ready(self) || !PyArg_ParseTuple(args, "pSSSSSSS", &network_keys, &regions, &items[0],
                                                &items[1], &items[2], &items[3], &items[4], &items[5]))
        return NULL;
    steering_t *s = &self->steering;
    if (PyBytes_GET_SIZE(regions) % 4) {
        PyErr_SetString(PyExc_ValueError, "regions are int32 bytes");
        return NULL;
    }
    if (runs_from(s, s->nets, items) < 0)
        return NULL;
    PyObject *old = s->regions_held;
    s->regions_held = Py_NewRef(regions);
    drop_later(s, &old);
    s->regions = (const unsigned char *)PyBytes_AS_STRING(regions);
    s->region_count = (size_t)PyBytes_GET_SIZE(regions) / 4;
    s->network_keys = network_keys;
    s->latency_set = 1;
    Py_RETURN_NONE;
}
