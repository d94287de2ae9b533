/* The MaxMind DB walk: every network of one or more databases, in address order, as runs
 * of what rules test (continent, country, first subdivision, ASN), without a Python
 * object per network.
 *
 * Format: https://maxmind.github.io/MaxMind-DB/. The search tree is `node_count` nodes of
 * two records each (24, 28 or 32 bits); a record below `node_count` is a node, equal to it
 * is "no data", above it points into the data section, which starts 16 zero bytes after
 * the tree. An IPv6 tree holds IPv4 at ::/96; ::ffff:0:0/96 and 2002::/16 usually point
 * back at that node (aliases), and are skipped, as maxminddb's iteration skips them.
 *
 * Several databases are walked in lockstep (a City database and an ASN database): each
 * leaf of the walk is the intersection of a network of each, and its fields are each
 * taken from the first database that has them. Each data record is decoded once,
 * memoised by its offset (gdnsd's libgdmaps/gdgeoip2.c does the same), and what it holds
 * is interned, so neighbouring networks with the same fields become one run. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geomap.h"

enum { T_POINTER = 1, T_STRING = 2, T_DOUBLE = 3, T_BYTES = 4, T_UINT16 = 5, T_UINT32 = 6,
       T_MAP = 7, T_INT32 = 8, T_UINT64 = 9, T_UINT128 = 10, T_ARRAY = 11, T_BOOLEAN = 14,
       T_FLOAT = 15 };
enum { KIND_CODE = 0, KIND_ISO_CODE = 1, KIND_FIRST_ISO_CODE = 2 };

#define MAX_NESTING 32
#define MAX_POINTER_HOPS 4

typedef struct {
    int type;
    uint32_t size;   /* bytes of a scalar, entries of a map or array */
    size_t pos;      /* the payload (first entry), or a pointer's target */
    size_t end;      /* just past the control bytes (and a pointer's own bytes) */
} value_t;

static int fail(walk_t *w, int db, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(w->error, sizeof(w->error), format, args);
    va_end(args);
    w->failed = db;
    return -1;
}

static int no_memory(walk_t *w) {
    w->no_memory = 1;
    return fail(w, -1, "out of memory");
}

/* --- the data section --------------------------------------------------------------- */

/* The value whose control byte is at `offset`; checks that its control bytes, and the
 * payload of a scalar, lie inside the data section. */
static int read_value(walk_t *w, int d, size_t offset, value_t *v) {
    db_t *db = &w->db[d];
    const uint8_t *data = db->data;
    size_t size = db->data_size;
    if (db->work_left == 0)
        return fail(w, d, "the data section takes too long to decode (at offset %zu)", offset);
    db->work_left--;
    if (offset >= size)
        return fail(w, d, "data offset %zu is past the data section (%zu bytes)", offset, size);
    uint8_t control = data[offset];
    size_t pos = offset + 1;
    int type = control >> 5;
    if (type == T_POINTER) {
        int extra = (control >> 3) & 3;
        if (pos + (size_t)extra + 1 > size)
            return fail(w, d, "truncated pointer at data offset %zu", offset);
        uint64_t target = control & 7;
        if (extra == 3)
            target = 0;
        for (int i = 0; i <= extra; i++)
            target = target << 8 | data[pos + i];
        static const uint64_t bias[4] = {0, 2048, 526336, 0};
        target += bias[extra];
        v->type = T_POINTER;
        v->size = 0;
        v->pos = (size_t)target;
        v->end = pos + (size_t)extra + 1;
        if (v->pos >= size)
            return fail(w, d, "pointer at data offset %zu leads past the data section", offset);
        return 0;
    }
    if (type == 0) {
        if (pos >= size)
            return fail(w, d, "truncated extended type at data offset %zu", offset);
        type = 7 + data[pos++];
        if (type < 8 || type > 15)
            return fail(w, d, "bad extended type %d at data offset %zu", type, offset);
    }
    uint32_t length = control & 0x1f;
    if (length >= 29) {
        int bytes = (int)length - 28;
        if (pos + (size_t)bytes > size)
            return fail(w, d, "truncated size at data offset %zu", offset);
        uint32_t extra = 0;
        for (int i = 0; i < bytes; i++)
            extra = extra << 8 | data[pos + i];
        pos += (size_t)bytes;
        length = bytes == 1 ? 29 + extra : bytes == 2 ? 285 + extra : 65821 + extra;
    }
    v->type = type;
    v->size = length;
    v->pos = pos;
    v->end = pos;
    switch (type) {
    case T_MAP:
    case T_ARRAY:
        return 0;
    case T_BOOLEAN:
        if (length > 1)
            return fail(w, d, "bad boolean at data offset %zu", offset);
        return 0;
    case T_DOUBLE:
        if (length != 8)
            return fail(w, d, "bad double size %u at data offset %zu", length, offset);
        break;
    case T_FLOAT:
        if (length != 4)
            return fail(w, d, "bad float size %u at data offset %zu", length, offset);
        break;
    case T_UINT16:
        if (length > 2)
            return fail(w, d, "bad uint16 size %u at data offset %zu", length, offset);
        break;
    case T_UINT32:
    case T_INT32:
        if (length > 4)
            return fail(w, d, "bad 32-bit integer size %u at data offset %zu", length, offset);
        break;
    case T_UINT64:
        if (length > 8)
            return fail(w, d, "bad uint64 size %u at data offset %zu", length, offset);
        break;
    case T_UINT128:
        if (length > 16)
            return fail(w, d, "bad uint128 size %u at data offset %zu", length, offset);
        break;
    case T_STRING:
    case T_BYTES:
        break;
    default:
        return fail(w, d, "data type %d is not allowed in a record (data offset %zu)", type,
                    offset);
    }
    if (length > size - pos)
        return fail(w, d, "value at data offset %zu runs past the data section", offset);
    v->end = pos + length;
    return 0;
}

/* The value at `offset` with pointers followed. */
static int resolve(walk_t *w, int d, size_t offset, value_t *v) {
    if (read_value(w, d, offset, v) < 0)
        return -1;
    for (int hops = 0; v->type == T_POINTER; hops++) {
        if (hops == MAX_POINTER_HOPS)
            return fail(w, d, "pointers lead to pointers at data offset %zu", offset);
        if (read_value(w, d, v->pos, v) < 0)
            return -1;
    }
    return 0;
}

/* *next = the offset just past the value at `offset` (pointers are not followed). */
static int skip(walk_t *w, int d, size_t offset, size_t *next, int depth) {
    value_t v;
    if (depth > MAX_NESTING)
        return fail(w, d, "values nested too deeply at data offset %zu", offset);
    if (read_value(w, d, offset, &v) < 0)
        return -1;
    if (v.type != T_MAP && v.type != T_ARRAY) {
        *next = v.end;
        return 0;
    }
    size_t pos = v.pos;
    uint64_t items = v.type == T_MAP ? 2 * (uint64_t)v.size : v.size;
    for (uint64_t i = 0; i < items; i++) {
        if (skip(w, d, pos, &pos, depth + 1) < 0)
            return -1;
    }
    *next = pos;
    return 0;
}

/* The map key at `offset` (a string, maybe through a pointer): its bytes, or NULL when it
 * is no string. */
static int key_at(walk_t *w, int d, size_t offset, const uint8_t **bytes, uint32_t *length) {
    value_t v;
    if (resolve(w, d, offset, &v) < 0)
        return -1;
    *bytes = v.type == T_STRING ? w->db[d].data + v.pos : NULL;
    *length = v.size;
    return 0;
}

/* One key/value pair of a map, at *pos: the key (NULL unless a string), where its value
 * is, and *pos moved past the pair. */
static int map_pair(walk_t *w, int d, size_t *pos, const uint8_t **key, uint32_t *length,
                    size_t *value_at) {
    if (key_at(w, d, *pos, key, length) < 0 || skip(w, d, *pos, value_at, 0) < 0)
        return -1;
    return skip(w, d, *value_at, pos, 0);
}

static int is(const uint8_t *bytes, uint32_t length, const char *name) {
    return bytes && length == strlen(name) && memcmp(bytes, name, length) == 0;
}

static uint64_t hash_bytes(const uint8_t *bytes, size_t length) {
    uint64_t hash = 1469598103934665603ULL;
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ bytes[i]) * 1099511628211ULL;
    return hash;
}

static size_t spread(uint64_t hash, size_t mask) {
    hash ^= hash >> 31;
    hash *= 0x9e3779b97f4a7c15ULL;
    hash ^= hash >> 29;
    return (size_t)hash & mask;
}

typedef uint64_t (*id_hash_t)(const walk_t *w, int32_t id);

static int idtab_grow(walk_t *w, idtab_t *tab, id_hash_t hash) {
    size_t capacity = tab->slots ? (tab->mask + 1) * 2 : 256;
    int32_t *slots = malloc(capacity * sizeof(*slots));
    if (!slots)
        return no_memory(w);
    memset(slots, 0xff, capacity * sizeof(*slots));
    size_t mask = capacity - 1;
    if (tab->slots) {
        for (size_t j = 0; j <= tab->mask; j++) {
            if (tab->slots[j] < 0)
                continue;
            size_t i = spread(hash(w, tab->slots[j]), mask);
            while (slots[i] >= 0)
                i = (i + 1) & mask;
            slots[i] = tab->slots[j];
        }
    }
    free(tab->slots);
    tab->slots = slots;
    tab->mask = mask;
    return 0;
}

static uint64_t string_hash(const walk_t *w, int32_t id) {
    const string_ref_t *s = (const string_ref_t *)w->strings.bytes + id;
    return hash_bytes(s->bytes, s->length);
}

/* The id of the string (its bytes stay in the file, which outlives the walk). */
static int intern_string(walk_t *w, int d, const uint8_t *bytes, uint32_t length, int32_t *id) {
    idtab_t *tab = &w->string_index;
    if ((!tab->slots || (tab->count + 1) * 2 > tab->mask + 1) && idtab_grow(w, tab, string_hash) < 0)
        return -1;
    size_t i = spread(hash_bytes(bytes, length), tab->mask);
    for (; tab->slots[i] >= 0; i = (i + 1) & tab->mask) {
        const string_ref_t *s = (const string_ref_t *)w->strings.bytes + tab->slots[i];
        if (s->length == length && memcmp(s->bytes, bytes, length) == 0) {
            *id = tab->slots[i];
            return 0;
        }
    }
    string_ref_t *s = vec_push(&w->strings);
    if (!s)
        return no_memory(w);
    s->bytes = bytes;
    s->length = length;
    s->database = d;
    *id = tab->slots[i] = (int32_t)(w->strings.count - 1);
    tab->count++;
    return 0;
}

/* The string under `name` in the map at `offset` (the last one, as a dict keeps it);
 * -1 when the value is no map, has no such key, or holds no string there. `kind` names
 * the question for the memo: the maps of continents, countries and subdivisions are
 * shared by many records. */
static int map_string(walk_t *w, int d, size_t offset, const char *name, int kind, int32_t *id) {
    value_t v;
    if (resolve(w, d, offset, &v) < 0)
        return -1;
    uint64_t memo_key = (uint64_t)d << 40 | (uint64_t)kind << 32 | (uint64_t)(uint32_t)v.pos;
    if (memo_get(&w->values, memo_key, id))
        return 0;
    *id = -1;
    if (kind == KIND_FIRST_ISO_CODE) {  /* subdivisions: the first element's iso_code */
        if (v.type == T_ARRAY && v.size > 0 && map_string(w, d, v.pos, "iso_code", KIND_ISO_CODE, id) < 0)
            return -1;
    } else if (v.type == T_MAP) {
        size_t pos = v.pos;
        for (uint32_t i = 0; i < v.size; i++) {
            const uint8_t *key;
            uint32_t length;
            size_t value_at;
            if (map_pair(w, d, &pos, &key, &length, &value_at) < 0)
                return -1;
            if (!is(key, length, name))
                continue;
            value_t s;
            if (resolve(w, d, value_at, &s) < 0)
                return -1;
            *id = -1;
            if (s.type == T_STRING && intern_string(w, d, w->db[d].data + s.pos, s.size, id) < 0)
                return -1;
        }
    }
    if (memo_put(&w->values, memo_key, *id) < 0)
        return no_memory(w);
    return 0;
}

/* An ASN as `int(value)` gives it for numbers; anything else is no ASN. */
static int number(walk_t *w, int d, size_t offset, int64_t *out) {
    value_t v;
    if (resolve(w, d, offset, &v) < 0)
        return -1;
    const uint8_t *p = w->db[d].data + v.pos;
    uint64_t raw = 0;
    *out = GEO_ASN_NONE;
    switch (v.type) {
    case T_UINT16:
    case T_UINT32:
    case T_UINT64:
    case T_UINT128:
    case T_INT32:
        for (uint32_t i = 0; i < v.size; i++) {
            if (raw >> 56)
                return 0;  /* more than 64 bits: no ASN rule can name it */
            raw = raw << 8 | p[i];
        }
        if (v.type == T_INT32)
            *out = (int32_t)(uint32_t)raw;  /* shorter than 4 bytes: zero-padded, positive */
        else if (raw <= INT64_MAX)
            *out = (int64_t)raw;
        return 0;
    case T_BOOLEAN:
        *out = v.size;
        return 0;
    case T_DOUBLE:
    case T_FLOAT: {
        double value;
        if (v.type == T_DOUBLE) {
            for (int i = 0; i < 8; i++)
                raw = raw << 8 | p[i];
            memcpy(&value, &raw, sizeof(value));
        } else {
            uint32_t bits = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            float single;
            memcpy(&single, &bits, sizeof(single));
            value = single;
        }
        if (isfinite(value) && value > -9.2e18 && value < 9.2e18)
            *out = (int64_t)value;  /* truncates toward zero, as int() */
        return 0;
    }
    default:
        return 0;
    }
}

static uint64_t entry_hash(const walk_t *w, int32_t id) {
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    const fields_t *f = (const fields_t *)w->entries.bytes + id;
    uint64_t hash = (uint32_t)f->continent;
    hash = hash * k ^ (uint32_t)f->country;
    hash = hash * k ^ (uint32_t)f->subdivision;
    hash = hash * k ^ (uint64_t)f->asn;
    hash = hash * k ^ f->coordinates;
    uint64_t bits[2];
    memcpy(bits, &f->latitude, 8);
    memcpy(bits + 1, &f->longitude, 8);
    hash = hash * k ^ bits[0];
    hash = hash * k ^ bits[1];
    return hash * k ^ f->mask;
}

static int same_fields(const fields_t *a, const fields_t *b) {
    return a->continent == b->continent && a->country == b->country
           && a->subdivision == b->subdivision && a->asn == b->asn && a->mask == b->mask
           && a->coordinates == b->coordinates
           && memcmp(&a->latitude, &b->latitude, sizeof(double)) == 0
           && memcmp(&a->longitude, &b->longitude, sizeof(double)) == 0;
}

static int intern_fields(walk_t *w, const fields_t *fields, int32_t *id) {
    idtab_t *tab = &w->entry_index;
    if ((!tab->slots || (tab->count + 1) * 2 > tab->mask + 1) && idtab_grow(w, tab, entry_hash) < 0)
        return -1;
    fields_t *slot = vec_push(&w->entries);  /* tentatively, for the hash */
    if (!slot)
        return no_memory(w);
    *slot = *fields;
    int32_t fresh = (int32_t)(w->entries.count - 1);
    size_t i = spread(entry_hash(w, fresh), tab->mask);
    for (; tab->slots[i] >= 0; i = (i + 1) & tab->mask) {
        if (same_fields((const fields_t *)w->entries.bytes + tab->slots[i], fields)) {
            w->entries.count--;
            *id = tab->slots[i];
            return 0;
        }
    }
    *id = tab->slots[i] = fresh;
    tab->count++;
    return 0;
}

/* `latitude` and `longitude` of the map at `offset` (`location` of a City record), as
 * maxminddb gives them to `location_from_record`: a double or a float is the number
 * (a float widened, as Python does); any other value is odd (Python would read it,
 * this walk does not: lookups there stay Python's). The last of duplicate keys wins. */
static int coordinates(walk_t *w, int d, size_t offset, fields_t *fields) {
    value_t v;
    if (resolve(w, d, offset, &v) < 0)
        return -1;
    if (v.type != T_MAP)
        return 0;
    size_t pos = v.pos;
    for (uint32_t i = 0; i < v.size; i++) {
        const uint8_t *key;
        uint32_t length;
        size_t value_at;
        if (map_pair(w, d, &pos, &key, &length, &value_at) < 0)
            return -1;
        int latitude = is(key, length, "latitude");
        if (!latitude && !is(key, length, "longitude"))
            continue;
        value_t n;
        if (resolve(w, d, value_at, &n) < 0)
            return -1;
        const uint8_t *p = w->db[d].data + n.pos;
        double value = 0;
        uint32_t odd = latitude ? GEO_ODD_LATITUDE : GEO_ODD_LONGITUDE;
        uint32_t has = latitude ? GEO_HAS_LATITUDE : GEO_HAS_LONGITUDE;
        fields->coordinates = (fields->coordinates & ~odd) | has;
        if (n.type == T_DOUBLE) {
            uint64_t raw = 0;
            for (int b = 0; b < 8; b++)
                raw = raw << 8 | p[b];
            memcpy(&value, &raw, sizeof(value));
        } else if (n.type == T_FLOAT) {
            uint32_t bits = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            float single;
            memcpy(&single, &bits, sizeof(single));
            value = single;
        } else {
            fields->coordinates |= odd;
        }
        if (latitude)
            fields->latitude = value;
        else
            fields->longitude = value;
    }
    return 0;
}

/* The entry of the record at `offset` of database d: decoded once. */
static int record_entry(walk_t *w, int d, size_t offset, int32_t *id) {
    uint64_t memo_key = (uint64_t)d << 32 | (uint32_t)offset;
    if (memo_get(&w->records, memo_key, id))
        return 0;
    fields_t fields = {-1, -1, -1, GEO_ASN_NONE, w->locations ? 1u : 1u << d, 0, 0, 0};
    value_t v;
    if (resolve(w, d, offset, &v) < 0)
        return -1;
    if (v.type == T_MAP) {
        size_t pos = v.pos;
        for (uint32_t i = 0; i < v.size; i++) {
            const uint8_t *key;
            uint32_t length;
            size_t value_at;
            if (map_pair(w, d, &pos, &key, &length, &value_at) < 0)
                return -1;
            if (is(key, length, "continent")
                && map_string(w, d, value_at, "code", KIND_CODE, &fields.continent) < 0)
                return -1;
            if (is(key, length, "country")
                && map_string(w, d, value_at, "iso_code", KIND_ISO_CODE, &fields.country) < 0)
                return -1;
            if (is(key, length, "subdivisions")
                && map_string(w, d, value_at, NULL, KIND_FIRST_ISO_CODE, &fields.subdivision) < 0)
                return -1;
            if (!w->locations && is(key, length, "autonomous_system_number")
                && number(w, d, value_at, &fields.asn) < 0)
                return -1;
            if (w->locations && is(key, length, "location")
                && coordinates(w, d, value_at, &fields) < 0)
                return -1;
        }
    }
    if (intern_fields(w, &fields, id) < 0)
        return -1;
    if (memo_put(&w->records, memo_key, *id) < 0)
        return no_memory(w);
    return 0;
}

/* Each field from the first entry that knows it. */
static int merge(walk_t *w, int32_t a, int32_t b, int32_t *id) {
    uint64_t memo_key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    if (memo_get(&w->merged, memo_key, id))
        return 0;
    const fields_t *x = (const fields_t *)w->entries.bytes + a;
    const fields_t *y = (const fields_t *)w->entries.bytes + b;
    fields_t fields = {
        x->continent >= 0 ? x->continent : y->continent,
        x->country >= 0 ? x->country : y->country,
        x->subdivision >= 0 ? x->subdivision : y->subdivision,
        x->asn != GEO_ASN_NONE ? x->asn : y->asn,
        x->mask | y->mask,
        0, x->latitude, x->longitude,
    };
    uint32_t lat = GEO_HAS_LATITUDE | GEO_ODD_LATITUDE, lon = GEO_HAS_LONGITUDE | GEO_ODD_LONGITUDE;
    const fields_t *by_lat = x->coordinates & GEO_HAS_LATITUDE ? x : y;
    const fields_t *by_lon = x->coordinates & GEO_HAS_LONGITUDE ? x : y;
    fields.latitude = by_lat->latitude;
    fields.longitude = by_lon->longitude;
    fields.coordinates = (by_lat->coordinates & lat) | (by_lon->coordinates & lon);
    if (intern_fields(w, &fields, id) < 0)
        return -1;
    if (memo_put(&w->merged, memo_key, *id) < 0)
        return no_memory(w);
    return 0;
}

/* --- the search tree ---------------------------------------------------------------- */

/* Record `right` of `node` (node < node_count), checked: a node, "no data", or a data
 * offset inside the data section. */
static int read_record(walk_t *w, int d, uint32_t node, int right, uint32_t *out) {
    db_t *db = &w->db[d];
    if (db->reads_left == 0)
        return fail(w, d, "the search tree reaches its nodes more than once (loop at node %u)", node);
    db->reads_left--;
    const uint8_t *p;
    uint32_t value;
    switch (db->record_size) {
    case 24:
        p = db->tree + (size_t)node * 6 + (right ? 3 : 0);
        value = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        break;
    case 28:
        p = db->tree + (size_t)node * 7;
        value = right ? ((uint32_t)(p[3] & 0x0f) << 24 | (uint32_t)p[4] << 16 | (uint32_t)p[5] << 8 | p[6])
                      : ((uint32_t)(p[3] & 0xf0) << 20 | (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]);
        break;
    default:
        p = db->tree + (size_t)node * 8 + (right ? 4 : 0);
        value = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        break;
    }
    if (value > db->node_count) {
        uint64_t past = (uint64_t)value - db->node_count;
        if (past < 16 || past - 16 >= db->data_size)
            return fail(w, d, "record %u of node %u points outside the data section", right, node);
    }
    *out = value;
    return 0;
}

/* A run from `start` (merged into the one before when it says the same); `depth` is the
 * length of the leaf's network, kept by the location walk. */
static int emit(walk_t *w, runs_t *runs, int bits, u128 start, int32_t key, int depth) {
    uint8_t prefix = 0;
    if (w->locations && key >= 0) {
        int cap = w->cap[bits == 128];
        prefix = (uint8_t)(depth < cap ? depth : cap);
    }
    if (runs->ids.count > 0) {
        int32_t last;
        memcpy(&last, runs->ids.bytes + 4 * (runs->ids.count - 1), 4);
        if (last == key && (!w->locations || runs->prefixes.bytes[runs->prefixes.count - 1] == prefix))
            return 0;
    }
    uint8_t *at = vec_push(&runs->starts);
    uint8_t *id = vec_push(&runs->ids);
    if (!at || !id)
        return no_memory(w);
    store_be(at, bits / 8, start);
    memcpy(id, &key, 4);
    if (w->locations) {
        uint8_t *length = vec_push(&runs->prefixes);
        if (!length)
            return no_memory(w);
        *length = prefix;
    }
    return 0;
}

/* The entry for the databases' records at a leaf (-1: none has one). */
static int leaf_key(walk_t *w, const uint32_t *state, int32_t *key) {
    if (w->have_last && memcmp(state, w->last_state, sizeof(uint32_t) * (size_t)w->count) == 0) {
        *key = w->last_key;
        return 0;
    }
    int32_t found = -1;
    for (int d = 0; d < w->count; d++) {
        if (state[d] == w->db[d].node_count)
            continue;
        int32_t entry;
        if (w->have_last && state[d] == w->last_state[d])
            entry = w->last_entry[d];  /* this database's record did not change */
        else if (record_entry(w, d, (size_t)(state[d] - w->db[d].node_count - 16), &entry) < 0)
            return -1;
        w->last_entry[d] = entry;
        if (found < 0)
            found = entry;
        else if (merge(w, found, entry, &found) < 0)
            return -1;
    }
    memcpy(w->last_state, state, sizeof(uint32_t) * (size_t)w->count);
    w->last_key = *key = found;
    w->have_last = 1;
    return 0;
}

typedef struct {
    walk_t *w;
    runs_t *runs;
    int bits;    /* 32 or 128 */
    int v6;      /* the IPv6 family of an IPv6 tree: ::/96 is IPv4's, aliases are skipped */
} family_t;

/* Every leaf under the prefix `addr`/`depth`, where database d is at record state[d]. */
static int visit(family_t *f, int depth, u128 addr, const uint32_t *state) {
    walk_t *w = f->w;
    u128 start = depth == 0 ? 0 : addr << (f->bits - depth);
    int32_t ipv4s = w->locations ? GEO_ALIAS : -1;
    if (f->v6 && depth == 96 && addr == 0)
        return emit(w, f->runs, f->bits, start, ipv4s, depth);  /* ::/96 is the IPv4 family */
    int inner = 0;
    for (int d = 0; d < w->count; d++)
        inner |= state[d] < w->db[d].node_count;
    if (!inner) {
        int32_t key;
        if (leaf_key(w, state, &key) < 0)
            return -1;
        if (f->v6 && addr == 0 && depth < 96) {  /* a record above ::/96: not for IPv4 here */
            if (emit(w, f->runs, f->bits, 0, ipv4s, depth) < 0)
                return -1;
            start = (u128)1 << 32;
        }
        return emit(w, f->runs, f->bits, start, key, depth);
    }
    if (depth == f->bits) {
        for (int d = 0; d < w->count; d++) {
            if (state[d] < w->db[d].node_count)
                return fail(w, d, "the search tree is deeper than %d bits", f->bits);
        }
    }
    for (int side = 0; side < 2; side++) {
        /* The location walk answers for client networks, never longer than the cap: past
         * it only the leaf holding the block's first address counts. */
        if (side == 1 && w->locations && depth >= w->cap[f->bits == 128])
            break;
        uint32_t child[GEO_MAX_DATABASES];
        u128 child_addr = addr << 1 | (u128)side;
        int alias = 0;
        for (int d = 0; d < w->count; d++) {
            db_t *db = &w->db[d];
            child[d] = state[d];
            if (state[d] >= db->node_count)
                continue;
            if (read_record(w, d, state[d], side, &child[d]) < 0)
                return -1;
            if (f->v6 && child[d] == db->ipv4_start && db->ipv4_start < db->node_count
                && child_addr != 0) {
                child[d] = db->node_count;  /* an alias of the IPv4 subtree */
                alias = 1;
            }
        }
        if (alias && w->locations) {
            if (emit(w, f->runs, f->bits, child_addr << (f->bits - depth - 1), GEO_ALIAS, 0) < 0)
                return -1;
            continue;
        }
        if (visit(f, depth + 1, child_addr, child) < 0)
            return -1;
    }
    return 0;
}

void walk_init(walk_t *w) {
    memset(w, 0, sizeof(*w));
    for (int i = 0; i < 2; i++) {
        w->runs[i].starts.width = i == 0 ? 4 : 16;
        w->runs[i].ids.width = 4;
        w->runs[i].prefixes.width = 1;
    }
    w->entries.width = sizeof(fields_t);
    w->strings.width = sizeof(string_ref_t);
    w->failed = -1;
}

int walk_add(walk_t *w, const uint8_t *file, size_t size, uint32_t node_count,
             int record_size, int ip_version, size_t data_end) {
    int d = w->count;
    if (d == GEO_MAX_DATABASES)
        return fail(w, d, "more than %d databases", GEO_MAX_DATABASES);
    if (record_size != 24 && record_size != 28 && record_size != 32)
        return fail(w, d, "record size %d (24, 28 or 32 bits)", record_size);
    if (ip_version != 4 && ip_version != 6)
        return fail(w, d, "IP version %d (4 or 6)", ip_version);
    uint64_t tree_size = (uint64_t)node_count * (uint64_t)record_size / 4;
    if (data_end > size || tree_size + 16 > data_end)
        return fail(w, d, "%u nodes of %d-bit records do not fit the file (%zu bytes before "
                    "the metadata)", node_count, record_size, data_end);
    if (data_end - tree_size - 16 >= UINT32_MAX)
        return fail(w, d, "data section over 4 GiB");
    db_t *db = &w->db[d];
    db->tree = file;
    db->node_count = node_count;
    db->record_size = record_size;
    db->ip_version = ip_version;
    db->data = file + tree_size + 16;
    db->data_size = data_end - (size_t)tree_size - 16;
    db->reads_left = 2 * (uint64_t)node_count + 256;
    db->work_left = 16 * (uint64_t)db->data_size + (1u << 22);
    w->count++;
    /* Where IPv4 starts: ::/96, reached by 96 left turns (or a record above it). */
    uint32_t node = 0;
    for (int depth = 0; ip_version == 6 && depth < 96 && node < node_count; depth++) {
        if (read_record(w, d, node, 0, &node) < 0)
            return -1;
    }
    db->ipv4_start = node;
    return 0;
}

int walk_run(walk_t *w) {
    uint32_t state[GEO_MAX_DATABASES];
    family_t v4 = {w, &w->runs[0], 32, 0};
    for (int d = 0; d < w->count; d++)
        state[d] = w->db[d].ipv4_start;
    if (visit(&v4, 0, 0, state) < 0)
        return -1;
    family_t v6 = {w, &w->runs[1], 128, 1};
    for (int d = 0; d < w->count; d++)
        state[d] = w->db[d].ip_version == 6 ? 0 : w->db[d].node_count;
    return visit(&v6, 0, 0, state);
}

static uint64_t place_hash(const place_t *p) {
    uint64_t parts[2] = {(uint64_t)(uint32_t)p->continent << 32 | (uint32_t)p->country,
                         (uint64_t)(uint32_t)p->subdivision};
    return hash_bytes((const uint8_t *)parts, sizeof(parts));
}

int walk_places(walk_t *w, vec_t *places, int32_t *entry_place) {
    size_t count = w->entries.count;
    size_t capacity = 64;
    while (capacity < 2 * count + 2)
        capacity *= 2;
    int32_t *slots = malloc(capacity * sizeof(*slots));
    if (!slots)
        return no_memory(w);
    memset(slots, 0xff, capacity * sizeof(*slots));
    size_t mask = capacity - 1;
    places->width = sizeof(place_t);
    for (size_t e = 0; e < count; e++) {
        const fields_t *f = (const fields_t *)w->entries.bytes + e;
        place_t place = {f->continent, f->country, f->subdivision};
        size_t i = spread(place_hash(&place), mask);
        for (; slots[i] >= 0; i = (i + 1) & mask) {
            const place_t *known = (const place_t *)places->bytes + slots[i];
            if (known->continent == place.continent && known->country == place.country
                && known->subdivision == place.subdivision)
                break;
        }
        if (slots[i] < 0) {
            place_t *fresh = vec_push(places);
            if (!fresh) {
                free(slots);
                return no_memory(w);
            }
            *fresh = place;
            slots[i] = (int32_t)(places->count - 1);
        }
        entry_place[e] = slots[i];
    }
    free(slots);
    return 0;
}

void walk_free_memos(walk_t *w) {
    free(w->entry_index.slots);
    free(w->string_index.slots);
    w->entry_index.slots = w->string_index.slots = NULL;
    memo_free(&w->records);
    memo_free(&w->values);
    memo_free(&w->merged);
}

void walk_free(walk_t *w) {
    for (int i = 0; i < 2; i++) {
        vec_free(&w->runs[i].starts);
        vec_free(&w->runs[i].ids);
        vec_free(&w->runs[i].prefixes);
    }
    vec_free(&w->entries);
    vec_free(&w->strings);
    walk_free_memos(w);
}
