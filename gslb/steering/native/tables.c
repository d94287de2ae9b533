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
    if (!memo->slots)
        return 0;
    for (size_t i = slot_of(key, memo->mask);; i = (i + 1) & memo->mask) {
        if (memo->slots[i].key == key) {
            *value = memo->slots[i].value;
            return 1;
        }
        if (memo->slots[i].key == EMPTY_KEY)
            return 0;
    }
}

static int memo_grow(memo_t *memo) {
    size_t capacity = memo->slots ? (memo->mask + 1) * 2 : 1024;
    memo_slot_t *slots = malloc(capacity * sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < capacity; i++)
        slots[i].key = EMPTY_KEY;
    size_t mask = capacity - 1;
    if (memo->slots) {
        for (size_t j = 0; j <= memo->mask; j++) {
            if (memo->slots[j].key == EMPTY_KEY)
                continue;
            size_t i = slot_of(memo->slots[j].key, mask);
            while (slots[i].key != EMPTY_KEY)
                i = (i + 1) & mask;
            slots[i] = memo->slots[j];
        }
    }
    free(memo->slots);
    memo->slots = slots;
    memo->mask = mask;
    return 0;
}

int memo_put(memo_t *memo, uint64_t key, int32_t value) {
    if (!memo->slots || (memo->count + 1) * 2 > memo->mask + 1) {
        if (memo_grow(memo) < 0)
            return -1;
    }
    size_t i = slot_of(key, memo->mask);
    while (memo->slots[i].key != EMPTY_KEY && memo->slots[i].key != key)
        i = (i + 1) & memo->mask;
    if (memo->slots[i].key == EMPTY_KEY)
        memo->count++;
    memo->slots[i].key = key;
    memo->slots[i].value = value;
    return 0;
}

void memo_free(memo_t *memo) {
    free(memo->slots);
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
