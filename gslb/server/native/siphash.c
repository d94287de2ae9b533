/* SipHash-2-4 (Aumasson and Bernstein): the keyed hash of every table an attacker can
 * steer keys into (the answer table, the zone names, the zone origins). With a key drawn
 * at random per process, which keys collide cannot be predicted from outside, so crafted
 * queries cannot build long probe chains. */
#include "native.h"
#include <string.h>
#include <sys/random.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                     \
    do {                                                             \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);    \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                       \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                       \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);    \
    } while (0)

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));  /* no alignment assumed */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t siphash24(const hash_key_t *key, const unsigned char *data, size_t n)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ key->k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ key->k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ key->k0;
    uint64_t v3 = 0x7465646279746573ULL ^ key->k1;
    const unsigned char *end = data + (n & ~(size_t)7);
    for (; data != end; data += 8) {
        uint64_t m = load_le64(data);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)n << 56;
    switch (n & 7) {
    case 7: last |= (uint64_t)data[6] << 48; /* fall through */
    case 6: last |= (uint64_t)data[5] << 40; /* fall through */
    case 5: last |= (uint64_t)data[4] << 32; /* fall through */
    case 4: last |= (uint64_t)data[3] << 24; /* fall through */
    case 3: last |= (uint64_t)data[2] << 16; /* fall through */
    case 2: last |= (uint64_t)data[1] << 8;  /* fall through */
    case 1: last |= (uint64_t)data[0]; break;
    case 0: break;
    }
    v3 ^= last;
    SIPROUND;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The per-process key: from getrandom() once; a fork shares it, which is harmless (the
 * children are the same server). */
int hash_key_init(hash_key_t *key)
{
    if (getrandom(key, sizeof(*key), 0) != (ssize_t)sizeof(*key))
        return -1;
    return 0;
}

void hash_key_from(hash_key_t *key, const unsigned char bytes[16])
{
    key->k0 = load_le64(bytes);
    key->k1 = load_le64(bytes + 8);
}

/* siphash(key16, data) -> int: SipHash-2-4 under a given key, for the test vectors. */
PyObject *native_siphash(PyObject *module, PyObject *args)
{
    const char *key, *data;
    Py_ssize_t key_length, n;
    if (!PyArg_ParseTuple(args, "y#y#", &key, &key_length, &data, &n))
        return NULL;
    if (key_length != 16) {
        PyErr_SetString(PyExc_ValueError, "the key is 16 bytes");
        return NULL;
    }
    hash_key_t k = {load_le64((const unsigned char *)key),
                    load_le64((const unsigned char *)key + 8)};
    return PyLong_FromUnsignedLongLong(siphash24(&k, (const unsigned char *)data, (size_t)n));
}
