/* Rule blocks from partitions: what RuleMap.build computes per steered record, linear in
 * the runs of the geo table (millions for a City database) and the output blocks. */
#include <stdio.h>
#include <string.h>

#include "geomap.h"

static int32_t load_i32(const uint8_t *p) {
    int32_t value;
    memcpy(&value, p, sizeof(value));
    return value;
}

static int push_block(blocks_t *out, int width, u128 start, int prefix, int32_t rule) {
    uint8_t *at = vec_push(&out->starts);
    uint8_t *length = vec_push(&out->prefixes);
    uint8_t *result = vec_push(&out->results);
    if (!at || !length || !result)
        return -1;
    store_be(at, width, start);
    *length = (uint8_t)prefix;
    memcpy(result, &rule, sizeof(rule));
    return 0;
}

static int trailing_zeros(u128 value) {
    uint64_t low = (uint64_t)value;
    return low ? __builtin_ctzll(low) : 64 + __builtin_ctzll((uint64_t)(value >> 64));
}

static int bit_length(u128 value) {
    uint64_t high = (uint64_t)(value >> 64);
    if (high)
        return 128 - __builtin_clzll(high);
    uint64_t low = (uint64_t)value;
    return low ? 64 - __builtin_clzll(low) : 0;
}

/* [start, last] as the fewest aligned blocks: each the widest aligned block inside the
 * range that holds its addresses. */
static int emit_range(blocks_t *out, int width, u128 start, u128 last, int32_t rule) {
    int bits = width * 8;
    for (;;) {
        u128 span = last - start;  /* addresses - 1: 2**128 addresses do not fit */
        int size = span == ~(u128)0 ? 128 : bit_length(span + 1) - 1;  /* log2 of a block */
        if (start != 0 && trailing_zeros(start) < size)
            size = trailing_zeros(start);
        if (size > bits)
            size = bits;
        if (push_block(out, width, start, bits - size, rule) < 0)
            return -1;
        if (size == 128)
            return 0;
        u128 block_last = start + (((u128)1 << size) - 1);
        if (block_last == last)
            return 0;
        start = block_last + 1;
    }
}

static int32_t combine(int32_t by_location, int32_t by_subnet) {
    if (by_subnet < 0)
        return by_location;
    if (by_location < 0)
        return by_subnet;
    return by_location < by_subnet ? by_location : by_subnet;
}

static int check_runs(int width, const uint8_t *starts, size_t count, const char *what,
                      char *error) {
    if (count == 0 || load_be(starts, width) != 0) {
        snprintf(error, GEO_ERROR_SIZE, "%s: the first run must start at 0", what);
        return -1;
    }
    for (size_t i = 1; i < count; i++) {
        if (load_be(starts + width * i, width) <= load_be(starts + width * (i - 1), width)) {
            snprintf(error, GEO_ERROR_SIZE, "%s: run %zu does not start after the one before", what, i);
            return -1;
        }
    }
    return 0;
}

int rule_blocks(int width, const uint8_t *geo_starts, const uint8_t *geo_ids, size_t geo_count,
                const uint8_t *rule_of, size_t keys, int32_t unknown,
                const uint8_t *subnet_starts, const uint8_t *subnet_rules, size_t subnet_count,
                blocks_t *out, char *error) {
    out->starts.width = (size_t)width;
    out->prefixes.width = 1;
    out->results.width = 4;
    if (check_runs(width, geo_starts, geo_count, "geo runs", error) < 0
        || check_runs(width, subnet_starts, subnet_count, "subnet runs", error) < 0)
        return -1;
    for (size_t i = 0; i < geo_count; i++) {
        int32_t id = load_i32(geo_ids + 4 * i);
        if (id < -1 || (id >= 0 && (size_t)id >= keys)) {
            snprintf(error, GEO_ERROR_SIZE, "geo run %zu has key %d of %zu", i, id, keys);
            return -1;
        }
    }
    size_t g = 0, s = 0;
    u128 at = 0, run_start = 0;
    int32_t run_rule = 0;
    int started = 0;
    for (;;) {
        int32_t id = load_i32(geo_ids + 4 * g);
        int32_t rule = combine(id < 0 ? unknown : load_i32(rule_of + 4 * (size_t)id),
                               load_i32(subnet_rules + 4 * s));
        if (!started || rule != run_rule) {
            if (started && emit_range(out, width, run_start, at - 1, run_rule) < 0)
                goto no_memory;
            run_start = at;
            run_rule = rule;
            started = 1;
        }
        int more_geo = g + 1 < geo_count, more_subnet = s + 1 < subnet_count;
        if (!more_geo && !more_subnet)
            break;
        u128 next_geo = more_geo ? load_be(geo_starts + width * (g + 1), width) : 0;
        u128 next_subnet = more_subnet ? load_be(subnet_starts + width * (s + 1), width) : 0;
        if (more_geo && (!more_subnet || next_geo <= next_subnet)) {
            at = next_geo;
            g++;
            if (more_subnet && next_subnet == at)
                s++;
        } else {
            at = next_subnet;
            s++;
        }
    }
    u128 top = width == 16 ? ~(u128)0 : (((u128)1 << (8 * width)) - 1);
    if (emit_range(out, width, run_start, top, run_rule) < 0)
        goto no_memory;
    return 0;
no_memory:
    snprintf(error, GEO_ERROR_SIZE, "out of memory");
    return -2;
}

static int64_t load_i64(const uint8_t *p) {
    int64_t value;
    memcpy(&value, p, sizeof(value));
    return value;
}

int key_rules(const uint8_t *key_place, const uint8_t *key_asn, size_t keys,
              const uint8_t *place_rules, size_t places, const uint8_t *asns,
              const uint8_t *asn_rules, size_t asn_count, int32_t *out, char *error) {
    for (size_t k = 0; k < keys; k++) {
        int32_t place = load_i32(key_place + 4 * k);
        if (place < 0 || (size_t)place >= places) {
            snprintf(error, GEO_ERROR_SIZE, "key %zu has place %d of %zu", k, place, places);
            return -1;
        }
        int32_t rule = load_i32(place_rules + 4 * (size_t)place);
        int64_t asn = load_i64(key_asn + 8 * k);
        if (asn != GEO_ASN_NONE && asn_count > 0) {
            size_t low = 0, high = asn_count;
            while (low < high) {
                size_t mid = low + (high - low) / 2;
                if (load_i64(asns + 8 * mid) < asn)
                    low = mid + 1;
                else
                    high = mid;
            }
            if (low < asn_count && load_i64(asns + 8 * low) == asn)
                rule = combine(rule, load_i32(asn_rules + 4 * low));
        }
        out[k] = rule;
    }
    return 0;
}

void blocks_free(blocks_t *blocks) {
    vec_free(&blocks->starts);
    vec_free(&blocks->prefixes);
    vec_free(&blocks->results);
}

long find_start(const uint8_t *starts, size_t count, int width, const uint8_t *address) {
    size_t low = 0, high = count;  /* the answer is below `high` */
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (memcmp(starts + (size_t)width * mid, address, (size_t)width) <= 0)
            low = mid + 1;
        else
            high = mid;
    }
    return (long)low - 1;
}
