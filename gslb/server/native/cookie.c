/* DNS cookies (RFC 7873) with RFC 9018's server cookie, as gslb/dns/cookies.py makes
 * and checks them, byte for byte: version 1, reserved 0, a 32-bit timestamp, and
 * SipHash-2-4 under the fleet's secret of client cookie | version | reserved |
 * timestamp | client address, written little-endian as the reference does.
 *
 * The secrets are the process's (set_cookies, from gslb/server/fastpath.py; the first
 * signs, all verify), swapped under native_mutex, which every reader holds. A query whose
 * server cookie does not verify is still answered, with a fresh cookie: this server
 * does not require cookies. Only `cookie_valid` tells the two apart (rate limiting). */
#include "native.h"
#include <string.h>
#include <time.h>

#define MAX_SECRETS 8
#define SECRET_SIZE 16
#define MAX_AGE 3600       /* RFC 9018 4.3: an older server cookie is not valid */
#define MAX_AHEAD 300      /* nor one more than five minutes ahead */
#define REISSUE_AGE 1800   /* a valid one older than this is replaced */

static hash_key_t secrets[MAX_SECRETS];
static size_t secret_count;
static uint32_t fixed_now;  /* tests: the clock stands still here; 0: the real clock */

static inline uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (unsigned char)v;
}


/* set_cookies(secrets, now=0): the 16-byte secrets, first signing; `now` fixes the
 * clock (tests), 0 follows the real one. An empty list turns cookies off. */
PyObject *set_cookies(PyObject *module, PyObject *args)
{
    PyObject *list;
    unsigned long now = 0;
    if (!PyArg_ParseTuple(args, "O|k", &list, &now))
        return NULL;
    PyObject *fast = PySequence_Fast(list, "secrets must be a sequence");
    if (fast == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(fast);
    hash_key_t keys[MAX_SECRETS];
    if (count > MAX_SECRETS || now > 0xFFFFFFFFUL) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "at most 8 secrets, a 32-bit time");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != SECRET_SIZE) {
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "a cookie secret is 16 bytes");
            return NULL;
        }
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(item);
        keys[i].k0 = le64(b);
        keys[i].k1 = le64(b + 8);
    }
    Py_DECREF(fast);
    lock_gil(&native_mutex);
    memcpy(secrets, keys, sizeof(keys[0]) * (size_t)count);
    secret_count = (size_t)count;
    fixed_now = (uint32_t)now;
    pthread_mutex_unlock(&native_mutex);
    Py_RETURN_NONE;
}

/* The hash of client cookie | the server cookie's first 8 bytes | address. */
static uint64_t cookie_hash(const hash_key_t *key, const unsigned char *client,
                            const unsigned char *head, const peer_t *peer)
{
    unsigned char message[8 + 8 + 16];
    size_t address = peer->family == 4 ? 4 : peer->family == 6 ? 16 : 0;
    memcpy(message, client, 8);
    memcpy(message + 8, head, 8);
    memcpy(message + 16, peer->address, address);
    return siphash24(key, message, 16 + address);
}

/* Seconds since the timestamp (serial number arithmetic: negative when ahead). */
static int32_t age_of(const unsigned char *server, uint32_t now)
{
    return (int32_t)(now - get32(server + 4));
}

/* The secret that made this server cookie, -1 when none did or it is stale. */
static int verify(const unsigned char *client, const unsigned char *server, size_t length,
                  const peer_t *peer, uint32_t now)
{
    if (length != 16 || server[0] != 1)
        return -1;
    int32_t age = age_of(server, now);
    if (age > MAX_AGE || age < -MAX_AHEAD)
        return -1;
    uint64_t sent = le64(server + 8);
    for (size_t i = 0; i < secret_count; i++)
        if (cookie_hash(&secrets[i], client, server, peer) == sent)
            return (int)i;
    return -1;
}

void cookie_check(const Table *t, query_t *q, const peer_t *peer)
{
    if (!q->cookie_length || !t->cookies || !secret_count)
        return;
    uint32_t now = fixed_now ? fixed_now : (uint32_t)time(NULL);
    const unsigned char *client = q->cookie_sent, *server = client + 8;
    size_t server_length = q->cookie_length - 8;
    int signer = verify(client, server, server_length, peer, now);
    q->cookie = 1;
    q->cookie_valid = signer >= 0;
    memcpy(q->cookie_reply, client, 8);
    if (signer == 0 && !server[1] && !server[2] && !server[3] && age_of(server, now) <= REISSUE_AGE) {
        memcpy(q->cookie_reply + 8, server, 16);  /* ours, current secret, fresh: echoed */
        return;
    }
    unsigned char *fresh = q->cookie_reply + 8;
    fresh[0] = 1;
    fresh[1] = fresh[2] = fresh[3] = 0;
    fresh[4] = (unsigned char)(now >> 24);
    fresh[5] = (unsigned char)(now >> 16);
    fresh[6] = (unsigned char)(now >> 8);
    fresh[7] = (unsigned char)now;
    put_le64(fresh + 8, cookie_hash(&secrets[0], client, fresh, peer));
}
