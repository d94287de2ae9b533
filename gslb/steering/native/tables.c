/* The small containers of the geo walk: growable arrays, and hash tables (exact uint64
 * keys, or ids interned by content). */
#include <stdlib.h>
#include <string.h>

#include "geomap.h"

#define EMPTY_KEY UINT64_MAX

static size_t slot_of(uint64_t hash, size_t mask) {
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return (size_t)hash & mask;
}

int memo_get(const memo_t *memo, uint64_t key, int32_t *value) {
    if (!memo->keys)
        return 0;
    for (size_t i = slot_of(key, memo->mask);; i = (i + 1) & memo->mask) {
        if (memo->keys[i] == key) {
            *value = memo->values[i];
            return 1;
        }
        if (memo->keys[i] == EMPTY_KEY)
            return 0;
    }
}

static int memo_grow(memo_t *memo) {
    size_t capacity = memo->keys ? (memo->mask + 1) * 2 : 1024;
    uint64_t *keys = malloc(capacity * sizeof(*keys));
    int32_t *values = malloc(capacity * sizeof(*values));
    if (!keys || !values) {
        free(keys);
        free(values);
        return -1;
    }
    memset(keys, 0xff, capacity * sizeof(*keys));
    size_t mask = capacity - 1;
    if (memo->keys) {
        for (size_t j = 0; j <= memo->mask; j++) {
            if (memo->keys[j] == EMPTY_KEY)
                continue;
            size_t i = slot_of(memo->keys[j], mask);
            while (keys[i] != EMPTY_KEY)
                i = (i + 1) & mask;
            keys[i] = memo->keys[j];
            values[i] = memo->values[j];
        }
    }
    free(memo->keys);
    free(memo->values);
    memo->keys = keys;
    memo->values = values;
    memo->mask = mask;
    return 0;
}

int memo_put(memo_t *memo, uint64_t key, int32_t value) {
    if (!memo->keys || (memo->count + 1) * 2 > memo->mask + 1) {
        if (memo_grow(memo) < 0)
            return -1;
    }
    size_t i = slot_of(key, memo->mask);
    while (memo->keys[i] != EMPTY_KEY && memo->keys[i] != key)
        i = (i + 1) & memo->mask;
    if (memo->keys[i] == EMPTY_KEY)
        memo->count++;
    memo->keys[i] = key;
    memo->values[i] = value;
    return 0;
}

void memo_free(memo_t *memo) {
    free(memo->keys);
    free(memo->values);
    memset(memo, 0, sizeof(*memo));
}

void *vec_push(vec_t *vec) {
    if (vec->count == vec->capacity) {
        size_t capacity = vec->capacity ? vec->capacity * 2 : 256;
        uint8_t *bytes = realloc(vec->bytes, capacity * vec->width);
        if (!bytes)
            return NULL;
        vec->bytes = bytes;
        vec->capacity = capacity;
    }
    return vec->bytes + vec->width * vec->count++;
}

void vec_free(vec_t *vec) {
    free(vec->bytes);
    vec->bytes = NULL;
    vec->count = vec->capacity = 0;
}
