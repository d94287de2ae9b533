/* Where a missing name falls in a signed zone's NSEC or NSEC3 chain, in C.
 *
 * With DO, the answer for a name a signed zone lacks depends on its anchor (closest
 * encloser) and on the chain record that covers it: gslb/dns/denial.py's `Denial.gap`
 * (the NSEC covering the name, or the NSEC3 covering the hash of its next closer name).
 * The answer cache keys such answers by that gap, so one entry serves every missing
 * name in it. This file computes the same gap (SHA-1 and all) so that the table serves
 * a DO random-subdomain flood without entering Python. The chain itself is handed over
 * by fastpath.py (`Table.denial`) from the zone's `Denial` index. */
#include "native.h"
#include <string.h>

#define MAX_ITERATIONS 500  /* NSEC3 iterations C computes; more (RFC 9276: 0) is Python's */

/* ---- SHA-1 (FIPS 180-4), for NSEC3 hashes (RFC 5155 section 5) ------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t length;
    unsigned char block[64];
    size_t used;
} sha1_t;

static inline uint32_t rol(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1_block(sha1_t *s, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1_t *s)
{
    static const uint32_t start[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, start, sizeof(start));
    s->length = 0;
    s->used = 0;
}

static void sha1_update(sha1_t *s, const unsigned char *p, size_t n)
{
    s->length += n;
    while (n) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == 64) {
            sha1_block(s, s->block);
            s->used = 0;
        }
    }
}

static void sha1_final(sha1_t *s, unsigned char out[20])
{
    uint64_t bits = s->length * 8;
    unsigned char pad = 0x80, zero = 0, size[8];
    sha1_update(s, &pad, 1);
    while (s->used != 56)
        sha1_update(s, &zero, 1);
    for (int i = 0; i < 8; i++)
        size[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(s, size, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

/* RFC 5155 section 5: H(name | salt), then H(digest | salt) `iterations` more times. */
static void nsec3_hash(const unsigned char *name, size_t n, const denial_t *d, unsigned char out[20])
{
    sha1_t s;
    sha1_init(&s);
    sha1_update(&s, name, n);
    sha1_update(&s, d->salt, d->salt_length);
    sha1_final(&s, out);
    for (unsigned i = 0; i < d->iterations; i++) {
        sha1_init(&s);
        sha1_update(&s, out, 20);
        sha1_update(&s, d->salt, d->salt_length);
        sha1_final(&s, out);
    }
}

/* nsec3_hash(name, salt, iterations) -> the digest (for tests against hashlib). */
PyObject *native_nsec3_hash(PyObject *module, PyObject *args)
{
    const char *name, *salt;
    Py_ssize_t n, salt_length;
    unsigned int iterations;
    if (!PyArg_ParseTuple(args, "y#y#I", &name, &n, &salt, &salt_length, &iterations))
        return NULL;
    if (salt_length > 255 || iterations > MAX_ITERATIONS) {
        PyErr_SetString(PyExc_ValueError, "salt of at most 255 bytes, at most 500 iterations");
        return NULL;
    }
    denial_t d = {.salt_length = (size_t)salt_length, .iterations = iterations};
    memcpy(d.salt, salt, (size_t)salt_length);
    unsigned char out[20];
    nsec3_hash((const unsigned char *)name, (size_t)n, &d, out);
    return PyBytes_FromStringAndSize((const char *)out, 20);
}

/* ---- canonical order (RFC 4034 section 6.1) -------------------------------------- */

/* Labels compared from the root down as octets (the names are lowercase), a label that
 * is a prefix of the other first, then the name with fewer labels. */
static int canonical_compare(const unsigned char *a, const unsigned char *b)
{
    size_t at[128], bt[128], an = 0, bn = 0;
    for (size_t i = 0; a[i] && an < 128; i += a[i] + 1u)
        at[an++] = i;
    for (size_t i = 0; b[i] && bn < 128; i += b[i] + 1u)
        bt[bn++] = i;
    while (an && bn) {
        const unsigned char *x = a + at[--an], *y = b + bt[--bn];
        size_t common = x[0] < y[0] ? x[0] : y[0];
        int c = memcmp(x + 1, y + 1, common);
        if (c)
            return c;
        if (x[0] != y[0])
            return x[0] < y[0] ? -1 : 1;
    }
    return an ? 1 : bn ? -1 : 0;
}

/* ---- the gap ----------------------------------------------------------------------- */

static const unsigned char *owner_at(const denial_t *d, size_t i)
{
    return d->names + d->offsets[i];
}

/* The owner of the chain record covering `name` (Denial._nsec_cover and _cover3). */
static const unsigned char *cover(const denial_t *d, const unsigned char *name, size_t n)
{
    size_t low = 0, high = d->count;
    if (d->nsec3) {  /* the last hash before the name's (bisect_left - 1, wrapping) */
        unsigned char digest[20];
        nsec3_hash(name, n, d, digest);
        while (low < high) {
            size_t middle = (low + high) / 2;
            if (memcmp(d->hashes + 20 * middle, digest, 20) < 0)
                low = middle + 1;
            else
                high = middle;
        }
    } else {  /* the last owner at or before the name (bisect_right - 1, wrapping) */
        while (low < high) {
            size_t middle = (low + high) / 2;
            if (canonical_compare(owner_at(d, middle), name) <= 0)
                low = middle + 1;
            else
                high = middle;
        }
    }
    return owner_at(d, low ? low - 1 : d->count - 1);
}

int denial_gap(const Table *t, const unsigned char *name, size_t n, size_t anchor,
               const unsigned char **gap, size_t *gap_length)
{
    const unsigned char *encloser = name + anchor;
    size_t encloser_length = n - anchor;
    int zone = -1;
    for (size_t i = 0; encloser[i] && zone < 0; i += encloser[i] + 1u)
        zone = zone_of(t, encloser + i, encloser_length - i);
    if (zone < 0)
        zone = t->root_zone;
    if (zone < 0)
        return 0;
    const zone_t *z = &t->zones[zone];
    if (!z->signed_zone)
        return 0;
    const denial_t *d = z->denial;
    if (d == NULL)
        return -1;  /* a chain C was not given: Python's */
    if (d->count == 0 || names_flags(t, (size_t)zone, encloser, encloser_length) & NAME_CUT)
        return 0;  /* no chain, or a referral (its proof is the cut's own) */
    if (d->nsec3) {  /* the next closer name: one label longer than the encloser */
        size_t at = 0;
        if (anchor == 0)
            return -1;
        while (at + name[at] + 1u < anchor)
            at += name[at] + 1u;
        name += at;
        n -= at;
    }
    const unsigned char *owner = cover(d, name, n);
    size_t length = 0;
    while (owner[length])
        length += owner[length] + 1u;
    *gap = owner;
    *gap_length = length + 1;
    return 1;
}

/* denial(zone, nsec3, owners, hashes, salt, iterations): a signed zone's chain, from its
 * `Denial`: the NSEC owners in canonical order, or the NSEC3 owners in hash order with
 * their 20-byte hashes back to back. */
PyObject *Table_denial(Table *self, PyObject *args)
{
    Py_ssize_t zone, hashes_length, salt_length;
    int nsec3;
    PyObject *owners;
    const char *hashes, *salt;
    unsigned int iterations;
    if (!table_ready(self) || !PyArg_ParseTuple(args, "npO!y#y#I", &zone, &nsec3, &PyList_Type, &owners, &hashes,
                          &hashes_length, &salt, &salt_length, &iterations))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(owners);
    if (zone < 0 || (size_t)zone >= self->zone_count || salt_length > 255 ||
        iterations > MAX_ITERATIONS || (nsec3 && hashes_length != 20 * count)) {
        PyErr_SetString(PyExc_ValueError, "denial: unknown zone, or a chain C does not take");
        return NULL;
    }
    size_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *owner = PyList_GET_ITEM(owners, i);
        if (!PyBytes_Check(owner) || check_name(PyBytes_AS_STRING(owner), PyBytes_GET_SIZE(owner)) < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "denial: owners must be wire names");
            return NULL;
        }
        total += (size_t)PyBytes_GET_SIZE(owner);
    }
    denial_t *d = PyMem_Calloc(1, sizeof(denial_t));
    if (d == NULL)
        return PyErr_NoMemory();
    d->names = PyMem_Malloc(total ? total : 1);
    d->offsets = PyMem_Malloc(((size_t)count + 1) * sizeof(size_t));
    d->hashes = PyMem_Malloc(nsec3 && count ? (size_t)hashes_length : 1);
    if (d->names == NULL || d->offsets == NULL || d->hashes == NULL) {
        denial_free(d);
        return PyErr_NoMemory();
    }
    size_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *owner = PyList_GET_ITEM(owners, i);
        d->offsets[i] = at;
        memcpy(d->names + at, PyBytes_AS_STRING(owner), (size_t)PyBytes_GET_SIZE(owner));
        at += (size_t)PyBytes_GET_SIZE(owner);
    }
    if (nsec3)
        memcpy(d->hashes, hashes, (size_t)hashes_length);
    d->count = (size_t)count;
    d->nsec3 = nsec3;
    memcpy(d->salt, salt, (size_t)salt_length);
    d->salt_length = (size_t)salt_length;
    d->iterations = iterations;
    denial_free(self->zones[zone].denial);
    self->zones[zone].denial = d;
    Py_RETURN_NONE;
}

void denial_free(denial_t *d)
{
    if (d == NULL)
        return;
    PyMem_Free(d->names);
    PyMem_Free(d->offsets);
    PyMem_Free(d->hashes);
    PyMem_Free(d);
}
