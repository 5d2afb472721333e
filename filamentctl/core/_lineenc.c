/* The backlog drain's line-protocol encoder, compiled: the same bytes as LineEncoder's Python path.
 *
 * Optional. setup.py builds it where a C compiler and the Python headers are; without them the
 * install goes on and filamentctl.core.lineprotocol uses its Python path, which this mirrors.
 * Why it exists: a drain of a million readings spent ~1.5 us per reading formatting six "%.3f"
 * values and computing the derived ones in Python (docs/performance.md); this does it in ~0.15 us.
 *
 * encode(parts, rows) -> bytes | None
 *   parts: a tuple of N+1 bytes, N = 5 or 6 fields: parts[0] is the measurement, tags and first
 *          field name up to its "=", parts[1..N-1] are ",name=", parts[N] is the " " before the
 *          timestamp. N = 6 means every row carries a pressure, N = 5 that none does.
 *   rows:  a list or tuple of (time_ns, seq, temperature_c, humidity, pressure_hpa) tuples.
 *   The values per line, in this order: temperature_c, temperature_f, humidity, dew_point_c,
 *   absolute_humidity_g_m3[, pressure_hpa] (core.reading.FIELDS), each written as "%.3f" is, then
 *   the timestamp as "%d" and a newline.
 *   None when anything is unusual (a row that is not exactly a tuple, a value that is not exactly
 *   a float or int, a non-finite input or result, a
 *   row of the wrong shape, pressure on only some rows, a timestamp beyond 64 bits): the caller
 *   then takes its Python path, which handles every such case. Never raises for bad rows; raises
 *   only MemoryError, and TypeError for parts that are not as described.
 *
 * Bit-for-bit the numbers of filamentctl.core.psychro.derived_columns: the same IEEE operations in
 * the same order, log and exp from the same C library Python's math module calls. setup.py builds
 * with -ffp-contract=off: a fused multiply-add (the default on aarch64) would round differently.
 * lineprotocol.py also checks this module against its Python path at import and does not use it
 * when they disagree on any probe value.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

/* filamentctl.core.psychro's constants; lineprotocol.py's import check catches a drift. */
#define MAGNUS_A 17.62
#define MAGNUS_B 243.12
#define ES0_HPA 6.112

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buffer;

static int
reserve(Buffer *buf, Py_ssize_t more)
{
    if (more > PY_SSIZE_T_MAX - buf->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = buf->len + more;
    if (need <= buf->cap) {
        return 0;
    }
    Py_ssize_t cap = buf->cap ? buf->cap : 1 << 16;
    while (cap < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(buf->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int
put(Buffer *buf, const char *text, Py_ssize_t n)
{
    if (reserve(buf, n) < 0) {
        return -1;
    }
    memcpy(buf->data + buf->len, text, (size_t)n);
    buf->len += n;
    return 0;
}

/* Decimal digits of v (v >= 0), no sign. */
static int
put_digits(Buffer *buf, unsigned long long v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    return put(buf, tmp + i, (Py_ssize_t)sizeof(tmp) - i);
}

/* x as Python's "%.3f" % x writes it (x finite).
 *
 * Fast path, for |x| < 1e6: m = |x| * 1000 is within 2^-24 of the exact product (|m| < 2^30), so
 * when the fraction of m is more than 1e-6 away from one half, rounding m to an integer rounds the
 * exact value of x to three decimals the way a correctly rounded conversion does. Anything nearer
 * a tie, and larger values, go through PyOS_double_to_string: Python's own "%.3f". The sign is
 * written whenever x is negative, as Python does ("-0.000" for -0.0001 and for -0.0).
 */
static int
put_fixed3(Buffer *buf, double x)
{
    double ax = fabs(x);
    if (ax < 1e6) {
        double m = ax * 1000.0;
        double whole = floor(m);
        double frac = m - whole; /* exact: m < 2^30 */
        if (fabs(frac - 0.5) > 1e-6) {
            unsigned long long r = (unsigned long long)whole + (frac > 0.5 ? 1u : 0u);
            unsigned int milli = (unsigned int)(r % 1000u);
            char three[4] = {'.', (char)('0' + milli / 100), (char)('0' + milli / 10 % 10),
                             (char)('0' + milli % 10)};
            if (signbit(x) && put(buf, "-", 1) < 0) {
                return -1;
            }
            if (put_digits(buf, r / 1000u) < 0) {
                return -1;
            }
            return put(buf, three, 4);
        }
    }
    char *text = PyOS_double_to_string(x, 'f', 3, 0, NULL);
    if (text == NULL) {
        return -1;
    }
    int rc = put(buf, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return rc;
}

/* A float or int as a double, as Python's float arithmetic would take it; 0 when it is neither
 * (or an int too large for a double). Exact types only: a subclass may override the arithmetic
 * or __float__ that the Python path would call, so it goes that way. */
static int
number(PyObject *obj, double *out)
{
    if (PyFloat_CheckExact(obj)) {
        *out = PyFloat_AS_DOUBLE(obj);
        return 1;
    }
    if (PyLong_CheckExact(obj)) {
        double v = PyLong_AsDouble(obj);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        *out = v;
        return 1;
    }
    return 0;
}

static PyObject *
encode(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *parts, *rows;
    if (!PyArg_ParseTuple(args, "O!O:encode", &PyTuple_Type, &parts, &rows)) {
        return NULL;
    }
    Py_ssize_t nparts = PyTuple_GET_SIZE(parts);
    if (nparts != 6 && nparts != 7) {
        PyErr_SetString(PyExc_TypeError, "encode: parts must hold 6 or 7 bytes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nparts; i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(parts, i))) {
            PyErr_SetString(PyExc_TypeError, "encode: parts must be bytes");
            return NULL;
        }
    }
    int with_pressure = nparts == 7;
    if (!PyList_Check(rows) && !PyTuple_Check(rows)) {
        Py_RETURN_NONE;
    }
    PyObject *seq = PySequence_Fast(rows, "encode: rows must be a list or tuple");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Buffer buf = {NULL, 0, 0};
    double values[6];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = items[i];
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 5) {
            goto unusual;
        }
        PyObject *time_obj = PyTuple_GET_ITEM(row, 0);
        PyObject *pressure_obj = PyTuple_GET_ITEM(row, 4);
        double t, h, p = 0.0;
        if (!PyLong_CheckExact(time_obj) || !number(PyTuple_GET_ITEM(row, 2), &t)
            || !number(PyTuple_GET_ITEM(row, 3), &h)) {
            goto unusual;
        }
        if (with_pressure ? !number(pressure_obj, &p) : pressure_obj != Py_None) {
            goto unusual;
        }
        int overflow = 0;
        long long time_ns = PyLong_AsLongLongAndOverflow(time_obj, &overflow);
        if (overflow || (time_ns == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            goto unusual;
        }
        /* psychro.derived_columns, operation by operation. */
        double magnus = (MAGNUS_A * t) / (MAGNUS_B + t);
        double floor_h = 0.01 > h ? 0.01 : h; /* max(h, 0.01) keeps h unless 0.01 > h */
        double gamma = log(floor_h / 100.0) + magnus;
        double vapour = ((h / 100.0) * ES0_HPA) * exp(magnus);
        values[0] = t;
        values[1] = (t * 1.8) + 32.0;
        values[2] = h;
        values[3] = (MAGNUS_B * gamma) / (MAGNUS_A - gamma);
        values[4] = (216.7 * vapour) / (t + 273.15);
        values[5] = p;
        int nvalues = with_pressure ? 6 : 5;
        for (int k = 0; k < nvalues; k++) {
            if (!isfinite(values[k])) {
                goto unusual;
            }
        }
        /* A zero divisor gives Python an exception where C gives inf or NaN, which the check
         * above already sent to the Python path; so did a log of zero. */
        for (int k = 0; k < nvalues; k++) {
            PyObject *part = PyTuple_GET_ITEM(parts, k);
            if (put(&buf, PyBytes_AS_STRING(part), PyBytes_GET_SIZE(part)) < 0
                || put_fixed3(&buf, values[k]) < 0) {
                goto fail;
            }
        }
        PyObject *tail = PyTuple_GET_ITEM(parts, nvalues);
        if (put(&buf, PyBytes_AS_STRING(tail), PyBytes_GET_SIZE(tail)) < 0) {
            goto fail;
        }
        if (time_ns < 0 && put(&buf, "-", 1) < 0) {
            goto fail;
        }
        unsigned long long magnitude =
            time_ns < 0 ? 0ull - (unsigned long long)time_ns : (unsigned long long)time_ns;
        if (put_digits(&buf, magnitude) < 0 || put(&buf, "\n", 1) < 0) {
            goto fail;
        }
    }
    Py_DECREF(seq);
    PyObject *body = PyBytes_FromStringAndSize(buf.data ? buf.data : "", buf.len);
    PyMem_Free(buf.data);
    return body;

unusual:
    Py_DECREF(seq);
    PyMem_Free(buf.data);
    Py_RETURN_NONE;

fail:
    Py_DECREF(seq);
    PyMem_Free(buf.data);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS,
     "encode(parts, rows) -> bytes | None: line protocol for rows (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_lineenc",
    "The backlog drain's compiled line-protocol encoder (optional; see lineprotocol.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__lineenc(void)
{
    return PyModule_Create(&module);
}
