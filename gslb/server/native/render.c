/* Answers built in C from the zone data itself, when the answer table has no entry.
 *
 * The long tail (a million owners asked once each, reverse zones, a first query after
 * start) would otherwise be a Python render per query. This file follows
 * gslb/dns/resolver.py (RFC 1034 4.3.2: the walk from the apex, referrals with glue,
 * NXDOMAIN, wildcards, NODATA, CNAME chains, additional addresses) and
 * gslb/dns/render.py with gslb/dns/message.py (section order, name compression, the OPT
 * record) for the shapes that are common, and gives byte for byte the reply Python
 * gives. Anything else is declined (0), and the query goes to Python as before: a DNAME
 * on the way, DO in a signed zone, an RRSIG question, NSID, a steered name, a name
 * the zone lacks that only a wildcard could answer in the additional section, a reply
 * that would not fit, RRsets with records equal but for case (dnspython keeps one).
 *
 * The zone data is the zone's own: each owner's records as one bytes object in the
 * Python `Zone.records` dict (gslb/dns/blob.py format), read in place under the GIL,
 * never copied. The name set of answer.c (`names_flags`) answers "no such name" and
 * "not a cut" for certain; what it says exists is confirmed in the dict. */
#include "native.h"
#include <string.h>

#define T_A 1
#define T_NS 2
#define T_CNAME 5
#define T_SOA 6
#define T_PTR 12
#define T_MX 15
#define T_AAAA 28
#define T_SRV 33
#define T_DS 43
#define T_RRSIG 46
#define T_SVCB 64
#define T_HTTPS 65
#define T_ANY 255
#define QR 0x8000
#define AA 0x0400
#define RD_CD 0x0110
#define NXDOMAIN 3
#define MAX_CHAIN 8        /* CNAMEs followed, as resolver.MAX_CNAME_CHAIN */
#define MAX_SECTION 24     /* RRsets per section: more is Python's */
#define MAX_SET 64         /* records per RRset: more is Python's */
#define MAX_NAMES 160      /* compression table entries */
#define MAX_STORED 48      /* names copied out of rdata (targets) */
#define MAX_COUNTS 100000  /* (zone, type, rcode) counters before counting is Python's */

/* Types of which dnspython keeps one record per RRset (the last, at the lowest TTL). */
static int singleton(uint16_t type)
{
    return type == T_SOA || type == T_CNAME || type == 30 || type == 39 || type == 47;
}

/* The next record of `type` at *offset, as next_record, the others skipped. */
static int next_of_type(blob_t b, size_t *offset, uint16_t type, uint32_t *ttl,
                        const unsigned char **rdata, size_t *rdlength)
{
    uint16_t rtype;
    int more;
    while ((more = next_record(b, offset, &rtype, ttl, rdata, rdlength)) > 0)
        if (rtype == type)
            return 1;
    return more;
}

/* The RRset of `type`: 1 and its TTL (the lowest, as dnspython keeps it) when the blob
 * has one, 0 when not, -1 for what C leaves to Python (malformed, too many records, two
 * records equal but for case: dnspython compares names case-blind and keeps one; more
 * than one record of a singleton type). */
static int rrset_of(blob_t b, uint16_t type, uint32_t *ttl_out)
{
    const unsigned char *seen[MAX_SET];
    size_t seen_length[MAX_SET], count = 0, offset = 0, rdlength;
    uint32_t ttl;
    const unsigned char *rdata;
    int more;
    while ((more = next_of_type(b, &offset, type, &ttl, &rdata, &rdlength)) > 0) {
        if (count == MAX_SET || (count && singleton(type)))
            return -1;
        for (size_t i = 0; i < count; i++) {
            if (seen_length[i] != rdlength)
                continue;
            size_t k = 0;
            while (k < rdlength && (unsigned char)(rdata[k] | 0x20) == (unsigned char)(seen[i][k] | 0x20))
                k++;
            if (k == rdlength)
                return -1;
        }
        if (count == 0 || ttl < *ttl_out)
            *ttl_out = ttl;
        seen[count] = rdata;
        seen_length[count++] = rdlength;
    }
    return more < 0 ? -1 : count > 0;
}

/* The length of an uncompressed wire name at p (at most `room` bytes), 0 if it is not one. */
static size_t name_length(const unsigned char *p, size_t room)
{
    size_t i = 0;
    while (i < room && i < MAX_NAME) {
        unsigned label = p[i];
        if (label == 0)
            return i + 1;
        if (label > 63)
            return 0;
        i += label + 1u;
    }
    return 0;
}

/* ---- the reply being built -------------------------------------------------------- */

enum { ANSWER, AUTHORITY, ADDITIONAL };

typedef struct {
    const unsigned char *wire;   /* the owner as written in full (case as Python has it) */
    const unsigned char *lower;  /* lowercase: what compression and identity compare */
    size_t length;
    blob_t blob;                 /* the owner's records */
    uint16_t type;
    uint32_t ttl;
    int node;                    /* the node's own RRset, not a wildcard's copy */
} rrset_t;

typedef struct {
    Table *t;
    const query_t *q;
    const unsigned char *qwire;  /* the question name as sent */
    rrset_t sections[3][MAX_SECTION];
    size_t counts[3];
    int rcode, aa;
    size_t anchor;               /* offset of the anchor in the question name */
    int question_zone;           /* the zone the metrics count the answer under */
    const unsigned char *seen[MAX_CHAIN + 2];
    size_t seen_length[MAX_CHAIN + 2], seen_count;
    unsigned char stored[MAX_STORED][2][MAX_NAME];  /* case-kept and lowercase copies */
    size_t stored_count;
    unsigned char lowered[MAX_SET][MAX_NAME];  /* rdata names as written, lowercase */
} render_t;

#define DECLINE (-1)

static int add(render_t *r, int section, const unsigned char *wire, const unsigned char *lower,
               size_t length, blob_t blob, uint16_t type, uint32_t ttl, int node)
{
    if (r->counts[section] == MAX_SECTION)
        return DECLINE;
    r->sections[section][r->counts[section]++] =
        (rrset_t){wire, lower, length, blob, type, ttl, node};
    return 0;
}

/* A name out of rdata, copied (as written and lowercase) so it outlives the lookup. */
static int store_name(render_t *r, const unsigned char *wire, size_t n, const unsigned char **kept,
                      const unsigned char **lower)
{
    if (r->stored_count == MAX_STORED)
        return DECLINE;
    unsigned char (*slot)[MAX_NAME] = r->stored[r->stored_count++];
    memcpy(slot[0], wire, n);
    for (size_t i = 0; i < n; i++)
        slot[1][i] = lower_ascii(wire[i]);
    *kept = slot[0];
    *lower = slot[1];
    return 0;
}

/* The owner's blob in a zone: 1 found, 0 no such owner, DECLINE on error. The blob
 * stays referenced until the reply is written. */
/* The key a name is looked up under: one bytes object of this module's, rewritten in
 * place for each lookup (its cached hash reset), never seen by anyone else. A new bytes
 * object per lookup would land in a free slot of a pool the zone's own objects filled
 * before the workers forked, and copy that shared page in every worker. */
static PyObject *lookup_key(const unsigned char *name, size_t n)
{
    static PyObject *key;
    if (key == NULL && (key = PyBytes_FromStringAndSize(NULL, MAX_NAME)) == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyBytesObject *bytes = (PyBytesObject *)key;
    memcpy(bytes->ob_sval, name, n);
    bytes->ob_sval[n] = 0;
    Py_SET_SIZE(bytes, (Py_ssize_t)n);
    _Py_COMP_DIAG_PUSH
    _Py_COMP_DIAG_IGNORE_DEPR_DECLS
    bytes->ob_shash = -1;
    _Py_COMP_DIAG_POP
    return key;
}

static int owner_blob(render_t *r, int zone, const unsigned char *name, size_t n, blob_t *out)
{
    const owner_t *owner;
    int known = names_owner(r->t, (size_t)zone, name, n, &owner);
    if (known == 0 || (known == 1 && owner->blob == NULL))
        return 0;  /* no such name, or an empty non-terminal: no records */
    if (known == 1) {  /* found by comparing bytes: nothing in the zone is written */
        out->data = (const unsigned char *)PyBytes_AS_STRING(owner->blob);
        out->length = (size_t)PyBytes_GET_SIZE(owner->blob);
        return 1;
    }
    /* the name set cannot tell (a shared slot): the zone's dict */
    PyObject *records = r->t->zones[zone].records;
    if (records == NULL)
        return DECLINE;
    PyObject *key = lookup_key(name, n);
    if (key == NULL)
        return DECLINE;
    PyObject *value = PyDict_GetItemWithError(records, key);
    if (value == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return DECLINE;
        }
        return 0;
    }
    if (!PyBytes_Check(value))
        return DECLINE;
    /* Borrowed: the zone's dict never changes and holds it while the GIL is held; no
     * reference count is written, so forked workers keep sharing the zone's pages. */
    out->data = (const unsigned char *)PyBytes_AS_STRING(value);
    out->length = (size_t)PyBytes_GET_SIZE(value);
    return 1;
}

/* Does the name exist in the zone (an owner or an empty non-terminal)? */
static int exists(render_t *r, int zone, const unsigned char *name, size_t n)
{
    const owner_t *owner;
    int known = names_owner(r->t, (size_t)zone, name, n, &owner);
    if (known >= 0)
        return known;
    if (!(names_flags(r->t, (size_t)zone, name, n) & NAME_EXISTS))
        return 0;  /* the name set has no false "no" */
    blob_t b;
    int found = owner_blob(r, zone, name, n, &b);
    if (found != 0)
        return found;
    PyObject *ents = r->t->zones[zone].ents;
    PyObject *key = lookup_key(name, n);
    if (ents == NULL || key == NULL)
        return DECLINE;
    int in = PySet_Contains(ents, key);
    if (in < 0) {
        PyErr_Clear();
        return DECLINE;
    }
    return in;
}

/* Is this name a zone cut (an owner below the apex with NS)? */
static int is_cut(render_t *r, int zone, const unsigned char *name, size_t n, blob_t *blob)
{
    if (!(names_flags(r->t, (size_t)zone, name, n) & NAME_CUT) || n == r->t->zones[zone].length)
        return 0;
    int found = owner_blob(r, zone, name, n, blob);
    if (found <= 0)
        return found;
    uint32_t ttl;
    return rrset_of(*blob, T_NS, &ttl);
}

static int is_subdomain(const unsigned char *name, size_t n, const zone_t *z)
{
    if (n < z->length || memcmp(name + n - z->length, z->origin, z->length) != 0)
        return 0;
    size_t i = 0;  /* the origin must start at a label boundary */
    while (i < n - z->length)
        i += name[i] + 1u;
    return i == n - z->length;
}

/* The most specific served zone holding the name (Zones.find), -1 for none. */
static int zone_holding(const Table *t, const unsigned char *name, size_t n)
{
    for (size_t i = 0; name[i]; i += name[i] + 1u) {
        int zone = zone_of(t, name + i, n - i);
        if (zone >= 0)
            return zone;
    }
    return t->root_zone;
}

static int lookup(render_t *r, int zone, const unsigned char *wire, const unsigned char *lower,
                  size_t n);

/* Step 3a at a node (resolver._answer_from_node); `wild` when it is a wildcard's. */
static int answer_node(render_t *r, int zone, const unsigned char *wire, const unsigned char *lower,
                       size_t n, blob_t node, int wild);

static int negative(render_t *r, int zone, int nxdomain)
{
    const zone_t *z = &r->t->zones[zone];
    if (z->apex == NULL)
        return DECLINE;
    blob_t apex = {(const unsigned char *)PyBytes_AS_STRING(z->apex), (size_t)PyBytes_GET_SIZE(z->apex)};
    if (add(r, AUTHORITY, z->origin_case, z->origin, z->length, apex, T_SOA, z->negative_ttl, 0) < 0)
        return DECLINE;
    if (nxdomain)
        r->rcode = NXDOMAIN;
    return 0;
}

/* Is the name at or below a cut of the zone (resolver._below_cut)? */
static int below_cut(render_t *r, int zone, const unsigned char *name, size_t n)
{
    size_t apex = n - r->t->zones[zone].length;
    for (size_t i = 0; i < apex; i += name[i] + 1u) {
        blob_t blob;
        int cut = is_cut(r, zone, name + i, n - i, &blob);
        if (cut != 0)
            return cut;
    }
    return 0;
}

/* Has this node's RRset already gone into the answer or additional section? */
static int listed(const render_t *r, const unsigned char *lower, size_t n, uint16_t type)
{
    static const int sections[] = {ANSWER, ADDITIONAL};
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < r->counts[sections[s]]; i++) {
            const rrset_t *x = &r->sections[sections[s]][i];
            if (x->node && x->type == type && x->length == n && memcmp(x->lower, lower, n) == 0)
                return 1;
        }
    return 0;
}

/* A and AAAA of a target (resolver._add_addresses); `glue` for a referral's. */
static int add_addresses(render_t *r, int zone, const unsigned char *target, size_t n, int glue)
{
    int occluded = below_cut(r, zone, target, n);
    if (occluded < 0)
        return DECLINE;
    if (occluded && !glue)
        return 0;
    blob_t node = {NULL, 0};
    int found = owner_blob(r, zone, target, n, &node);
    if (found < 0)
        return DECLINE;
    if (node.length == 0 && !occluded) {
        int there = exists(r, zone, target, n);
        if (there < 0)
            return DECLINE;
        if (!there) {
            /* a name the zone lacks gets its wildcard's addresses: Python renames them */
            size_t apex = n - r->t->zones[zone].length, at = target[0] + 1u;
            while (at < apex && (there = exists(r, zone, target + at, n - at)) == 0)
                at += target[at] + 1u;
            if (there < 0 || n - at + 2 > MAX_NAME)
                return DECLINE;
            unsigned char wildcard[MAX_NAME] = {1, '*'};
            memcpy(wildcard + 2, target + at, n - at);
            blob_t w;
            uint32_t ttl;
            int has = owner_blob(r, zone, wildcard, n - at + 2, &w);
            if (has < 0 || (has && (rrset_of(w, T_A, &ttl) != 0 || rrset_of(w, T_AAAA, &ttl) != 0)))
                return DECLINE;
            return 0;
        }
    }
    static const uint16_t types[] = {T_A, T_AAAA};
    for (int i = 0; i < 2; i++) {
        uint32_t ttl;
        int has = node.length ? rrset_of(node, types[i], &ttl) : 0;
        if (has < 0)
            return DECLINE;
        if (has && !listed(r, target, n, types[i]) &&
            add(r, ADDITIONAL, target, target, n, node, types[i], ttl, 1) < 0)
            return DECLINE;
    }
    return 0;
}

/* Where the target name starts in a record's rdata, for additional processing. */
static long target_at(uint16_t type)
{
    switch (type) {
    case T_NS: return 0;
    case T_MX: case T_SVCB: case T_HTTPS: return 2;
    case T_SRV: return 6;
    default: return -1;
    }
}

/* Additional-section processing for MX, SRV, NS, SVCB and HTTPS targets in the zone
 * (resolver._add_targets); the referral's glue (`glue`) the same way. */
static int add_targets(render_t *r, int zone, blob_t node, uint16_t type, int glue)
{
    long at = target_at(type);
    if (at < 0)
        return 0;
    size_t offset = 0, rdlength;
    uint32_t ttl;
    const unsigned char *rdata;
    int more;
    while ((more = next_of_type(node, &offset, type, &ttl, &rdata, &rdlength)) > 0) {
        if ((size_t)at >= rdlength)
            return DECLINE;
        size_t n = name_length(rdata + at, rdlength - (size_t)at);
        if (n == 0)
            return DECLINE;
        if (n == 1)
            continue;  /* "." names no host (null MX, SRV "no service") */
        const unsigned char *kept, *lower;
        if (store_name(r, rdata + at, n, &kept, &lower) < 0)
            return DECLINE;
        if (is_subdomain(lower, n, &r->t->zones[zone]) &&
            add_addresses(r, zone, lower, n, glue || type == T_NS) < 0)
            return DECLINE;
    }
    return more < 0 ? DECLINE : 0;
}

/* A delegation (resolver._refer): the cut's NS in authority, glue in additional. */
static int refer(render_t *r, int zone, const unsigned char *cut, size_t n, blob_t node)
{
    uint32_t ttl;
    if (rrset_of(node, T_NS, &ttl) <= 0)
        return DECLINE;
    if (r->counts[ANSWER] == 0) {
        r->anchor = r->q->name_length - n;
        r->aa = 0;
    }
    if (add(r, AUTHORITY, cut, cut, n, node, T_NS, ttl, 1) < 0)
        return DECLINE;
    return add_targets(r, zone, node, T_NS, 1);
}

/* Restart with a CNAME's target (resolver._chase), unless it loops or runs too long. */
static int chase(render_t *r, const unsigned char *rdata, size_t rdlength)
{
    size_t n = name_length(rdata, rdlength);
    if (n == 0 || n != rdlength)
        return DECLINE;
    const unsigned char *wire, *lower;
    if (store_name(r, rdata, n, &wire, &lower) < 0)
        return DECLINE;
    for (size_t i = 0; i < r->seen_count; i++)
        if (r->seen_length[i] == n && memcmp(r->seen[i], lower, n) == 0)
            return 0;
    if (r->seen_count > MAX_CHAIN)
        return 0;
    r->seen[r->seen_count] = lower;
    r->seen_length[r->seen_count++] = n;
    int zone = zone_holding(r->t, lower, n);
    if (zone < 0)
        return 0;  /* outside our authority: the resolver goes on from here */
    return lookup(r, zone, wire, lower, n);
}

static int answer_node(render_t *r, int zone, const unsigned char *wire, const unsigned char *lower,
                       size_t n, blob_t node, int wild)
{
    const query_t *q = r->q;
    if (steer_covers(&r->t->steering, lower, n))
        return DECLINE;  /* steering decides this node's RRsets: Python's */
    uint16_t type = 0;
    uint32_t ttl = 0;
    int has = 0;
    if (q->qtype == T_ANY) {  /* RFC 8482: one RRset, the CNAME or the lowest type */
        size_t offset = 0, rdlength;
        uint16_t rtype, lowest = 0;
        uint32_t rttl;
        const unsigned char *rdata;
        int more, sigs = 0, cname = 0;
        while ((more = next_record(node, &offset, &rtype, &rttl, &rdata, &rdlength)) > 0) {
            if (rtype == T_RRSIG)
                sigs = 1;  /* signatures are keyed past every type: lowest only alone */
            else if (lowest == 0 || rtype < lowest)
                lowest = rtype;
            cname |= rtype == T_CNAME;
        }
        if (more < 0 || (lowest == 0 && sigs))
            return DECLINE;
        type = cname ? T_CNAME : lowest;
        if (type && (has = rrset_of(node, type, &ttl)) < 0)
            return DECLINE;
    } else {
        type = q->qtype;
        has = rrset_of(node, type, &ttl);
        if (has == 0) {
            type = T_CNAME;
            has = rrset_of(node, type, &ttl);
        }
        if (has < 0)
            return DECLINE;
    }
    if (!has)
        return negative(r, zone, 0);
    /* a node's RRset is owned by its lowercase key; a wildcard's copy by the name asked */
    if (add(r, ANSWER, wild ? wire : lower, lower, n, node, type, ttl, !wild) < 0)
        return DECLINE;
    if (type == T_CNAME && q->qtype != T_CNAME && q->qtype != T_ANY) {
        size_t offset = 0, rdlength;
        uint32_t rttl;
        const unsigned char *rdata;
        if (next_of_type(node, &offset, T_CNAME, &rttl, &rdata, &rdlength) > 0)
            return chase(r, rdata, rdlength);
        return DECLINE;
    }
    return add_targets(r, zone, node, type, 0);
}

/* Step 3c (resolver._no_such_name): the wildcard at the closest encloser, or NXDOMAIN. */
static int no_such_name(render_t *r, int zone, const unsigned char *wire, const unsigned char *lower,
                        size_t n, size_t encloser)
{
    if (r->counts[ANSWER] == 0)
        r->anchor = r->q->name_length - (n - encloser);
    if (n - encloser + 2 > MAX_NAME)
        return DECLINE;
    unsigned char wildcard[MAX_NAME] = {1, '*'};
    memcpy(wildcard + 2, lower + encloser, n - encloser);
    blob_t node = {NULL, 0};
    int found = owner_blob(r, zone, wildcard, n - encloser + 2, &node);
    if (found < 0)
        return DECLINE;
    if (node.length == 0)
        return negative(r, zone, 1);
    return answer_node(r, zone, wire, lower, n, node, 1);
}

/* One pass of step 3 in `zone` (resolver._lookup) for a lowercase name. */
static int lookup(render_t *r, int zone, const unsigned char *wire, const unsigned char *lower,
                  size_t n)
{
    const zone_t *z = &r->t->zones[zone];
    if (z->records == NULL || (r->q->edns && r->q->do_bit && z->signed_zone))
        return DECLINE;
    size_t offsets[128], count = 0, apex = n - z->length;
    for (size_t i = 0; i < apex; i += lower[i] + 1u)
        offsets[count++] = i;
    if (apex && names_flags(r->t, (size_t)zone, z->origin, z->length) & NAME_DNAME)
        return DECLINE;  /* a DNAME renames the name: Python's */
    size_t previous = apex;
    for (size_t index = count; index-- > 0;) {
        size_t at = offsets[index];
        unsigned flags = names_flags(r->t, (size_t)zone, lower + at, n - at);
        blob_t cut;
        if (flags & NAME_CUT && !(at == 0 && r->q->qtype == T_DS)) {  /* confirm it */
            int is = is_cut(r, zone, lower + at, n - at, &cut);
            if (is < 0)
                return DECLINE;
            if (is)
                return refer(r, zone, lower + at, n - at, cut);
        }
        if (!(flags & NAME_EXISTS))
            break;
        if (at && flags & NAME_DNAME)
            return DECLINE;
        previous = at;
    }
    if (previous) {  /* the closest encloser: confirm what the name set said */
        int there = previous == apex ? 1 : exists(r, zone, lower + previous, n - previous);
        if (there <= 0)
            return DECLINE;
        return no_such_name(r, zone, wire, lower, n, previous);
    }
    blob_t node = {NULL, 0};
    int found = owner_blob(r, zone, lower, n, &node);
    if (found < 0 || (found == 0 && exists(r, zone, lower, n) != 1))
        return DECLINE;
    return answer_node(r, zone, wire, lower, n, node, 0);
}

/* ---- writing (gslb/dns/message.py's MessageWriter) ------------------------------- */

typedef struct {
    unsigned char *out;
    size_t length, room;
    size_t names;
    const unsigned char *keys[MAX_NAMES];
    size_t key_length[MAX_NAMES];
    size_t offsets[MAX_NAMES];
    int failed;
    moves_t *moves;                 /* every compression pointer written (for an entry) */
} writer_t;

static void emit(writer_t *w, const void *bytes, size_t n)
{
    if (w->failed || n > w->room - w->length) {
        w->failed = 1;
        return;
    }
    memcpy(w->out + w->length, bytes, n);
    w->length += n;
}

static void remember(writer_t *w, const unsigned char *lower, size_t n, size_t offset)
{
    if (w->names == MAX_NAMES) {
        w->failed = 1;
        return;
    }
    w->keys[w->names] = lower;
    w->key_length[w->names] = n;
    w->offsets[w->names++] = offset;
}

static long known(const writer_t *w, const unsigned char *lower, size_t n)
{
    for (size_t i = 0; i < w->names; i++)
        if (w->key_length[i] == n && memcmp(w->keys[i], lower, n) == 0)
            return (long)w->offsets[i];
    return -1;
}

/* A name compressed against what is written; its new suffixes noted (`lower` must
 * outlive the writer). */
static void write_name(writer_t *w, const unsigned char *wire, const unsigned char *lower, size_t n)
{
    size_t base = w->length;
    for (size_t at = 0; wire[at]; at += wire[at] + 1u) {
        long target = known(w, lower + at, n - at);
        if (target >= 0) {
            unsigned char pointer[2];
            put16(pointer, 0xC000u | (unsigned)target);
            emit(w, wire, at);
            moves_t *m = w->moves;
            if (m->count < MAX_MOVES) {
                m->position[m->count] = (uint16_t)w->length;
                m->target[m->count] = (uint16_t)target;
            }
            m->count++;
            emit(w, pointer, 2);
            return;
        }
        if (base + at <= 0x3FFF)
            remember(w, lower + at, n - at, base + at);
    }
    emit(w, wire, n);
}

/* A name inside rdata: lowercased into `store` (which outlives the writer) first. */
static size_t write_rdata_name(writer_t *w, const unsigned char *p, size_t room,
                               unsigned char *store)
{
    size_t n = name_length(p, room);
    if (n == 0) {
        w->failed = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        store[i] = lower_ascii(p[i]);
    write_name(w, p, store, n);
    return n;
}

/* Every record of an RRset (message.MessageWriter.add_rrset); how many. */
static size_t write_rrset(writer_t *w, const rrset_t *s, int at_question,
                          unsigned char (*lowered)[MAX_NAME], size_t *lowered_count)
{
    size_t offset = 0, rdlength, written = 0;
    uint16_t type = s->type;
    uint32_t ttl;
    const unsigned char *rdata;
    int more;
    unsigned char fixed[8];
    put16(fixed, type);
    put16(fixed + 2, 1);
    put32(fixed + 4, s->ttl);
    while ((more = next_of_type(s->blob, &offset, type, &ttl, &rdata, &rdlength)) > 0) {
        if (at_question)
            emit(w, "\xc0\x0c", 2);
        else
            write_name(w, s->wire, s->lower, s->length);
        emit(w, fixed, 8);
        size_t length_at = w->length;
        emit(w, "\0\0", 2);
        if (w->failed)
            return 0;
        if (type == T_NS || type == T_CNAME || type == T_PTR || type == T_MX || type == T_SOA) {
            size_t at = 0, names = type == T_SOA ? 2 : 1;
            if (type == T_MX) {
                if (rdlength < 2)
                    w->failed = 1;
                emit(w, rdata, 2);
                at = 2;
            }
            for (size_t k = 0; k < names && !w->failed; k++) {
                if (*lowered_count == MAX_SET) {
                    w->failed = 1;
                    break;
                }
                at += write_rdata_name(w, rdata + at, rdlength - at, lowered[(*lowered_count)++]);
            }
            if (type == T_SOA && !w->failed && rdlength - at != 20)
                w->failed = 1;
            if (w->failed || at > rdlength || (type != T_SOA && at != rdlength))
                return w->failed = 1, 0;
            emit(w, rdata + at, rdlength - at);
        } else {
            emit(w, rdata, rdlength);
        }
        if (w->failed)
            return 0;
        put16(w->out + length_at, (unsigned)(w->length - length_at - 2));
        written++;
    }
    if (more < 0)
        w->failed = 1;
    return written;
}

/* ---- counting: answers built here, per (zone, type, rcode), as the labels count ---- */

typedef struct {
    uint64_t count;
    uint16_t qtype;
    uint8_t rcode;
    uint8_t length;
    unsigned char origin[MAX_NAME];  /* the zone's origin as configured (case kept) */
} render_count_t;

static render_count_t *counts;
static size_t count_used, count_room;
static uint32_t *count_slots;  /* entry index + 1 by hash; 0: empty */
static size_t count_mask;
static hash_key_t count_key;
static int count_keyed;

static uint64_t count_hash(const unsigned char *origin, size_t n, uint16_t qtype, int rcode)
{
    unsigned char key[MAX_NAME + 3];
    memcpy(key, origin, n);
    put16(key + n, qtype);
    key[n + 2] = (unsigned char)rcode;
    return siphash24(&count_key, key, n + 3);
}

static int count_grow(void)
{
    size_t room = count_room ? count_room * 2 : 256;
    render_count_t *grown = PyMem_RawRealloc(counts, room * sizeof(render_count_t));
    if (grown == NULL)
        return -1;
    counts = grown;
    uint32_t *slots = PyMem_RawCalloc(room * 2, sizeof(uint32_t));
    if (slots == NULL)
        return -1;
    PyMem_RawFree(count_slots);
    count_slots = slots;
    count_mask = room * 2 - 1;
    count_room = room;
    for (size_t e = 0; e < count_used; e++) {
        size_t i = count_hash(counts[e].origin, counts[e].length, counts[e].qtype, counts[e].rcode) & count_mask;
        while (count_slots[i])
            i = (i + 1) & count_mask;
        count_slots[i] = (uint32_t)e + 1;
    }
    return 0;
}

/* Count one answer built here (`rcode` | BUILT_HIT when it came from an entry built
 * here before); -1 when it cannot be counted (then Python answers). */
int count_render(const zone_t *z, uint16_t qtype, int rcode)
{
    if (!count_keyed) {
        if (hash_key_init(&count_key) < 0)
            return -1;
        count_keyed = 1;
    }
    if (count_slots != NULL) {
        for (size_t i = count_hash(z->origin_case, z->length, qtype, rcode) & count_mask; count_slots[i];
             i = (i + 1) & count_mask) {
            render_count_t *c = &counts[count_slots[i] - 1];
            if (c->qtype == qtype && c->rcode == rcode && c->length == z->length &&
                memcmp(c->origin, z->origin_case, z->length) == 0) {
                c->count++;
                return 0;
            }
        }
    }
    if (count_used == MAX_COUNTS || (count_used == count_room && count_grow() < 0))
        return -1;
    render_count_t *c = &counts[count_used];
    c->count = 1;
    c->qtype = qtype;
    c->rcode = (uint8_t)rcode;
    c->length = (uint8_t)z->length;
    memcpy(c->origin, z->origin_case, z->length);
    size_t i = count_hash(z->origin_case, z->length, qtype, rcode) & count_mask;
    while (count_slots[i])
        i = (i + 1) & count_mask;
    count_slots[i] = (uint32_t)++count_used;
    return 0;
}

PyObject *render_counts(void)
{
    PyObject *list = PyList_New((Py_ssize_t)count_used);
    for (size_t e = 0; list != NULL && e < count_used; e++) {
        PyObject *item = Py_BuildValue("(y#IIKO)", (const char *)counts[e].origin,
                                       (Py_ssize_t)counts[e].length, (unsigned)counts[e].qtype,
                                       (unsigned)(counts[e].rcode & ~BUILT_HIT),
                                       (unsigned long long)counts[e].count,
                                       counts[e].rcode & BUILT_HIT ? Py_True : Py_False);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)e, item);
    }
    return list;
}

/* ---- the reply -------------------------------------------------------------------- */

static size_t write_reply(render_t *r, const unsigned char *data, size_t limit,
                          unsigned char *out, size_t room, moves_t *moves)
{
    const query_t *q = r->q;
    size_t lowered_count = 0;
    moves->count = 0;
    writer_t w = {.out = out, .room = room < limit ? room : limit, .moves = moves};
    size_t options = (q->ecs_family ? 8u + q->ecs_length : 0u) + (q->cookie ? 4u + COOKIE_REPLY : 0u);
    size_t opt = q->edns ? 11u + options : 0u;
    if (opt > w.room)
        return 0;
    w.room -= opt;  /* the OPT record's space is kept (render.py reserves it first) */
    emit(&w, data, q->question_end);
    for (size_t at = r->anchor; q->name[at]; at += q->name[at] + 1u)
        if (HEADER_SIZE + at <= 0x3FFF)
            remember(&w, q->name + at, q->name_length - at, HEADER_SIZE + at);
    uint16_t section_counts[3] = {0, 0, 0};
    for (int s = ANSWER; s <= ADDITIONAL; s++)
        for (size_t i = 0; i < r->counts[s]; i++) {
            const rrset_t *x = &r->sections[s][i];
            /* answers owned by the question name point at it when the anchor is shorter */
            int at_question = s == ANSWER && r->anchor && x->length == q->name_length &&
                              memcmp(x->lower, q->name, x->length) == 0;
            section_counts[s] += (uint16_t)write_rrset(&w, x, at_question, r->lowered, &lowered_count);
            if (w.failed)
                return 0;
        }
    w.room += opt;
    if (q->edns) {  /* the options in gslb/dns/edns.py's order: COOKIE, then ECS */
        unsigned char record[11 + 4 + COOKIE_REPLY + 8 + MAX_ECS_ADDRESS], *p = record + 11;
        record[0] = 0;
        put16(record + 1, 41);
        put16(record + 3, r->t->max_payload);
        put32(record + 5, q->do_bit ? 0x8000u : 0u);
        put16(record + 9, (unsigned)options);
        if (q->cookie) {
            put16(p, 10);
            put16(p + 2, COOKIE_REPLY);
            memcpy(p + 4, q->cookie_reply, COOKIE_REPLY);
            p += 4 + COOKIE_REPLY;
        }
        if (q->ecs_family) {  /* the client subnet echoed, scope 0: the answer holds for all */
            put16(p, 8);
            put16(p + 2, (unsigned)(4 + q->ecs_length));
            put16(p + 4, (unsigned)q->ecs_family);
            p[6] = (unsigned char)q->ecs_source;
            p[7] = 0;
            memcpy(p + 8, q->ecs_address, q->ecs_length);
        }
        emit(&w, record, 11 + options);
    }
    if (w.failed)
        return 0;
    uint16_t flags = (uint16_t)(QR | (q->flags & RD_CD) | (r->aa ? AA : 0) | r->rcode);
    put16(out + 2, flags);
    put16(out + 4, 1);
    put16(out + 6, section_counts[ANSWER]);
    put16(out + 8, section_counts[AUTHORITY]);
    put16(out + 10, (unsigned)section_counts[ADDITIONAL] + (q->edns ? 1u : 0u));
    return w.length;
}

size_t table_render(Table *t, int zone, const unsigned char *data, const query_t *q,
                    size_t limit, unsigned char *out, size_t room, moves_t *moves)
{
    if ((q->nsid && q->edns && t->nsid_configured) || q->qtype == T_RRSIG)
        return 0;  /* the NSID value and RRSIG questions are Python's */
    /* One render at a time: it runs under the GIL from start to end (nothing it calls
     * can release it: bytes, dict and set lookups), so its scratch (about 50 KB) is
     * allocated once, not per query. */
    static render_t scratch;
    render_t *r = &scratch;
    r->t = t;
    r->q = q;
    r->qwire = data + HEADER_SIZE;
    r->counts[0] = r->counts[1] = r->counts[2] = 0;
    r->rcode = 0;
    r->aa = 1;
    r->anchor = 0;
    r->seen[0] = q->name;
    r->seen_length[0] = q->name_length;
    r->seen_count = 1;
    r->stored_count = 0;
    size_t length = 0;
    if (lookup(r, zone, r->qwire, q->name, q->name_length) == 0) {
        length = write_reply(r, data, limit, out, room, moves);
        moves->anchor = r->anchor;
        if (length && !q->probe && count_render(&t->zones[zone], q->qtype, r->rcode) < 0)
            length = 0;
    }
    return length;
}
