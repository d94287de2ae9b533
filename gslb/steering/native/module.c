/* gslb.steering._geomap: the Python face of mmdb.c and blocks.c.
 *
 * walk(databases) -> (v4 starts, v4 ids, v6 starts, v6 ids, keys)
 *     databases: (buffer, node_count, record_size, ip_version, data_end) per file, the
 *     first one's fields winning; the buffer is the whole file (an mmap). Starts are
 *     big-endian (4 or 16 bytes each), ids native int32 (-1: no database has a record);
 *     keys: (places, place, asn, mask): the distinct (continent, country, subdivision)
 *     and, per id as native arrays, its place (int32), ASN (int64, INT64_MIN: none) and
 *     the databases that had a record (uint32 bit mask). A file that does not hold
 *     together raises ValueError((index of the database or -1, message)).
 * blocks(width, geo_starts, geo_ids, rule_of, unknown, subnet_starts, subnet_rules)
 *     -> (starts, prefixes, results): see rule_blocks in geomap.h.
 * key_rules(place, asn, place_rules, asns, asn_rules) -> int32 bytes: see geomap.h.
 * walk(databases, True, cap4, cap6) -> (v4 starts, v4 ids, v4 prefixes, v6 ..., entries):
 *     the location walk (walk_t.locations in geomap.h): entries are (places, place,
 *     latitude, longitude, coordinate bits), see entries_tuple.
 * find(starts, width, address) -> index of the block holding the address.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "geomap.h"
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static PyObject *raise_walk(walk_t *w) {
    if (w->no_memory)
        return PyErr_NoMemory();
    PyObject *args = Py_BuildValue("(is)", w->failed, w->error);
    if (args) {
        PyErr_SetObject(PyExc_ValueError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *string_or_none(walk_t *w, int32_t id, PyObject **strings) {
    if (id < 0)
        Py_RETURN_NONE;
    if (!strings[id]) {
        const string_ref_t *s = (const string_ref_t *)w->strings.bytes + id;
        strings[id] = PyUnicode_DecodeUTF8((const char *)s->bytes, s->length, "strict");
        if (!strings[id]) {
            PyErr_Clear();
            w->failed = s->database;
            snprintf(w->error, sizeof(w->error), "a string in the data section is not UTF-8");
            return raise_walk(w);
        }
    }
    Py_INCREF(strings[id]);
    return strings[id];
}

/* The places as (continent, country, subdivision) tuples of str or None. */
static PyObject *places_list(walk_t *w, const vec_t *places) {
    PyObject **strings = PyMem_Calloc(w->strings.count + 1, sizeof(PyObject *));
    PyObject *list = PyList_New((Py_ssize_t)places->count);
    if (!strings || !list)
        goto fail;
    for (size_t i = 0; i < places->count; i++) {
        const place_t *p = (const place_t *)places->bytes + i;
        PyObject *continent = string_or_none(w, p->continent, strings);
        PyObject *country = continent ? string_or_none(w, p->country, strings) : NULL;
        PyObject *subdivision = country ? string_or_none(w, p->subdivision, strings) : NULL;
        if (!subdivision) {
            Py_XDECREF(continent);
            Py_XDECREF(country);
            goto fail;
        }
        PyObject *place = Py_BuildValue("(NNN)", continent, country, subdivision);
        if (!place)
            goto fail;
        PyList_SET_ITEM(list, (Py_ssize_t)i, place);
    }
    for (size_t i = 0; i < w->strings.count; i++)
        Py_XDECREF(strings[i]);
    PyMem_Free(strings);
    return list;
fail:
    if (strings) {
        for (size_t i = 0; i < w->strings.count; i++)
            Py_XDECREF(strings[i]);
        PyMem_Free(strings);
    }
    Py_XDECREF(list);
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;
}

/* The keys: (places, each key's place (int32), ASN (int64, GEO_ASN_NONE: none) and
 * database mask (uint32), as bytes). */
static PyObject *keys_tuple(walk_t *w) {
    size_t count = w->entries.count;
    vec_t places = {0};
    PyObject *key_place = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * count));
    PyObject *key_asn = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * count));
    PyObject *key_mask = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * count));
    PyObject *list = NULL;
    if (!key_place || !key_asn || !key_mask)
        goto fail;
    if (walk_places(w, &places, (int32_t *)(void *)PyBytes_AS_STRING(key_place)) < 0) {
        raise_walk(w);
        goto fail;
    }
    for (size_t e = 0; e < count; e++) {
        const fields_t *f = (const fields_t *)w->entries.bytes + e;
        memcpy(PyBytes_AS_STRING(key_asn) + 8 * e, &f->asn, 8);
        memcpy(PyBytes_AS_STRING(key_mask) + 4 * e, &f->mask, 4);
    }
    list = places_list(w, &places);
    vec_free(&places);
    if (!list)
        goto fail;
    return Py_BuildValue("(NNNN)", list, key_place, key_asn, key_mask);
fail:
    vec_free(&places);
    Py_XDECREF(key_place);
    Py_XDECREF(key_asn);
    Py_XDECREF(key_mask);
    return NULL;
}

/* The location walk's entries: (places, each entry's place (int32), latitude and
 * longitude (native doubles) and GEO_HAS_* / GEO_ODD_* bits (uint32), as bytes). */
static PyObject *entries_tuple(walk_t *w) {
    size_t count = w->entries.count;
    vec_t places = {0};
    PyObject *place = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * count));
    PyObject *latitude = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * count));
    PyObject *longitude = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * count));
    PyObject *bits = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * count));
    PyObject *list = NULL;
    if (!place || !latitude || !longitude || !bits)
        goto fail;
    /* Plain C over the walk's entries and bytes objects nothing else holds yet: without
     * the GIL, as the walk itself (a City database has over a hundred thousand entries). */
    char *to_place = PyBytes_AS_STRING(place), *to_latitude = PyBytes_AS_STRING(latitude);
    char *to_longitude = PyBytes_AS_STRING(longitude), *to_bits = PyBytes_AS_STRING(bits);
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = walk_places(w, &places, (int32_t *)(void *)to_place);
    for (size_t e = 0; status >= 0 && e < count; e++) {
        const fields_t *f = (const fields_t *)w->entries.bytes + e;
        memcpy(to_latitude + 8 * e, &f->latitude, 8);
        memcpy(to_longitude + 8 * e, &f->longitude, 8);
        memcpy(to_bits + 4 * e, &f->coordinates, 4);
    }
    Py_END_ALLOW_THREADS
    if (status < 0) {
        raise_walk(w);
        goto fail;
    }
    list = places_list(w, &places);
    vec_free(&places);
    if (!list)
        goto fail;
    return Py_BuildValue("(NNNNN)", list, place, latitude, longitude, bits);
fail:
    vec_free(&places);
    Py_XDECREF(place);
    Py_XDECREF(latitude);
    Py_XDECREF(longitude);
    Py_XDECREF(bits);
    return NULL;
}

/* A walk, a rule map's blocks, and the copies and frees of their large buffers run in a
 * thread of its own at the lowest CPU priority (Linux's SCHED_IDLE for that thread alone,
 * else nice 19), the caller waiting for it without the GIL: a serving process rebuilds
 * its steering for a replaced database while its UDP loop answers, and on a busy machine
 * the loop must get the CPU first. Under SCHED_IDLE a waking UDP loop preempts the work
 * at once; the caller's own thread (nice 10) is left to finish its time slice first, and
 * page faults and munmap of tens of megabytes there held a UDP loop or dnsperf for
 * 2-4 ms (perf sched). The thread holds no Python state, so its priority never holds up
 * the GIL; when no thread can be made, the caller does the work. */
#define LOW_PRIORITY_RUNS 65536  /* a rule map over fewer runs is built in the caller */
#define LOW_PRIORITY_BYTES (1 << 18)  /* a smaller copy is made in the caller */

typedef struct {
    void (*work)(void *);
    void *arg;
} low_job_t;

static void *run_job(void *arg) {
    low_job_t *job = arg;
#ifdef SCHED_IDLE
    struct sched_param idle = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &idle) != 0)
#endif
#ifdef SYS_gettid
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);  /* best effort */
#else
        ;
#endif
    job->work(job->arg);
    return NULL;
}

static void at_low_priority(void (*work)(void *), void *arg) {
    low_job_t job = {work, arg};
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_job, &job) != 0)
        work(arg);
    else
        pthread_join(thread, NULL);
}

typedef struct {
    vec_t *vec;
    char *to;
} copy_job_t;

static void copy_work(void *arg) {
    copy_job_t *job = arg;
    if (job->to && job->vec->count)
        memcpy(job->to, job->vec->bytes, job->vec->count * job->vec->width);
    vec_free(job->vec);
}

/* The vector as bytes, its memory freed at once: the runs of a City database are tens of
 * megabytes, and copying them all before freeing any would double the peak. The copy
 * and the free run without the GIL (the new bytes object is not shared yet, the vector
 * is plain malloc memory), at low priority from LOW_PRIORITY_BYTES on: tens of megabytes
 * take milliseconds, which a serving process's UDP loop would otherwise wait for. */
static PyObject *vec_bytes(vec_t *vec) {
    size_t size = vec->count * vec->width;
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    copy_job_t job = {vec, bytes ? PyBytes_AS_STRING(bytes) : NULL};
    Py_BEGIN_ALLOW_THREADS
    if (size >= LOW_PRIORITY_BYTES)
        at_low_priority(copy_work, &job);
    else
        copy_work(&job);
    Py_END_ALLOW_THREADS
    return bytes;
}

typedef struct {
    walk_t *w;
    int status;
} walk_job_t;

static void walk_work(void *arg) {
    walk_job_t *job = arg;
    job->status = walk_run(job->w);
}

static void free_memos_work(void *w) {
    walk_free_memos(w);
}

static void free_walk_work(void *w) {
    walk_free(w);
}

static PyObject *geo_walk(PyObject *self, PyObject *args) {
    PyObject *sequence;
    int locations = 0, cap4 = 32, cap6 = 128;
    if (!PyArg_ParseTuple(args, "O|pii", &sequence, &locations, &cap4, &cap6))
        return NULL;
    if (cap4 < 0 || cap4 > 32 || cap6 < 0 || cap6 > 128)
        return PyErr_Format(PyExc_ValueError, "caps are prefix lengths");
    PyObject *items = PySequence_Fast(sequence, "databases must be a sequence");
    if (!items)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(items);
    if (count > GEO_MAX_DATABASES) {
        Py_DECREF(items);
        return PyErr_Format(PyExc_ValueError, "at most %d databases", GEO_MAX_DATABASES);
    }
    Py_buffer buffers[GEO_MAX_DATABASES];
    Py_ssize_t held = 0;
    PyObject *result = NULL;
    walk_t *w = PyMem_Malloc(sizeof(*w));
    if (!w) {
        Py_DECREF(items);
        return PyErr_NoMemory();
    }
    walk_init(w);
    w->locations = locations;
    w->cap[0] = cap4;
    w->cap[1] = cap6;
    for (; held < count; held++) {
        unsigned long node_count;
        int record_size, ip_version;
        Py_ssize_t data_end;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, held), "y*kiin", &buffers[held],
                              &node_count, &record_size, &ip_version, &data_end))
            goto done;
        if (node_count > UINT32_MAX || data_end < 0) {
            held++;
            PyErr_SetString(PyExc_ValueError, "node count or data end out of range");
            goto done;
        }
        if (walk_add(w, buffers[held].buf, (size_t)buffers[held].len, (uint32_t)node_count,
                     record_size, ip_version, (size_t)data_end) < 0) {
            held++;
            raise_walk(w);
            goto done;
        }
    }
    int status;
    walk_job_t job = {w, -1};
    Py_BEGIN_ALLOW_THREADS
    at_low_priority(walk_work, &job);
    Py_END_ALLOW_THREADS
    status = job.status;
    if (status < 0) {
        raise_walk(w);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    at_low_priority(free_memos_work, w);  /* large hash tables: free() gives their pages back */
    Py_END_ALLOW_THREADS
    if (locations) {
        PyObject *entries = entries_tuple(w);
        PyObject *parts[6] = {NULL};
        vec_t *vecs[6] = {&w->runs[0].starts, &w->runs[0].ids, &w->runs[0].prefixes,
                          &w->runs[1].starts, &w->runs[1].ids, &w->runs[1].prefixes};
        int ok = entries != NULL;
        for (int i = 0; i < 6; i++)
            ok = (parts[i] = vec_bytes(vecs[i])) != NULL && ok;
        if (ok)
            result = Py_BuildValue("(NNNNNNN)", parts[0], parts[1], parts[2], parts[3], parts[4],
                                   parts[5], entries);
        else {
            for (int i = 0; i < 6; i++)
                Py_XDECREF(parts[i]);
            Py_XDECREF(entries);
        }
        goto done;
    }
    PyObject *entries = keys_tuple(w);
    if (entries) {
        PyObject *v4 = vec_bytes(&w->runs[0].starts);
        PyObject *v4_ids = vec_bytes(&w->runs[0].ids);
        PyObject *v6 = vec_bytes(&w->runs[1].starts);
        PyObject *v6_ids = vec_bytes(&w->runs[1].ids);
        if (v4 && v4_ids && v6 && v6_ids)
            result = Py_BuildValue("(NNNNN)", v4, v4_ids, v6, v6_ids, entries);
        else {
            Py_XDECREF(v4);
            Py_XDECREF(v4_ids);
            Py_XDECREF(v6);
            Py_XDECREF(v6_ids);
            Py_DECREF(entries);
        }
    }
done:
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&buffers[i]);
    Py_BEGIN_ALLOW_THREADS
    at_low_priority(free_walk_work, w);  /* plain malloc memory, nothing of Python's */
    Py_END_ALLOW_THREADS
    PyMem_Free(w);
    Py_DECREF(items);
    return result;
}

typedef struct {
    int width, unknown, status;
    const Py_buffer *geo_starts, *geo_ids, *rule_of, *subnet_starts, *subnet_rules;
    blocks_t *out;
    char *error;
} blocks_job_t;

static void blocks_work(void *arg) {
    blocks_job_t *j = arg;
    j->status = rule_blocks(j->width, j->geo_starts->buf, j->geo_ids->buf,
                            (size_t)j->geo_ids->len / 4, j->rule_of->buf, (size_t)j->rule_of->len / 4,
                            j->unknown, j->subnet_starts->buf, j->subnet_rules->buf,
                            (size_t)j->subnet_rules->len / 4, j->out, j->error);
}

static PyObject *geo_blocks(PyObject *self, PyObject *args) {
    int width, unknown;
    Py_buffer geo_starts, geo_ids, rule_of, subnet_starts, subnet_rules;
    if (!PyArg_ParseTuple(args, "iy*y*y*iy*y*", &width, &geo_starts, &geo_ids, &rule_of, &unknown,
                          &subnet_starts, &subnet_rules))
        return NULL;
    PyObject *result = NULL;
    blocks_t out;
    memset(&out, 0, sizeof(out));
    char error[GEO_ERROR_SIZE];
    if (width != 4 && width != 16)
        PyErr_SetString(PyExc_ValueError, "width must be 4 or 16");
    else if (geo_starts.len != geo_ids.len / 4 * width || geo_ids.len % 4
             || subnet_starts.len != subnet_rules.len / 4 * width || subnet_rules.len % 4
             || rule_of.len % 4)
        PyErr_SetString(PyExc_ValueError, "runs and their values differ in length");
    else {
        blocks_job_t job = {width, unknown, -1, &geo_starts, &geo_ids, &rule_of, &subnet_starts,
                            &subnet_rules, &out, error};
        Py_BEGIN_ALLOW_THREADS
        if (geo_ids.len / 4 >= LOW_PRIORITY_RUNS)
            at_low_priority(blocks_work, &job);
        else  /* a small map: quicker than a thread */
            blocks_work(&job);
        Py_END_ALLOW_THREADS
        int status = job.status;
        if (status == -2)
            PyErr_NoMemory();
        else if (status < 0)
            PyErr_SetString(PyExc_ValueError, error);
        else
            result = Py_BuildValue("(NNN)", vec_bytes(&out.starts), vec_bytes(&out.prefixes),
                                   vec_bytes(&out.results));
    }
    blocks_free(&out);
    PyBuffer_Release(&geo_starts);
    PyBuffer_Release(&geo_ids);
    PyBuffer_Release(&rule_of);
    PyBuffer_Release(&subnet_starts);
    PyBuffer_Release(&subnet_rules);
    return result;
}

static PyObject *geo_key_rules(PyObject *self, PyObject *args) {
    Py_buffer key_place, key_asn, place_rules, asns, asn_rules;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &key_place, &key_asn, &place_rules, &asns, &asn_rules))
        return NULL;
    PyObject *result = NULL;
    size_t keys = (size_t)key_place.len / 4;
    if (key_place.len % 4 || key_asn.len != key_place.len * 2 || place_rules.len % 4
        || asns.len % 8 || asn_rules.len * 2 != asns.len) {
        PyErr_SetString(PyExc_ValueError, "keys, places or ASNs differ in length");
    } else if ((result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(4 * keys)))) {
        char error[GEO_ERROR_SIZE];
        if (key_rules(key_place.buf, key_asn.buf, keys, place_rules.buf, (size_t)place_rules.len / 4,
                      asns.buf, asn_rules.buf, (size_t)asns.len / 8,
                      (int32_t *)(void *)PyBytes_AS_STRING(result), error) < 0) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_ValueError, error);
        }
    }
    PyBuffer_Release(&key_place);
    PyBuffer_Release(&key_asn);
    PyBuffer_Release(&place_rules);
    PyBuffer_Release(&asns);
    PyBuffer_Release(&asn_rules);
    return result;
}

static PyObject *geo_find(PyObject *self, PyObject *args) {
    Py_buffer starts, address;
    int width;
    if (!PyArg_ParseTuple(args, "y*iy*", &starts, &width, &address))
        return NULL;
    PyObject *result = NULL;
    if ((width != 4 && width != 16) || address.len != width || starts.len % width)
        PyErr_SetString(PyExc_ValueError, "bad width, address or starts");
    else
        result = PyLong_FromLong(find_start(starts.buf, (size_t)(starts.len / width), width,
                                            address.buf));
    PyBuffer_Release(&starts);
    PyBuffer_Release(&address);
    return result;
}

/* release_memory() -> bool: hand the heap's free pages back to the system (glibc's
 * malloc_trim). glibc keeps freed heap memory for the process: a zone load frees the
 * file's text and its scratch objects in the middle of the heap, a walk frees tens of
 * megabytes of memos in the thread that ran it, and without this a process that loaded
 * or rebuilt its steering stays that much larger. Without the GIL: trimming a large
 * heap takes milliseconds, which a serving process's UDP loop would wait for. False:
 * nothing released (or another C library, which has no such call). */
#ifdef __GLIBC__
static void trim_work(void *released) {
    *(int *)released = malloc_trim(0);
}
#endif

static PyObject *geo_release_memory(PyObject *self, PyObject *unused) {
    int released = 0;
#ifdef __GLIBC__
    Py_BEGIN_ALLOW_THREADS
    at_low_priority(trim_work, &released);
    Py_END_ALLOW_THREADS
#endif
    return PyBool_FromLong(released);
}

static PyMethodDef methods[] = {
    {"release_memory", geo_release_memory, METH_NOARGS,
     "release_memory() -> bool: the heap's free pages back to the system (glibc)."},
    {"walk", geo_walk, METH_VARARGS, "Walk MaxMind databases into runs of geo fields."},
    {"blocks", geo_blocks, METH_VARARGS, "Rule blocks from a geo partition and subnet runs."},
    {"key_rules", geo_key_rules, METH_VARARGS, "The first rule of each key of a geo table."},
    {"find", geo_find, METH_VARARGS, "Index of the last start <= address."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_geomap",
    "MaxMind DB walk and rule blocks for geo steering (gslb/steering/native).", -1, methods,
};

PyMODINIT_FUNC PyInit__geomap(void) {
    return PyModule_Create(&module);
}
