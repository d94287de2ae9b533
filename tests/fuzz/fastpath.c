/* A libFuzzer target for the native fast path: each input is a datagram, parsed by
 * parse_query and answered by table_answer (and, on a table miss, table_render) over a
 * table built and warmed from the interop zones by tests/fuzz/model.py. Every reply C
 * gives is compared with the Python responder's (model.check): a difference, an
 * exception or a sanitizer report aborts the run.
 *
 * Built by tests/unit/test_native_libfuzzer.py with clang -fsanitize=fuzzer,address,
 * undefined together with gslb/server/native/*.c; the extension module is registered as
 * a built-in, so the table the model builds is this instrumented code's own. */
#include "native.h"
#include <stdlib.h>

PyMODINIT_FUNC PyInit__fastpath(void);

static Table *table;
static PyObject *check;
static unsigned char out[MAX_UDP_REPLY];
static unsigned long long compared;  /* replies C gave, each checked against Python */

static void report(void)
{
    fprintf(stderr, "fastpath fuzz: compared %llu replies\n", compared);
}

static void fail(const char *what)
{
    fprintf(stderr, "fastpath fuzz: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (PyImport_AppendInittab("gslb.server._fastpath", PyInit__fastpath) < 0)
        fail("inittab");
    Py_InitializeEx(0);
    PyObject *model = PyImport_ImportModule("tests.fuzz.model");
    if (model == NULL)
        fail("import tests.fuzz.model");
    PyObject *built = PyObject_CallMethod(model, "build", NULL);
    if (built == NULL || !PyObject_TypeCheck(built, &TableType))
        fail("model.build() did not give this build's Table");
    table = (Table *)built;
    check = PyObject_GetAttrString(model, "check");
    if (check == NULL)
        fail("model.check");
    Py_DECREF(model);
    atexit(report);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    query_t q;
    if (size > MAX_UDP_REPLY || !parse_query(data, size, &q))
        return 0;
    peer_t peer = {.family = 4, .address = {127, 0, 0, 1}, .slot = 0};
    int anchored = 0;
    /* as the loop does: the table alone (without the GIL), then with the zone data */
    size_t n = table_answer(table, data, &q, &peer, out, sizeof(out), &anchored, 0);
    if (n == 0)
        n = table_answer(table, data, &q, &peer, out, sizeof(out), &anchored, 1);
    if (n == 0)
        return 0;
    PyObject *ok = PyObject_CallFunction(check, "y#y#", (const char *)data, (Py_ssize_t)size,
                                         (const char *)out, (Py_ssize_t)n);
    if (ok == NULL)
        fail("the reply C gave is not Python's");
    Py_DECREF(ok);
    compared++;
    return 0;
}
