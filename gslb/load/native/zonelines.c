/* gslb.load._zonelines: the zone parser's fast path (gslb/load/zoneparse.py), its loop in C.
 *
 * A million-record zone is almost all `label [ttl] [IN] A|AAAA address` lines, and a
 * folder of small zones mostly their SOA, NS and A lines; in Python each costs a call, a
 * split and dict work, and an SOA dnspython's tokenizer. `scan` takes lines from an
 * iterator of str and stores each qualifying one in a ZoneBuilder exactly as the general
 * path would, until a line does not qualify: that line is returned for the general path.
 * A and AAAA lines qualify exactly as `_fast_lines` takes them (with `@` as owner too);
 * single-line NS, CNAME, PTR, MX and SOA records whose names are plain (letters, digits,
 * `-`, `_`, `*`, dots, or `@`) and whose numbers are plain decimals qualify as well. SOA,
 * NS and CNAME records are stored too, and handed to `note` (a loader validates them).
 * tests/unit/load/test_zonelines.py compares zone files read with and without it.
 * Nothing is allocated per line beyond the records stored (and the line the iterator made). */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <string.h>

#define MAX_TOKENS 11         /* label, ttl, IN, SOA and its seven fields */
#define ADDRESS_TOKENS 5      /* label, ttl, IN, A|AAAA, address */
#define MAX_LABEL 63
#define MAX_NAME 255
#define MAX_RDATA (2 * MAX_NAME + 20) /* an SOA: two names, five 32-bit numbers */
#define ADDRESS_TEXT 64       /* inet_pton accepts no text this long (45 at most) */
#define RECORD_HEADER 8       /* type, ttl, rdlength: struct "!HIH" */
#define LINES_PER_SWITCH 8192 /* lines between GIL releases, a few ms: others may run */

typedef struct {
    const char *text;
    Py_ssize_t length;
} token_t;

/* What str.split() splits an ASCII line on. */
static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static int is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '*';
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* The tokens as str.split() makes them; returns MAX_TOKENS + 1 when there are more. */
static int split(const char *text, Py_ssize_t length, token_t *tokens)
{
    int count = 0;
    Py_ssize_t at = 0;
    while (count <= MAX_TOKENS) {
        while (at < length && is_space((unsigned char)text[at]))
            at++;
        if (at == length)
            break;
        Py_ssize_t start = at;
        while (at < length && !is_space((unsigned char)text[at]))
            at++;
        if (count < MAX_TOKENS)
            tokens[count] = (token_t){text + start, at - start};
        count++;
    }
    return count;
}

static int equals(token_t token, const char *word)
{
    size_t length = strlen(word);
    return (size_t)token.length == length && memcmp(token.text, word, length) == 0;
}

/* The record types the scanner reads, and their numbers. */
enum { KIND_A, KIND_AAAA, KIND_NS, KIND_CNAME, KIND_PTR, KIND_MX, KIND_SOA, KINDS };
static const char *const kind_names[KINDS] = {"A", "AAAA", "NS", "CNAME", "PTR", "MX", "SOA"};
static const int kind_types[KINDS] = {1, 28, 2, 5, 12, 15, 6};
/* What `note` is told of: the types zonefile.py's `_Index` notes. */
static const int kind_noted[KINDS] = {0, 0, 1, 1, 0, 0, 1};

static int kind_of(token_t token)
{
    for (int kind = 0; kind < KINDS; kind++)
        if (equals(token, kind_names[kind]))
            return kind;
    return -1;
}

/* A number as `_number` and dnspython's get_uint32 read it: ASCII digits, at most `limit`. */
static int read_number(token_t token, uint32_t limit, uint32_t *number)
{
    if (token.length < 1)
        return 0;
    uint64_t value = 0;
    for (Py_ssize_t i = 0; i < token.length; i++) {
        if (token.text[i] < '0' || token.text[i] > '9')
            return 0;
        value = value * 10 + (uint64_t)(token.text[i] - '0');
        if (value > limit)
            return 0;
    }
    *number = (uint32_t)value;
    return 1;
}

/* A TTL as `_fast_lines` reads it: 1 to 9 ASCII digits. */
static int read_ttl(token_t token, uint32_t *ttl)
{
    return token.length < 10 && read_number(token, UINT32_MAX, ttl);
}

static void put_u32(unsigned char *at, uint32_t value)
{
    at[0] = (unsigned char)(value >> 24);
    at[1] = (unsigned char)(value >> 16);
    at[2] = (unsigned char)(value >> 8);
    at[3] = (unsigned char)value;
}

/* The run's inputs, what it wrote to the builder so far, and what it last set. */
typedef struct {
    PyObject *records, *first_lines, *builder, *note;
    PyObject *typed_sets[KINDS];  /* builder.typed[type] for the types the builder indexes */
    const unsigned char *base;
    Py_ssize_t base_length;
    int has_default_ttl;
    uint32_t default_ttl;
    unsigned int *lines;  /* first lines of new owners, not yet in first_lines */
    Py_ssize_t line_count, line_capacity;
    long long added;  /* not yet added to builder.count */
    char owner[MAX_LABEL];
    Py_ssize_t owner_length;  /* -1: the owner was `@`, the origin */
    int has_owner, has_ttl;
    uint32_t last_ttl;
} run_t;

static int note_first_line(run_t *run, unsigned long long line_no)
{
    if (line_no > UINT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "line number does not fit an array('I')");
        return -1;
    }
    if (run->line_count == run->line_capacity) {
        Py_ssize_t capacity = run->line_capacity ? run->line_capacity * 2 : 4096;
        unsigned int *grown = PyMem_Realloc(run->lines, (size_t)capacity * sizeof *grown);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        run->lines = grown;
        run->line_capacity = capacity;
    }
    run->lines[run->line_count++] = (unsigned int)line_no;
    return 0;
}

/* `blob` with the record appended, unless it holds one of the same type and rdata: then
 * the lower TTL stays (zone.py `_merge`). Returns the new blob, `blob` itself (new
 * reference) when unchanged, NULL on error; *appended says whether it grew. */
static PyObject *merge(PyObject *blob, const unsigned char *record, Py_ssize_t record_length,
                       int *appended)
{
    const unsigned char *data = record + RECORD_HEADER;
    Py_ssize_t data_length = record_length - RECORD_HEADER;
    const unsigned char *held = (const unsigned char *)PyBytes_AS_STRING(blob);
    Py_ssize_t end = PyBytes_GET_SIZE(blob);
    *appended = 0;
    if (memmem(held, (size_t)end, data, (size_t)data_length) != NULL) {
        for (Py_ssize_t offset = 0; offset < end;) {
            if (end - offset < RECORD_HEADER) {
                PyErr_SetString(PyExc_ValueError, "malformed record blob");
                return NULL;
            }
            Py_ssize_t length = held[offset + 6] << 8 | held[offset + 7];
            Py_ssize_t stop = offset + RECORD_HEADER + length;
            if (stop <= end && memcmp(held + offset, record, 2) == 0 && length == data_length &&
                memcmp(held + offset + RECORD_HEADER, data, (size_t)data_length) == 0) {
                uint32_t old_ttl = (uint32_t)held[offset + 2] << 24 | held[offset + 3] << 16 |
                                   held[offset + 4] << 8 | held[offset + 5];
                uint32_t new_ttl = (uint32_t)record[2] << 24 | record[3] << 16 |
                                   record[4] << 8 | record[5];
                if (new_ttl >= old_ttl) {
                    Py_INCREF(blob);
                    return blob;
                }
                PyObject *lowered = PyBytes_FromStringAndSize((const char *)held, end);
                if (lowered != NULL)
                    memcpy(PyBytes_AS_STRING(lowered) + offset + 2, record + 2, 4);
                return lowered;
            }
            offset = stop;
        }
    }
    PyObject *grown = PyBytes_FromStringAndSize(NULL, end + record_length);
    if (grown == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(grown), held, (size_t)end);
    memcpy(PyBytes_AS_STRING(grown) + end, record, (size_t)record_length);
    *appended = 1;
    return grown;
}

/* The owner wire as written: `@` is the origin, a plain label is one under it (the
 * general path's `_owner`). Returns its length, 0 when the token is neither. */
static Py_ssize_t read_owner(const run_t *run, token_t token, unsigned char *wire)
{
    if (equals(token, "@")) {
        if (run->base_length > MAX_NAME)
            return 0;
        memcpy(wire, run->base, (size_t)run->base_length);
        return run->base_length;
    }
    if (token.length == 0 || token.length > MAX_LABEL || 1 + token.length + run->base_length > MAX_NAME)
        return 0;
    for (Py_ssize_t i = 0; i < token.length; i++)
        if (!is_label_char((unsigned char)token.text[i]))
            return 0;
    wire[0] = (unsigned char)token.length;
    memcpy(wire + 1, token.text, (size_t)token.length);
    memcpy(wire + 1 + token.length, run->base, (size_t)run->base_length);
    return 1 + token.length + run->base_length;
}

/* A name in rdata as the general path's `_name_wire` and dnspython read a plain one: `@`,
 * or labels of letters, digits, `-`, `_`, `*`, absolute with a final dot, else under
 * the origin; case as written. Returns its wire length, 0 for anything else (an empty
 * or over-long label, a name over 255 octets, any other character). */
static Py_ssize_t read_name(const run_t *run, token_t token, unsigned char *wire)
{
    if (equals(token, "@"))
        return read_owner(run, token, wire);
    Py_ssize_t end = token.length, length = 0, start = 0;
    int absolute = end > 0 && token.text[end - 1] == '.';
    if (absolute)
        end--;
    else if (end == 0)
        return 0;
    for (Py_ssize_t at = 0; end > 0 && at <= end; at++) {
        if (at < end && token.text[at] != '.') {
            if (!is_label_char((unsigned char)token.text[at]))
                return 0;
            continue;
        }
        Py_ssize_t label = at - start;
        if (label == 0 || label > MAX_LABEL || length + 1 + label > MAX_NAME)
            return 0;
        wire[length] = (unsigned char)label;
        memcpy(wire + length + 1, token.text + start, (size_t)label);
        length += 1 + label;
        start = at + 1;
    }
    Py_ssize_t tail = absolute ? 1 : run->base_length;
    if (length + tail > MAX_NAME)
        return 0;
    if (absolute)
        wire[length] = 0;
    else
        memcpy(wire + length, run->base, (size_t)run->base_length);
    return length + tail;
}

/* ZoneBuilder.add(owner, rdtype, ttl, rdata, line) for the owner `wire`, as written. */
static int add(run_t *run, const unsigned char *wire, Py_ssize_t wire_length, int kind,
               uint32_t ttl, const unsigned char *rdata, Py_ssize_t rdata_length,
               unsigned long long line_no)
{
    PyObject *key = PyBytes_FromStringAndSize(NULL, wire_length);
    if (key == NULL)
        return -1;
    unsigned char *lowered = (unsigned char *)PyBytes_AS_STRING(key);
    for (Py_ssize_t i = 0; i < wire_length; i++)
        lowered[i] = lower(wire[i]);  /* length octets are below 64: never letters */

    unsigned char record[RECORD_HEADER + MAX_RDATA];
    int rdtype = kind_types[kind];
    Py_ssize_t record_length = RECORD_HEADER + rdata_length;
    record[0] = (unsigned char)(rdtype >> 8);
    record[1] = (unsigned char)rdtype;
    put_u32(record + 2, ttl);
    record[6] = (unsigned char)(rdata_length >> 8);
    record[7] = (unsigned char)rdata_length;
    memcpy(record + RECORD_HEADER, rdata, (size_t)rdata_length);

    int result = -1;
    /* One probe of the dict for a new owner (the common case): stored as it is found
     * missing. An owner seen before gets its blob back, and the new record merged in. */
    PyObject *value = PyBytes_FromStringAndSize((const char *)record, record_length);
    if (value == NULL)
        goto done;
    PyObject *blob = PyDict_SetDefault(run->records, key, value);  /* borrowed */
    int fresh = blob == value;
    Py_XINCREF(blob);  /* the set's add below may run Python code */
    Py_DECREF(value);
    if (blob == NULL)
        goto done;
    PyObject *typed = run->typed_sets[kind];
    if (typed != NULL) {
        PyObject *added = PyObject_CallMethod(typed, "add", "O", key);
        if (added == NULL)
            goto release;
        Py_DECREF(added);
    }
    if (fresh) {
        if (note_first_line(run, line_no) < 0)
            goto release;
        run->added++;
        result = 0;
        goto release;
    }
    if (!PyBytes_Check(blob)) {
        PyErr_SetString(PyExc_TypeError, "a record blob is not bytes");
        goto release;
    }
    int appended;
    PyObject *merged = merge(blob, record, record_length, &appended);
    if (merged == NULL)
        goto release;
    result = merged == blob ? 0 : PyDict_SetItem(run->records, key, merged);
    Py_DECREF(merged);
    run->added += appended;
release:
    Py_XDECREF(blob);
done:
    Py_DECREF(key);
    return result;
}

/* Stored as `add` stores it, then note(owner, rdtype, rdata, line): the owner as written.
 * The builder is done with before the note: a note that raises leaves it whole. */
static int add_noted(run_t *run, const unsigned char *wire, Py_ssize_t wire_length, int kind,
                     uint32_t ttl, const unsigned char *rdata, Py_ssize_t rdata_length,
                     unsigned long long line_no)
{
    if (add(run, wire, wire_length, kind, ttl, rdata, rdata_length, line_no) < 0)
        return -1;
    PyObject *done = PyObject_CallFunction(run->note, "y#iy#K", (const char *)wire, wire_length,
                                           kind_types[kind], (const char *)rdata, rdata_length,
                                           line_no);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

static void remember_owner(run_t *run, token_t owner)
{
    if (equals(owner, "@")) {
        run->owner_length = -1;
    } else {
        memcpy(run->owner, owner.text, (size_t)owner.length);
        run->owner_length = owner.length;
    }
    run->has_owner = 1;
}

/* `label|@ [ttl] [IN] A|AAAA address`, read as `_fast_lines` reads it: a TTL it states is
 * kept even when the line then goes on to the general path. */
static int take_address(run_t *run, const char *text, const token_t *tokens, int count,
                        int kind, unsigned long long line_no)
{
    token_t owner = tokens[0], address = tokens[count - 1];
    const token_t *ttl_text = NULL;
    if (count == 4) {
        if (!equals(tokens[1], "IN"))
            ttl_text = &tokens[1];
    } else if (count == 5) {
        if (equals(tokens[2], "IN"))
            ttl_text = &tokens[1];
        else if (equals(tokens[1], "IN"))
            ttl_text = &tokens[2];
        else
            owner.length = 0;
    }
    uint32_t ttl = run->default_ttl;
    if (ttl_text == NULL) {
        if (!run->has_default_ttl)
            return 0;
    } else {
        if (!read_ttl(*ttl_text, &ttl))
            return 0;
        run->last_ttl = ttl;  /* kept even when the line goes on to the general path */
        run->has_ttl = 1;
    }
    unsigned char wire[MAX_NAME];
    Py_ssize_t wire_length = text[0] == ' ' || text[0] == '\t' ? 0 : read_owner(run, owner, wire);
    if (wire_length == 0)
        return 0;
    char address_text[ADDRESS_TEXT];
    unsigned char rdata[16];
    if (address.length >= ADDRESS_TEXT || memchr(address.text, '\0', (size_t)address.length))
        return 0;
    memcpy(address_text, address.text, (size_t)address.length);
    address_text[address.length] = '\0';
    if (inet_pton(kind == KIND_A ? AF_INET : AF_INET6, address_text, rdata) != 1)
        return 0;
    if (add(run, wire, wire_length, kind, ttl, rdata, kind == KIND_A ? 4 : 16, line_no) < 0)
        return -1;
    remember_owner(run, owner);
    return 1;
}

/* `label|@ [ttl] [IN] NS|CNAME|PTR name`, `... MX preference name` and `... SOA mname
 * rname serial refresh retry expire minimum`, stored as the general path's `_record`
 * stores them. An SOA qualifies only under a `$TTL`: without one it sets the default
 * TTL (`state.default_from_soa`), which the general path does. */
static int take_named(run_t *run, const char *text, const token_t *tokens, int count,
                      unsigned long long line_no)
{
    int at = 1, stated = 0;
    uint32_t ttl = run->default_ttl, number;
    if (equals(tokens[at], "IN")) {
        at++;
        stated = read_ttl(tokens[at], &ttl);
        at += stated;
    } else if (read_ttl(tokens[at], &ttl)) {
        stated = 1;
        at++;
        at += equals(tokens[at], "IN");
    }
    if ((!stated && !run->has_default_ttl) || at >= count)
        return 0;
    int kind = kind_of(tokens[at]);
    const token_t *fields = tokens + at + 1;
    int field_count = count - at - 1;
    unsigned char rdata[MAX_RDATA];
    Py_ssize_t rdata_length = 0;
    switch (kind) {
    case KIND_NS:
    case KIND_CNAME:
    case KIND_PTR:
        if (field_count == 1)
            rdata_length = read_name(run, fields[0], rdata);
        break;
    case KIND_MX:
        if (field_count != 2 || !read_number(fields[0], 0xFFFF, &number))
            return 0;
        rdata[0] = (unsigned char)(number >> 8);
        rdata[1] = (unsigned char)number;
        rdata_length = read_name(run, fields[1], rdata + 2);
        rdata_length += rdata_length ? 2 : 0;
        break;
    case KIND_SOA: {
        if (field_count != 7 || !run->has_default_ttl)
            return 0;
        Py_ssize_t mname = read_name(run, fields[0], rdata);
        Py_ssize_t rname = mname ? read_name(run, fields[1], rdata + mname) : 0;
        if (rname == 0)
            return 0;
        rdata_length = mname + rname;
        for (int i = 2; i < 7; i++) {
            if (!read_number(fields[i], 0xFFFFFFFF, &number))
                return 0;
            put_u32(rdata + rdata_length, number);
            rdata_length += 4;
        }
        break;
    }
    default:
        return 0;
    }
    unsigned char wire[MAX_NAME];
    Py_ssize_t wire_length = 0;
    if (rdata_length > 0 && text[0] != ' ' && text[0] != '\t')
        wire_length = read_owner(run, tokens[0], wire);
    if (wire_length == 0)
        return 0;
    int stored = kind_noted[kind]
                     ? add_noted(run, wire, wire_length, kind, ttl, rdata, rdata_length,
                                 line_no)
                     : add(run, wire, wire_length, kind, ttl, rdata, rdata_length, line_no);
    if (stored < 0)
        return -1;
    remember_owner(run, tokens[0]);
    if (stated) {
        run->last_ttl = ttl;
        run->has_ttl = 1;
    }
    return 1;
}

/* Whether the line qualifies; when it does, its record is stored (-1: an error). */
static int take(run_t *run, PyObject *line, unsigned long long line_no)
{
    if (!PyUnicode_Check(line)) {
        PyErr_SetString(PyExc_TypeError, "lines must be str");
        return -1;
    }
    if (run->base == NULL || !PyUnicode_IS_ASCII(line))
        return 0;
    const char *text = (const char *)PyUnicode_DATA(line);
    Py_ssize_t length = PyUnicode_GET_LENGTH(line);
    token_t tokens[MAX_TOKENS];
    int count = split(text, length, tokens);
    if (count < 3 || count > MAX_TOKENS)
        return 0;
    if (count <= ADDRESS_TOKENS) {
        token_t type = tokens[count - 2];
        int kind = equals(type, "A") ? KIND_A : equals(type, "AAAA") ? KIND_AAAA : -1;
        if (kind >= 0)
            return take_address(run, text, tokens, count, kind, line_no);
    }
    return take_named(run, text, tokens, count, line_no);
}

/* Hand builder.first_lines and builder.count what the run added. */
static int flush(run_t *run)
{
    if (run->line_count > 0) {
        PyObject *view = PyMemoryView_FromMemory(
            (char *)run->lines, run->line_count * (Py_ssize_t)sizeof *run->lines, PyBUF_READ);
        if (view == NULL)
            return -1;
        PyObject *done = PyObject_CallMethod(run->first_lines, "frombytes", "O", view);
        Py_DECREF(view);
        if (done == NULL)
            return -1;
        Py_DECREF(done);
        run->line_count = 0;
    }
    if (run->added > 0) {
        PyObject *count = PyObject_GetAttrString(run->builder, "count");
        if (count == NULL)
            return -1;
        PyObject *added = PyLong_FromLongLong(run->added);
        PyObject *total = added != NULL ? PyNumber_Add(count, added) : NULL;
        Py_DECREF(count);
        Py_XDECREF(added);
        if (total == NULL)
            return -1;
        int stored = PyObject_SetAttrString(run->builder, "count", total);
        Py_DECREF(total);
        if (stored < 0)
            return -1;
        run->added = 0;
    }
    return 0;
}

static int prepare(run_t *run, PyObject *base, PyObject *default_ttl, PyObject *builder,
                   PyObject *note)
{
    if (!PyCallable_Check(note)) {
        PyErr_SetString(PyExc_TypeError, "note must be callable");
        return -1;
    }
    run->note = note;
    run->builder = builder;
    run->records = PyObject_GetAttrString(builder, "records");
    run->first_lines = PyObject_GetAttrString(builder, "first_lines");
    PyObject *typed = PyObject_GetAttrString(builder, "typed");
    if (run->records == NULL || run->first_lines == NULL || typed == NULL)
        goto fail;
    if (!PyDict_Check(run->records) || !PyDict_Check(typed)) {
        PyErr_SetString(PyExc_TypeError, "builder.records and builder.typed must be dicts");
        goto fail;
    }
    for (int i = 0; i < KINDS; i++) {
        PyObject *number = PyLong_FromLong(kind_types[i]);
        if (number == NULL)
            goto fail;
        run->typed_sets[i] = PyDict_GetItemWithError(typed, number);
        Py_DECREF(number);
        if (run->typed_sets[i] == NULL && PyErr_Occurred())
            goto fail;
        Py_XINCREF(run->typed_sets[i]);
    }
    Py_CLEAR(typed);
    if (base != Py_None) {
        if (!PyBytes_Check(base)) {
            PyErr_SetString(PyExc_TypeError, "base must be bytes or None");
            goto fail;
        }
        run->base = (const unsigned char *)PyBytes_AS_STRING(base);
        run->base_length = PyBytes_GET_SIZE(base);
    }
    if (default_ttl != Py_None) {
        unsigned long value = PyLong_AsUnsignedLong(default_ttl);
        if (PyErr_Occurred())
            goto fail;
        if (value > 0xFFFFFFFFUL) {
            PyErr_SetString(PyExc_OverflowError, "default TTL above 2**32 - 1");
            goto fail;
        }
        run->default_ttl = (uint32_t)value;
        run->has_default_ttl = 1;
    }
    return 0;
fail:
    Py_XDECREF(typed);
    return -1;
}

static void release(run_t *run)
{
    Py_XDECREF(run->records);
    Py_XDECREF(run->first_lines);
    for (int i = 0; i < KINDS; i++)
        Py_XDECREF(run->typed_sets[i]);
    PyMem_Free(run->lines);
}

PyDoc_STRVAR(scan_doc,
"scan(lines, line_no, base, default_ttl, builder, note)\n"
"    -> (line_no, line, last_owner, last_ttl)\n\n"
"Store the records of the lines taken from the iterator `lines` as the general path of\n"
"zoneparse.py would, until one does not qualify (the head of zonelines.c says which do):\n"
"every record in the ZoneBuilder `builder` as its `add` would, and each SOA, NS and\n"
"CNAME record also to `note(owner, rdtype, rdata, line)`, the owner as written. The owner is always\n"
"a label under the origin, or the origin. `base` is the origin's wire form (None: no line\n"
"qualifies), `default_ttl` the TTL of a line that states none (None: such a line does not\n"
"qualify), `line_no` the number of the line before the first. Returns the number and\n"
"text of the line that did not qualify (None at the end of `lines`), and the last owner\n"
"and the last TTL stated that the lines taken set (None when none did).");

static PyObject *scan(PyObject *module, PyObject *args)
{
    PyObject *lines, *base, *default_ttl, *builder, *note;
    unsigned long long line_no;
    if (!PyArg_ParseTuple(args, "OKOOOO:scan", &lines, &line_no, &base, &default_ttl, &builder,
                          &note))
        return NULL;
    if (!PyIter_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines must be an iterator");
        return NULL;
    }
    run_t run = {0};
    PyObject *line = NULL, *result = NULL;
    if (prepare(&run, base, default_ttl, builder, note) < 0)
        goto done;
    for (;;) {
        line = PyIter_Next(lines);
        if (line == NULL) {
            if (PyErr_Occurred())
                goto done;
            break;
        }
        line_no++;
        int taken = take(&run, line, line_no);
        if (taken < 0)
            goto done;
        if (!taken)
            break;
        Py_CLEAR(line);
        if (line_no % LINES_PER_SWITCH == 0) {
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
            if (PyErr_CheckSignals() < 0)
                goto done;
        }
    }
    if (flush(&run) < 0)
        goto done;
    PyObject *owner = Py_None, *ttl = Py_None;
    if (run.has_owner && run.owner_length < 0) {
        owner = PyBytes_FromStringAndSize((const char *)run.base, run.base_length);
        if (owner == NULL)
            goto done;
    } else if (run.has_owner) {
        owner = PyBytes_FromStringAndSize(NULL, 1 + run.owner_length + run.base_length);
        if (owner == NULL)
            goto done;
        char *wire = PyBytes_AS_STRING(owner);
        wire[0] = (char)run.owner_length;
        memcpy(wire + 1, run.owner, (size_t)run.owner_length);
        memcpy(wire + 1 + run.owner_length, run.base, (size_t)run.base_length);
    } else {
        Py_INCREF(owner);
    }
    if (run.has_ttl) {
        ttl = PyLong_FromUnsignedLong(run.last_ttl);
    } else {
        Py_INCREF(ttl);
    }
    if (ttl != NULL)
        result = Py_BuildValue("KONN", line_no, line != NULL ? line : Py_None, owner, ttl);
    else
        Py_DECREF(owner);
done:
    if (result == NULL) {  /* what was stored is counted, as `add` counts it per record */
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *raised = PyErr_GetRaisedException();
        if (flush(&run) < 0)
            PyErr_Clear();
        PyErr_SetRaisedException(raised);
#else
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        if (flush(&run) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, traceback);
#endif
    }
    Py_XDECREF(line);
    release(&run);
    return result;
}

/* ents(records, apex_length) -> set: the empty non-terminals of a zone whose owners are
 * the keys of `records` (lowercase wire names, all under an apex of apex_length bytes):
 * every name between an owner and the apex that is no owner itself. Zone's own loop
 * (gslb/dns/zone.py) in C: a million owners in milliseconds, not a sixth of a second. */
static PyObject *ents(PyObject *module, PyObject *args)
{
    PyObject *records, *key, *blob;
    Py_ssize_t apex_length, position = 0;
    if (!PyArg_ParseTuple(args, "O!n", &PyDict_Type, &records, &apex_length))
        return NULL;
    PyObject *found = PySet_New(NULL);
    if (found == NULL)
        return NULL;
    while (PyDict_Next(records, &position, &key, &blob)) {
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "owners are wire names (bytes)");
            goto fail;
        }
        const unsigned char *name = (const unsigned char *)PyBytes_AS_STRING(key);
        Py_ssize_t n = PyBytes_GET_SIZE(key);
        /* the common case, a child of the apex, has no name in between */
        Py_ssize_t at = n ? name[0] + 1 : 0;
        while (at < n && n - at > apex_length) {
            PyObject *parent = PyBytes_FromStringAndSize((const char *)name + at, n - at);
            if (parent == NULL)
                goto fail;
            int known = PyDict_Contains(records, parent);
            if (known == 0)
                known = PySet_Contains(found, parent);
            if (known == 0 && PySet_Add(found, parent) < 0)
                known = -1;
            Py_DECREF(parent);
            if (known < 0)
                goto fail;
            if (known)
                break;  /* it and every name above it are known already */
            at += name[at] + 1;
        }
    }
    return found;
fail:
    Py_DECREF(found);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"ents", ents, METH_VARARGS,
     "ents(records, apex_length) -> set: the empty non-terminals between the owners and the apex."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_zonelines",
    "The zone parser's fast path for plain record lines in C (gslb/load/zoneparse.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__zonelines(void)
{
    return PyModule_Create(&module);
}
