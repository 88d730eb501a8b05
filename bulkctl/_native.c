/*
 * bulkctl._native: the NDJSON fast path in C (see bulkctl/native.py for how it is used).
 *
 * Why: in Python every record costs ~2 us to parse into objects plus ~2 us of checks, on
 * every byte of a multi-gigabyte dump. Most lines of a real dump are already exactly what
 * the rules would send: `{"id":"..","collection":"..","properties":{..}}` as orjson writes
 * it. `Scanner.scan` proves that of a line byte by byte, without building a Python object
 * for it, and then does what the Python path would do with it (count, hint material,
 * duplicate-id key, lane). Any line it cannot prove canonical and valid, it hands back to
 * Python, which decides exactly as before. So this module can only make a run faster, never
 * different: a line is taken here only when `orjson.dumps(orjson.loads(line)) == line` and
 * the rules accept it (tests/test_native.py checks both on generated lines).
 *
 * A canonical line, in this module's sense:
 *   - shorter than `small` bytes (so no value nor the line can reach a size limit);
 *   - `{"id":"<id>","collection":"<collection>","properties":{<props>}}`, no whitespace;
 *   - id: 1..max_id characters, valid UTF-8, no control character, no backslash;
 *   - collection: [a-z_], 1..max_collection bytes, not starting or ending with `_`;
 *   - props: `"name":value` pairs, names non-empty and distinct, no backslash;
 *   - values: `true`, `false`, integers of at most 18 digits (no `-0`), decimals with a
 *     fraction, no exponent, at most 15 significant digits and 15 integer digits, at least
 *     1e-4 unless zero, no trailing zero in the fraction unless it is `.0`; strings in valid
 *     UTF-8 with only the escapes \" \\ \b \f \n \r \t.
 * Those are exactly the forms orjson writes for such values (a decimal of <= 15 significant
 * digits is the shortest representation of its double).
 *
 * A flat record (`{"<id field>":"..","name":value,..}`, its own "collection" or the default
 * one, no "properties") with the same value forms is rewritten into the canonical line the
 * rules would encode (id, collection, then the other keys in their order) and taken as one.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLLECTIONS 64
#define MAX_PROPS 256
#define MAX_NAME_SLOTS (1 << 20)

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* zlib.crc32(data, crc) */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, Py_ssize_t n) {
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* -- growable byte buffer ------------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t n);

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (n == 0) return 0; /* (memcpy must not see the NULL of an empty buffer) */
    if (b->len + n > b->cap && buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* Room for n more bytes (doubling). */
static int buf_grow(Buf *b, Py_ssize_t n) {
    if (b->len + n > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *grown = PyMem_Realloc(b->data, cap);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    return 0;
}

static PyObject *buf_take(Buf *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data, b->len);
    b->len = 0;
    return out;
}

/* -- the scanner ---------------------------------------------------------------------- */

typedef struct {
    char *bytes;
    Py_ssize_t len;
    PyObject *name; /* str */
    uint32_t base;  /* crc32("collection\0") */
    Py_ssize_t count; /* valid records since the last scan() returned */
} Collection;

typedef struct {
    uint64_t hash; /* 0: empty slot */
    int collection;
    Py_ssize_t len;
    char *bytes;
    uint64_t stamp; /* the record that last named it (duplicate names) */
} NameSlot;

typedef struct {
    const unsigned char *start;
    Py_ssize_t len;
    const unsigned char *value; /* (flat records: where the value is, to rewrite the line) */
    Py_ssize_t value_len;
    uint64_t hash;
    Py_ssize_t slot; /* -1: new to this scanner */
} Prop;

typedef struct {
    PyObject_HEAD
    int lanes;  /* 0: do not pack */
    int hints;
    Py_ssize_t small, max_id, max_collection;
    PyObject *bufs; /* list of bytearray, one a lane */
    Collection collections[MAX_COLLECTIONS];
    int ncollections;
    NameSlot *names;
    Py_ssize_t name_slots, name_count;
    uint64_t serial;
    Buf keys, order;
    Py_ssize_t *lane_records;
    char *default_collection; /* flat records: --collection (NULL: none) */
    Py_ssize_t default_collection_len;
    char *id_field; /* flat records: the key that holds the id (NULL: no flat records) */
    Py_ssize_t id_field_len;
    Buf flat; /* a flat record's line, rewritten in the canonical shape */
    Prop props[MAX_PROPS];
} Scanner;

static void Scanner_dealloc(Scanner *self) {
    for (int i = 0; i < self->ncollections; i++) {
        PyMem_Free(self->collections[i].bytes);
        Py_XDECREF(self->collections[i].name);
    }
    if (self->names != NULL) {
        for (Py_ssize_t i = 0; i < self->name_slots; i++) PyMem_Free(self->names[i].bytes);
        PyMem_Free(self->names);
    }
    PyMem_Free(self->keys.data);
    PyMem_Free(self->order.data);
    PyMem_Free(self->flat.data);
    PyMem_Free(self->default_collection);
    PyMem_Free(self->id_field);
    PyMem_Free(self->lane_records);
    Py_XDECREF(self->bufs);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A copy the scanner owns of an argument's bytes (NULL: out of memory, exception set). */
static char *copy_bytes(const char *src, Py_ssize_t n) {
    char *copy = PyMem_Malloc(n + 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, src, n);
    return copy;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"lanes",      "hints",    "small", "max_id", "max_collection",
                             "bufs",       "collection", "id_field", NULL};
    PyObject *bufs;
    const char *collection = NULL, *id_field = NULL;
    Py_ssize_t collection_len = 0, id_field_len = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ipnnnO!|z#z#", kwlist, &self->lanes,
                                     &self->hints, &self->small, &self->max_id,
                                     &self->max_collection, &PyList_Type, &bufs, &collection,
                                     &collection_len, &id_field, &id_field_len))
        return -1;
    if (collection != NULL) {
        if ((self->default_collection = copy_bytes(collection, collection_len)) == NULL) return -1;
        self->default_collection_len = collection_len;
    }
    if (id_field != NULL) {
        if ((self->id_field = copy_bytes(id_field, id_field_len)) == NULL) return -1;
        self->id_field_len = id_field_len;
    }
    if (self->lanes < 0 || self->lanes > 256) {
        PyErr_SetString(PyExc_ValueError, "lanes must be 0..256");
        return -1;
    }
    if (PyList_GET_SIZE(bufs) != self->lanes) {
        PyErr_SetString(PyExc_ValueError, "bufs must hold one bytearray a lane");
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->lanes; i++) {
        if (!PyByteArray_CheckExact(PyList_GET_ITEM(bufs, i))) {
            PyErr_SetString(PyExc_TypeError, "bufs must hold bytearrays");
            return -1;
        }
    }
    Py_INCREF(bufs);
    Py_XSETREF(self->bufs, bufs);
    self->name_slots = 1024;
    self->names = PyMem_Calloc(self->name_slots, sizeof(NameSlot));
    self->lane_records = PyMem_Calloc(self->lanes ? self->lanes : 1, sizeof(Py_ssize_t));
    if (self->names == NULL || self->lane_records == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t name_hash(int collection, const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)collection;
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static Py_ssize_t name_find(Scanner *self, int collection, const Prop *prop) {
    Py_ssize_t mask = self->name_slots - 1;
    Py_ssize_t i = (Py_ssize_t)(prop->hash & (uint64_t)mask);
    for (;;) {
        NameSlot *slot = &self->names[i];
        if (slot->hash == 0) return -1;
        if (slot->hash == prop->hash && slot->collection == collection &&
            slot->len == prop->len && memcmp(slot->bytes, prop->start, prop->len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static int name_grow(Scanner *self) {
    Py_ssize_t slots = self->name_slots * 2;
    NameSlot *table = PyMem_Calloc(slots, sizeof(NameSlot));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t j = 0; j < self->name_slots; j++) {
        NameSlot *old = &self->names[j];
        if (old->hash == 0) continue;
        Py_ssize_t i = (Py_ssize_t)(old->hash & (uint64_t)(slots - 1));
        while (table[i].hash != 0) i = (i + 1) & (slots - 1);
        table[i] = *old;
    }
    PyMem_Free(self->names);
    self->names = table;
    self->name_slots = slots;
    return 0;
}

static int name_add(Scanner *self, int collection, const Prop *prop) {
    if ((self->name_count + 1) * 2 > self->name_slots && name_grow(self) < 0) return -1;
    Py_ssize_t mask = self->name_slots - 1;
    Py_ssize_t i = (Py_ssize_t)(prop->hash & (uint64_t)mask);
    while (self->names[i].hash != 0) i = (i + 1) & mask;
    char *copy = PyMem_Malloc(prop->len ? prop->len : 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, prop->start, prop->len);
    NameSlot *slot = &self->names[i];
    slot->hash = prop->hash;
    slot->collection = collection;
    slot->len = prop->len;
    slot->bytes = copy;
    slot->stamp = self->serial;
    self->name_count++;
    return 0;
}

/* -- canonical JSON, byte by byte ----------------------------------------------------- */

/* One UTF-8 sequence starting at *p (a byte >= 0x80): advance past it, or return 0. */
static int utf8_step(const unsigned char **pp, const unsigned char *end) {
    const unsigned char *p = *pp;
    unsigned char c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
        *pp = p + 2;
        return 1;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0; /* surrogate */
        *pp = p + 3;
        return 1;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0; /* beyond U+10FFFF */
        *pp = p + 4;
        return 1;
    }
    return 0;
}

/* A string's contents up to its closing quote (p is just past the opening one).
   escapes: whether the short escapes are allowed (values) or no backslash at all (keys).
   On success *pp is just past the closing quote and *chars counts its characters. */
static int scan_string(const unsigned char **pp, const unsigned char *end, int escapes,
                       Py_ssize_t *chars) {
    const unsigned char *p = *pp;
    Py_ssize_t n = 0;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            *pp = p + 1;
            *chars = n;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (!escapes || p + 1 >= end) return 0;
            switch (p[1]) {
                case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
                    p += 2;
                    n++;
                    continue;
                default:
                    return 0; /* \u and \/ are written otherwise by orjson */
            }
        }
        if (c < 0x80) {
            p++;
        } else if (!utf8_step(&p, end)) {
            return 0;
        }
        n++;
    }
    return 0;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* A number exactly as orjson writes one in the accepted range (see the header). */
static int scan_number(const unsigned char **pp, const unsigned char *end) {
    const unsigned char *p = *pp;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || !is_digit(*p)) return 0;
    const unsigned char *int_start = p;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p)) p++;
    }
    Py_ssize_t int_digits = p - int_start;
    int int_zero = (int_digits == 1 && *int_start == '0');
    if (p < end && (*p == 'e' || *p == 'E')) return 0;
    if (p >= end || *p != '.') {
        /* an integer: at most 18 digits always fits in 64 bits; orjson writes -0 as 0 */
        if (int_digits > 18 || (negative && int_zero)) return 0;
        *pp = p;
        return 1;
    }
    p++; /* the decimal point */
    const unsigned char *frac_start = p;
    while (p < end && is_digit(*p)) p++;
    Py_ssize_t frac_digits = p - frac_start;
    if (frac_digits == 0) return 0;
    if (p < end && (*p == 'e' || *p == 'E')) return 0;
    if (int_digits > 15) return 0;
    int frac_zero = (frac_digits == 1 && *frac_start == '0');
    if (!frac_zero && p[-1] == '0') return 0; /* trailing zero: not the shortest form */
    Py_ssize_t significant;
    if (int_zero) {
        if (frac_zero) {
            *pp = p;
            return 1; /* 0.0 or -0.0 */
        }
        Py_ssize_t zeros = 0;
        while (frac_start[zeros] == '0') zeros++;
        if (zeros > 3) return 0; /* below 1e-4: orjson may switch to an exponent */
        significant = frac_digits - zeros;
    } else {
        significant = int_digits + (frac_zero ? 0 : frac_digits);
    }
    if (significant > 15) return 0;
    *pp = p;
    return 1;
}

static int expect(const unsigned char **pp, const unsigned char *end, const char *text,
                  Py_ssize_t n) {
    if (end - *pp < n || memcmp(*pp, text, n) != 0) return 0;
    *pp += n;
    return 1;
}

typedef struct {
    const unsigned char *id;
    Py_ssize_t id_len;
    const unsigned char *collection;
    Py_ssize_t collection_len;
    int nprops;
    int flat; /* the line to send is self->flat, not the input line */
} Line;

/* A property value as orjson writes it (string, true, false or a number in range). */
static int scan_value(const unsigned char **pp, const unsigned char *end) {
    Py_ssize_t chars;
    const unsigned char *p = *pp;
    if (p >= end) return 0;
    switch (*p) {
        case '"':
            p++;
            if (!scan_string(&p, end, 1, &chars)) return 0;
            break;
        case 't':
            if (!expect(&p, end, "true", 4)) return 0;
            break;
        case 'f':
            if (!expect(&p, end, "false", 5)) return 0;
            break;
        default:
            if (!scan_number(&p, end)) return 0;
    }
    *pp = p;
    return 1;
}

/* A collection name the rules accept: [a-z_], not starting or ending with `_`. */
static int good_collection(const unsigned char *c, Py_ssize_t n, Py_ssize_t max) {
    if (n < 1 || n > max || c[0] == '_' || c[n - 1] == '_') return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || c[i] == '_')) return 0;
    return 1;
}

static int parse_flat(Scanner *self, const unsigned char *p, const unsigned char *end,
                      Line *line);

static int parse_canonical(Scanner *self, const unsigned char *p, const unsigned char *end,
                           Line *line);

/* Parse one line (without its newline): 1 if it is a canonical record, or a flat one that
   self->flat now holds rewritten; 0 if neither; -1 on error (exception set). */
static int parse_line(Scanner *self, const unsigned char *p, const unsigned char *end,
                      Line *line) {
    if (end - p >= self->small) return 0;
    line->flat = 0;
    if (parse_canonical(self, p, end, line)) return 1;
    return parse_flat(self, p, end, line);
}

static int parse_canonical(Scanner *self, const unsigned char *p, const unsigned char *end,
                           Line *line) {
    Py_ssize_t chars;
    if (!expect(&p, end, "{\"id\":\"", 7)) return 0;
    line->id = p;
    if (!scan_string(&p, end, 0, &chars)) return 0;
    line->id_len = p - 1 - line->id;
    if (chars < 1 || chars > self->max_id) return 0;
    if (!expect(&p, end, ",\"collection\":\"", 15)) return 0;
    line->collection = p;
    while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_')) p++;
    line->collection_len = p - line->collection;
    if (line->collection_len < 1 || line->collection_len > self->max_collection) return 0;
    if (line->collection[0] == '_' || p[-1] == '_') return 0;
    if (!expect(&p, end, "\",\"properties\":{", 16)) return 0;
    int n = 0;
    if (p < end && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (n == MAX_PROPS) return 0;
            if (!expect(&p, end, "\"", 1)) return 0;
            Prop *prop = &self->props[n++];
            prop->start = p;
            if (!scan_string(&p, end, 0, &chars) || chars == 0) return 0;
            prop->len = p - 1 - prop->start;
            if (!expect(&p, end, ":", 1) || !scan_value(&p, end)) return 0;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (!expect(&p, end, "}", 1)) return 0;
            break;
        }
    }
    if (!expect(&p, end, "}", 1) || p != end) return 0;
    line->nprops = n;
    return 1;
}

/* A flat record, `{"<id_field>":"..","name":value,..}` with an optional "collection" and
   no "properties", rewritten into self->flat as the canonical line the rules would encode:
   id, collection (its own, else --collection), then the other keys in their order. */
static int parse_flat(Scanner *self, const unsigned char *p, const unsigned char *end,
                      Line *line) {
    Py_ssize_t chars;
    if (self->id_field == NULL) return 0;
    if (!expect(&p, end, "{", 1)) return 0;
    line->id = NULL;
    line->collection = NULL;
    int n = 0;
    if (p < end && *p == '}') return 0; /* no id */
    for (;;) {
        if (!expect(&p, end, "\"", 1)) return 0;
        const unsigned char *key = p;
        if (!scan_string(&p, end, 0, &chars)) return 0;
        Py_ssize_t key_len = p - 1 - key;
        if (!expect(&p, end, ":", 1)) return 0;
        const unsigned char *value = p;
        if (key_len == self->id_field_len && memcmp(key, self->id_field, key_len) == 0) {
            if (line->id != NULL || !expect(&p, end, "\"", 1)) return 0;
            line->id = p;
            if (!scan_string(&p, end, 0, &chars)) return 0;
            line->id_len = p - 1 - line->id;
            if (chars < 1 || chars > self->max_id) return 0;
        } else if (key_len == 10 && memcmp(key, "collection", 10) == 0) {
            if (line->collection != NULL || !expect(&p, end, "\"", 1)) return 0;
            line->collection = p;
            while (p < end && *p != '"') p++;
            line->collection_len = p - line->collection;
            if (!expect(&p, end, "\"", 1)) return 0;
            if (!good_collection(line->collection, line->collection_len, self->max_collection))
                return 0;
        } else if (key_len == 10 && memcmp(key, "properties", 10) == 0) {
            return 0;
        } else {
            if (n == MAX_PROPS || chars == 0) return 0;
            Prop *prop = &self->props[n++];
            prop->start = key;
            prop->len = key_len;
            if (!scan_value(&p, end)) return 0;
            prop->value = value;
            prop->value_len = p - value;
        }
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (!expect(&p, end, "}", 1) || p != end) return 0;
        break;
    }
    if (line->id == NULL) return 0;
    if (line->collection == NULL) {
        if (self->default_collection == NULL) return 0;
        line->collection = (const unsigned char *)self->default_collection;
        line->collection_len = self->default_collection_len;
        if (!good_collection(line->collection, line->collection_len, self->max_collection))
            return 0;
    }
    line->nprops = n;
    Buf *out = &self->flat;
    out->len = 0;
    if (buf_put(out, "{\"id\":\"", 7) < 0 || buf_put(out, line->id, line->id_len) < 0 ||
        buf_put(out, "\",\"collection\":\"", 16) < 0 ||
        buf_put(out, line->collection, line->collection_len) < 0 ||
        buf_put(out, "\",\"properties\":{", 16) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        Prop *prop = &self->props[i];
        if ((i && buf_put(out, ",", 1) < 0) || buf_put(out, "\"", 1) < 0 ||
            buf_put(out, prop->start, prop->len) < 0 || buf_put(out, "\":", 2) < 0 ||
            buf_put(out, prop->value, prop->value_len) < 0)
            return -1;
    }
    if (buf_put(out, "}}", 2) < 0) return -1;
    if (out->len >= self->small) return 0;
    line->flat = 1;
    return 1;
}

static int find_collection(Scanner *self, const Line *line) {
    for (int i = 0; i < self->ncollections; i++) {
        Collection *c = &self->collections[i];
        if (c->len == line->collection_len &&
            memcmp(c->bytes, line->collection, line->collection_len) == 0)
            return i;
    }
    if (self->ncollections == MAX_COLLECTIONS) return -2;
    return -1;
}

static int add_collection(Scanner *self, const Line *line) {
    Collection *c = &self->collections[self->ncollections];
    c->bytes = PyMem_Malloc(line->collection_len);
    if (c->bytes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(c->bytes, line->collection, line->collection_len);
    c->len = line->collection_len;
    c->name = PyUnicode_DecodeASCII((const char *)line->collection, line->collection_len, NULL);
    if (c->name == NULL) {
        PyMem_Free(c->bytes);
        return -1;
    }
    c->base = crc_update(crc_update(0, line->collection, line->collection_len),
                         (const unsigned char *)"", 1);
    c->count = 0;
    return self->ncollections++;
}

/* Take a parsed canonical line: 1 taken, 0 not canonical after all (a repeated property
   name), -1 error (exception set). `groups` gets (collection, [new names]). */
static int take_line(Scanner *self, const unsigned char *start, Py_ssize_t size,
                     const Line *line, PyObject *groups) {
    int ci = find_collection(self, line);
    if (ci == -2) return 0;
    int n = line->nprops;
    self->serial++;
    int fresh = 0;
    for (int i = 0; i < n; i++) {
        Prop *prop = &self->props[i];
        prop->hash = name_hash(ci, prop->start, prop->len);
        prop->slot = ci < 0 ? -1 : name_find(self, ci, prop);
        if (prop->slot >= 0) {
            NameSlot *slot = &self->names[prop->slot];
            if (slot->stamp == self->serial) return 0; /* a repeated name */
            slot->stamp = self->serial;
        } else {
            for (int j = 0; j < i; j++) {
                Prop *other = &self->props[j];
                if (other->slot < 0 && other->len == prop->len &&
                    memcmp(other->start, prop->start, prop->len) == 0)
                    return 0; /* a repeated new name */
            }
            fresh++;
        }
    }
    if (fresh && self->name_count + fresh > MAX_NAME_SLOTS / 2) return 0;
    if (ci < 0 && (ci = add_collection(self, line)) < 0) return -1;
    Collection *collection = &self->collections[ci];
    PyObject *id = NULL;
    if (self->hints) {
        id = PyUnicode_DecodeUTF8((const char *)line->id, line->id_len, NULL);
        if (id == NULL) return -1;
        PyObject *pair = PyTuple_Pack(2, collection->name, id);
        Py_DECREF(id);
        if (pair == NULL) return -1;
        Py_hash_t key = PyObject_Hash(pair);
        Py_DECREF(pair);
        if (key == -1 || buf_put(&self->keys, &key, sizeof key) < 0) return -1;
    }
    if (fresh) {
        PyObject *names = self->hints ? PyList_New(0) : NULL;
        if (self->hints && names == NULL) return -1;
        for (int i = 0; i < n; i++) {
            Prop *prop = &self->props[i];
            if (prop->slot >= 0) continue;
            prop->hash = name_hash(ci, prop->start, prop->len); /* ci may be new */
            if (name_add(self, ci, prop) < 0) {
                Py_XDECREF(names);
                return -1;
            }
            if (names != NULL) {
                PyObject *name = PyUnicode_DecodeUTF8((const char *)prop->start, prop->len, NULL);
                if (name == NULL || PyList_Append(names, name) < 0) {
                    Py_XDECREF(name);
                    Py_DECREF(names);
                    return -1;
                }
                Py_DECREF(name);
            }
        }
        if (names != NULL) {
            PyObject *group = PyTuple_Pack(2, collection->name, names);
            Py_DECREF(names);
            if (group == NULL || PyList_Append(groups, group) < 0) {
                Py_XDECREF(group);
                return -1;
            }
            Py_DECREF(group);
        }
    }
    if (self->lanes) {
        uint32_t crc = crc_update(collection->base, line->id, line->id_len);
        unsigned char lane = (unsigned char)(crc % (uint32_t)self->lanes);
        PyObject *buf = PyList_GET_ITEM(self->bufs, lane);
        Py_ssize_t old = PyByteArray_GET_SIZE(buf);
        if (PyByteArray_Resize(buf, old + size + 1) < 0) return -1;
        char *dest = PyByteArray_AS_STRING(buf) + old;
        memcpy(dest, start, size);
        dest[size] = '\n';
        if (buf_put(&self->order, &lane, 1) < 0) return -1;
        self->lane_records[lane]++;
    }
    collection->count++;
    return 1;
}

/* scan(data, pos) -> (stop, lines, counts, keys, groups, order, lane_records)
   Takes canonical lines from `pos` on; stops at the first other line (`stop` is where it
   starts) or at the end (`stop` == len(data)). `lines` is how many lines were taken. */
static PyObject *Scanner_scan(Scanner *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n", &view, &pos)) return NULL;
    const unsigned char *data = view.buf;
    Py_ssize_t size = view.len;
    if (pos < 0 || pos > size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos is outside the data");
        return NULL;
    }
    PyObject *groups = PyList_New(0);
    if (groups == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    Py_ssize_t taken = 0;
    const unsigned char *end = data + size;
    const unsigned char *p = data + pos;
    int failed = 0;
    while (p < end) {
        const unsigned char *nl = memchr(p, '\n', end - p);
        const unsigned char *line_end = nl ? nl : end;
        Line line;
        int ok = parse_line(self, p, line_end, &line);
        if (ok > 0 && line.flat)
            ok = take_line(self, (const unsigned char *)self->flat.data, self->flat.len, &line,
                           groups);
        else if (ok > 0)
            ok = take_line(self, p, line_end - p, &line, groups);
        if (ok < 0) {
            failed = 1;
            break;
        }
        if (!ok) break;
        taken++;
        p = nl ? nl + 1 : end;
    }
    PyBuffer_Release(&view);
    if (failed) {
        Py_DECREF(groups);
        return NULL;
    }
    PyObject *counts = PyList_New(0);
    PyObject *lane_records = PyList_New(self->lanes);
    if (counts == NULL || lane_records == NULL) goto error;
    for (int i = 0; i < self->ncollections; i++) {
        Collection *c = &self->collections[i];
        if (c->count == 0) continue;
        PyObject *item = Py_BuildValue("(On)", c->name, c->count);
        if (item == NULL || PyList_Append(counts, item) < 0) {
            Py_XDECREF(item);
            goto error;
        }
        Py_DECREF(item);
        c->count = 0;
    }
    for (int i = 0; i < self->lanes; i++) {
        PyObject *count = PyLong_FromSsize_t(self->lane_records[i]);
        if (count == NULL) goto error;
        PyList_SET_ITEM(lane_records, i, count);
        self->lane_records[i] = 0;
    }
    PyObject *keys = buf_take(&self->keys);
    PyObject *order = buf_take(&self->order);
    if (keys == NULL || order == NULL) {
        Py_XDECREF(keys);
        Py_XDECREF(order);
        goto error;
    }
    return Py_BuildValue("(nnNNNNN)", (Py_ssize_t)(p - data), taken, counts, keys, groups,
                         order, lane_records);
error:
    Py_XDECREF(counts);
    Py_XDECREF(lane_records);
    Py_DECREF(groups);
    return NULL;
}

/* -- CSV rows as canonical NDJSON lines ------------------------------------------------ */

/* A cell as orjson writes the string: escapes as orjson's, valid UTF-8 only. */
static int put_json_string(Buf *out, const unsigned char *p, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *end = p + n;
    if (buf_put(out, "\"", 1) < 0) return -1;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        if (p > run && buf_put(out, run, p - run) < 0) return -1;
        if (p >= end) break;
        unsigned char c = *p;
        if (c >= 0x80) {
            const unsigned char *start = p;
            if (!utf8_step(&p, end)) return 0;
            if (buf_put(out, start, p - start) < 0) return -1;
            continue;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        Py_ssize_t len = 2;
        switch (c) {
            case '"': esc[1] = '"'; break;
            case '\\': esc[1] = '\\'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            default:
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                len = 6;
        }
        if (buf_put(out, esc, len) < 0) return -1;
        p++;
    }
    return buf_put(out, "\"", 1) < 0 ? -1 : 1;
}

/* A plain decimal `-?(0|[1-9][0-9]*).[0-9]+` (or, `int_ok`, a canonical int) as orjson writes
   the float Python reads from it: 1 written, 2 beyond this function (let Python do it). */
static int put_float(Buf *out, const unsigned char *p, Py_ssize_t n) {
    const unsigned char *end = p + n, *q = p;
    if (q < end && *q == '-') q++;
    const unsigned char *int_start = q;
    if (q >= end || !is_digit(*q)) return 2;
    if (*q == '0') q++;
    else
        while (q < end && is_digit(*q)) q++;
    Py_ssize_t int_digits = q - int_start;
    if (int_digits > 15) return 2;
    if (q == end) { /* an int in a float column: 12 is 12.0 */
        if (int_digits == 1 && *int_start == '0' && p[0] == '-') return 2;
        if (buf_put(out, p, n) < 0 || buf_put(out, ".0", 2) < 0) return -1;
        return 1;
    }
    if (*q != '.') return 2;
    const unsigned char *frac_start = ++q;
    while (q < end && is_digit(*q)) q++;
    if (q == frac_start || q != end) return 2; /* "1." or an exponent: Python */
    const unsigned char *frac_end = q;
    while (frac_end > frac_start && frac_end[-1] == '0') frac_end--; /* 1.50 is 1.5 */
    Py_ssize_t frac_digits = frac_end - frac_start;
    int int_zero = int_digits == 1 && *int_start == '0';
    Py_ssize_t significant;
    if (frac_digits == 0) {
        significant = int_digits;
    } else if (int_zero) {
        Py_ssize_t zeros = 0;
        while (frac_start[zeros] == '0') zeros++;
        if (zeros > 3) return 2;
        significant = frac_digits - zeros;
    } else {
        significant = int_digits + frac_digits;
    }
    if (significant > 15) return 2;
    if (buf_put(out, p, frac_start - p) < 0) return -1; /* sign, digits and the point */
    if (frac_digits == 0) return buf_put(out, "0", 1) < 0 ? -1 : 1;
    return buf_put(out, frac_start, frac_digits) < 0 ? -1 : 1;
}

/* The flags of one non-empty cell, as bulkctl.read.csv_types.cell_flags gives them. */
#define K_INT 1
#define K_DECIMAL 2
#define K_EXPONENT 4
#define K_BOOL 8
#define K_SOME 16
#define K_ALL 15

static int finite_text(const unsigned char *p, Py_ssize_t n) {
    char small[64];
    char *text = n < 64 ? small : PyMem_Malloc(n + 1);
    if (text == NULL) return -1;
    memcpy(text, p, n);
    text[n] = 0;
    double value = strtod(text, NULL);
    if (text != small) PyMem_Free(text);
    return isfinite(value) ? 1 : 0;
}

static int cell_flags(const unsigned char *p, Py_ssize_t n) {
    if ((n == 4 && memcmp(p, "true", 4) == 0) || (n == 5 && memcmp(p, "false", 5) == 0))
        return K_SOME | K_BOOL;
    const unsigned char *q = p, *end = p + n;
    int negative = 0;
    if (*q == '-') {
        negative = 1;
        q++;
    }
    if (q >= end || !is_digit(*q)) return K_SOME;
    const unsigned char *digits = q;
    if (*q == '0') q++;
    else
        while (q < end && is_digit(*q)) q++;
    Py_ssize_t int_digits = q - digits;
    int fraction = 0, exponent = 0;
    if (q < end && *q == '.') {
        const unsigned char *start = ++q;
        while (q < end && is_digit(*q)) q++;
        if (q == start) return K_SOME;
        fraction = 1;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        const unsigned char *start = q;
        while (q < end && is_digit(*q)) q++;
        if (q == start) return K_SOME;
        exponent = 1;
    }
    if (q != end) return K_SOME;
    if (!fraction && !exponent) {
        if (negative && int_digits == 1 && *digits == '0') return K_SOME; /* -0 */
        if (int_digits <= 18 ||
            (int_digits == 19 &&
             memcmp(digits, negative ? "9223372036854775808" : "9223372036854775807", 19) <= 0))
            return K_SOME | K_INT | K_DECIMAL;
        return K_SOME;
    }
    int finite = int_digits <= 18 && !exponent ? 1 : finite_text(p, n);
    if (finite < 0) return -1;
    if (!finite) return K_SOME;
    return K_SOME | (exponent ? K_EXPONENT : K_DECIMAL);
}

/* Whether all of data is valid UTF-8 (as Python's decoder says), ASCII skipped a word at a time. */
static int valid_utf8(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        while (end - p >= 8) {
            uint64_t word;
            memcpy(&word, p, 8);
            if (word & 0x8080808080808080ULL) break;
            p += 8;
        }
        if (p >= end) break;
        if (*p < 0x80) {
            p++;
        } else if (!utf8_step(&p, end)) {
            return 0;
        }
    }
    return 1;
}

/* One line (p..line_end, no newline) split into `width` cells as the csv module splits it
   (default dialect, strict): 1 done; 0 beyond this code (a quote that does not end right
   before a delimiter, a carriage return, another width: Python decides); -1 no memory.
   A cell is cells[i] + starts[i] (cells[i] NULL: in `unquoted`, where "" became "). */
static int split_row(const unsigned char *data, const unsigned char *p,
                     const unsigned char *line_end, int delimiter, Py_ssize_t width,
                     Py_ssize_t *starts, Py_ssize_t *lens, unsigned char **cells,
                     Buf *unquoted) {
    unquoted->len = 0;
    Py_ssize_t column = 0;
    const unsigned char *q = p;
    for (;;) {
        if (column == width) return 0;
        if (q < line_end && *q == '"') {
            Py_ssize_t at = unquoted->len;
            q++;
            for (;;) {
                const unsigned char *quote = memchr(q, '"', line_end - q);
                if (quote == NULL) return 0; /* a newline inside quotes */
                if (buf_put(unquoted, q, quote - q) < 0) return -1;
                if (quote + 1 < line_end && quote[1] == '"') {
                    if (buf_put(unquoted, "\"", 1) < 0) return -1;
                    q = quote + 2;
                    continue;
                }
                q = quote + 1;
                break;
            }
            starts[column] = at;
            lens[column] = unquoted->len - at;
            cells[column] = NULL;
            if (q < line_end && *q != delimiter) return 0;
        } else {
            const unsigned char *cell = q;
            while (q < line_end && *q != delimiter) {
                if (*q == '"' || *q == '\r') return 0;
                q++;
            }
            starts[column] = cell - data;
            lens[column] = q - cell;
            cells[column] = (unsigned char *)data;
        }
        column++;
        if (q >= line_end) break;
        q++; /* the delimiter */
    }
    return column == width ? 1 : 0;
}

/* csv_kinds(data, delimiter, width, longest) -> bytes | None
   The first pass (bulkctl.read.csv_typing): one byte of flags a column over every row of a plain
   chunk (rows of one line, the header's width, valid UTF-8, lines under `longest` bytes;
   blank lines skipped); None when anything is beyond that, and Python types the chunk. */
static PyObject *csv_kinds(PyObject *module, PyObject *args) {
    Py_buffer view;
    int delimiter;
    Py_ssize_t width, longest;
    if (!PyArg_ParseTuple(args, "y*inn", &view, &delimiter, &width, &longest)) return NULL;
    Py_ssize_t *starts = NULL, *lens = NULL;
    unsigned char **cells = NULL, *flags = NULL;
    Buf unquoted = {NULL, 0, 0};
    int result = 1;
    const unsigned char *data = view.buf, *end = data + view.len, *p = data;
    if (width < 1) {
        result = 0;
        goto done;
    }
    starts = PyMem_Calloc(width, sizeof(Py_ssize_t));
    lens = PyMem_Calloc(width, sizeof(Py_ssize_t));
    cells = PyMem_Calloc(width, sizeof(unsigned char *));
    flags = PyMem_Malloc(width);
    if (starts == NULL || lens == NULL || cells == NULL || flags == NULL) {
        PyErr_NoMemory();
        result = -1;
        goto done;
    }
    memset(flags, K_ALL, width);
    if (!valid_utf8(data, end)) {
        result = 0;
        goto done;
    }
    while (p < end && result == 1) {
        const unsigned char *nl = memchr(p, '\n', end - p);
        const unsigned char *line_end = nl ? nl : end;
        const unsigned char *next = nl ? nl + 1 : end;
        if (line_end == p) {
            p = next; /* a blank line: no row */
            continue;
        }
        if (line_end - p >= longest || memchr(p, '\r', line_end - p)) {
            result = 0;
            break;
        }
        result = split_row(data, p, line_end, delimiter, width, starts, lens, cells, &unquoted);
        if (result != 1) break;
        for (Py_ssize_t i = 0; i < width; i++) {
            if (lens[i] == 0) continue;
            const unsigned char *cell = (cells[i] ? cells[i] : (unsigned char *)unquoted.data) + starts[i];
            int f = cell_flags(cell, lens[i]);
            if (f < 0) {
                PyErr_NoMemory();
                result = -1;
                break;
            }
            flags[i] = (flags[i] & (f | K_SOME)) | (f & K_SOME);
        }
        p = next;
    }
done:
    PyBuffer_Release(&view);
    PyMem_Free(starts);
    PyMem_Free(lens);
    PyMem_Free(cells);
    PyMem_Free(unquoted.data);
    PyObject *out = NULL;
    if (result == 1) out = PyBytes_FromStringAndSize((const char *)flags, width);
    PyMem_Free(flags);
    if (result < 0) return NULL;
    if (result == 0) Py_RETURN_NONE;
    return out;
}

/* A cell of a decided `int` column: written as it is when canonical within 64 bits (it is
   its own JSON); 2 otherwise (the file changed since the first pass: Python says so). */
static int put_int(Buf *out, const unsigned char *p, Py_ssize_t n) {
    int f = cell_flags(p, n);
    if (f < 0) return -1;
    if (!(f & K_INT)) return 2;
    return buf_put(out, p, n) < 0 ? -1 : 1;
}

/* csv_lines(data, delimiter, names, id_index, collection, kinds, longest) -> bytes | None
   Rows of one line each (no newline inside quotes, no \r, the header's width) as the lines
   `{"id":..,"collection":..,"properties":{..}}` that read.csv_rows + the rules would encode;
   None when any row is beyond that, and Python reads the chunk instead. `names` are the
   header's names already JSON-encoded; `kinds` one byte a column, its decided type:
   's'tr, 'i'nt, 'f'loat, 'b'ool (bulkctl.read.csv_types). Empty cells are left out as read.csv_rows
   leaves them. A line of `longest` bytes or more is left to Python (limits, errors). */
static PyObject *csv_lines(PyObject *module, PyObject *args) {
    Py_buffer view;
    int delimiter;
    PyObject *names;
    Py_ssize_t id_index, longest, kinds_len;
    const char *collection, *kinds;
    Py_ssize_t collection_len;
    if (!PyArg_ParseTuple(args, "y*iO!ny#y#n", &view, &delimiter, &PyList_Type, &names,
                          &id_index, &collection, &collection_len, &kinds, &kinds_len, &longest))
        return NULL;
    Py_ssize_t width = PyList_GET_SIZE(names);
    Buf out = {NULL, 0, 0};
    Buf unquoted = {NULL, 0, 0};
    Py_ssize_t *starts = NULL, *lens = NULL;
    unsigned char **cells = NULL; /* unquoted copies where a cell had "" */
    int result = 1;                /* 1 ok, 0 give up, -1 error */
    if (width < 1 || id_index < 0 || id_index >= width || kinds_len != width) {
        result = 0;
        goto done;
    }
    for (Py_ssize_t i = 0; i < width; i++) {
        if (!PyBytes_Check(PyList_GET_ITEM(names, i))) {
            PyErr_SetString(PyExc_TypeError, "names must be bytes");
            result = -1;
            goto done;
        }
    }
    starts = PyMem_Calloc(width, sizeof(Py_ssize_t));
    lens = PyMem_Calloc(width, sizeof(Py_ssize_t));
    cells = PyMem_Calloc(width, sizeof(unsigned char *));
    if (starts == NULL || lens == NULL || cells == NULL) {
        PyErr_NoMemory();
        result = -1;
        goto done;
    }
    const unsigned char *data = view.buf, *end = data + view.len, *p = data;
    if (buf_grow(&out, view.len * 3 + 4096) < 0) { /* JSON takes ~2x the CSV's bytes */
        result = -1;
        goto done;
    }
    while (p < end && result == 1) {
        const unsigned char *nl = memchr(p, '\n', end - p);
        const unsigned char *line_end = nl ? nl : end;
        if (line_end - p >= longest || line_end == p || memchr(p, '\r', line_end - p)) {
            result = 0;
            break;
        }
        result = split_row(data, p, line_end, delimiter, width, starts, lens, cells, &unquoted);
        if (result != 1) break;
#define CELL(i) ((cells[i] ? cells[i] : (unsigned char *)unquoted.data) + starts[i])
        if (lens[id_index] == 0) {
            result = 0;
            break;
        }
        int ok = buf_put(&out, "{\"id\":", 6) < 0 ? -1 : 1;
        if (ok == 1) ok = put_json_string(&out, CELL(id_index), lens[id_index]);
        if (ok == 1 && (buf_put(&out, ",\"collection\":\"", 15) < 0 ||
                        buf_put(&out, collection, collection_len) < 0 ||
                        buf_put(&out, "\",\"properties\":{", 16) < 0))
            ok = -1;
        int first = 1;
        for (Py_ssize_t i = 0; i < width && ok == 1; i++) {
            if (i == id_index || lens[i] == 0) continue;
            PyObject *name = PyList_GET_ITEM(names, i);
            if ((!first && buf_put(&out, ",", 1) < 0) ||
                buf_put(&out, PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name)) < 0 ||
                buf_put(&out, ":", 1) < 0) {
                ok = -1;
                break;
            }
            first = 0;
            const unsigned char *cell = CELL(i);
            Py_ssize_t n = lens[i];
            switch (kinds[i]) {
                case 'i':
                    ok = put_int(&out, cell, n);
                    break;
                case 'f':
                    ok = put_float(&out, cell, n);
                    break;
                case 'b':
                    if (n == 4 && memcmp(cell, "true", 4) == 0) ok = buf_put(&out, "true", 4) < 0 ? -1 : 1;
                    else if (n == 5 && memcmp(cell, "false", 5) == 0) ok = buf_put(&out, "false", 5) < 0 ? -1 : 1;
                    else ok = 2;
                    break;
                default:
                    ok = put_json_string(&out, cell, n);
            }
            if (ok == 2) ok = 0;
        }
#undef CELL
        if (ok == 1 && buf_put(&out, "}}\n", 3) < 0) ok = -1;
        result = ok;
        p = nl ? nl + 1 : end;
    }
done:
    PyMem_Free(unquoted.data);
    PyBuffer_Release(&view);
    PyMem_Free(starts);
    PyMem_Free(lens);
    PyMem_Free(cells);
    if (result < 0) {
        PyMem_Free(out.data);
        return NULL;
    }
    if (result == 0) {
        PyMem_Free(out.data);
        Py_RETURN_NONE;
    }
    PyObject *lines = PyBytes_FromStringAndSize(out.data, out.len);
    PyMem_Free(out.data);
    return lines;
}

/* -- where a JSON value ends (bulkctl.read.json_array) -------------------------------------- */

#define MAX_DEPTH 512

/* value_end(buf, pos) -> end
   The offset just after the object or array starting at buf[pos], by brackets and strings
   alone (its content is checked later, where it is parsed). -1: buf ends first (read more);
   -2: anything else (a closer that does not match, nesting deeper than 512, no bracket at
   pos): the Python splitter takes over and says what is wrong. */
static PyObject *value_end(PyObject *module, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    if (!PyArg_ParseTuple(args, "y*n", &view, &pos)) return NULL;
    const unsigned char *buf = view.buf, *end = buf + view.len;
    Py_ssize_t result = -2;
    unsigned char closers[MAX_DEPTH];
    int depth = 0;
    if (pos < 0 || pos >= view.len || (buf[pos] != '{' && buf[pos] != '[')) goto done;
    result = -1;
    for (const unsigned char *p = buf + pos; p < end; p++) {
        unsigned char c = *p;
        if (c == '"') {
            for (p++;; p++) {
                if (p >= end) goto done;
                if (*p == '\\') {
                    p++;
                    if (p >= end) goto done;
                } else if (*p == '"') {
                    break;
                }
            }
        } else if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH) {
                result = -2;
                goto done;
            }
            closers[depth++] = c == '{' ? '}' : ']';
        } else if (c == '}' || c == ']') {
            if (depth == 0 || closers[depth - 1] != c) {
                result = -2;
                goto done;
            }
            if (--depth == 0) {
                result = p + 1 - buf;
                goto done;
            }
        }
    }
done:
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(result);
}

static PyMethodDef module_methods[] = {
    {"value_end", value_end, METH_VARARGS, "value_end(buf, pos) -> end, -1 (more) or -2"},
    {"csv_lines", csv_lines, METH_VARARGS,
     "csv_lines(data, delimiter, names, id_index, collection, kinds, longest) -> bytes | None"},
    {"csv_kinds", csv_kinds, METH_VARARGS,
     "csv_kinds(data, delimiter, width, longest) -> bytes | None"},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)Scanner_scan, METH_VARARGS,
     "scan(data, pos) -> (stop, lines, counts, keys, groups, order, lane_records)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bulkctl._native.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Takes the canonical lines of one NDJSON chunk (see bulkctl/native.py).",
    .tp_methods = Scanner_methods,
    .tp_init = (initproc)Scanner_init,
    .tp_new = PyType_GenericNew,
};

/* -- the duplicate-id table (bulkctl.fast.merge.KeySet, in C) --------------------------- */

#define EMPTY_KEY (-1) /* hash() never returns -1 */

typedef struct {
    PyObject_HEAD
    int64_t *table;
    Py_ssize_t slots, max_slots, size, limit;
    int capped;
} KeyTable;

static Py_ssize_t slots_for(Py_ssize_t count) {
    Py_ssize_t slots = 1 << 16;
    while (slots < 2 * count) slots *= 2;
    return slots;
}

static int keytable_alloc(KeyTable *self, Py_ssize_t slots) {
    int64_t *table = PyMem_Malloc(slots * sizeof(int64_t));
    if (table == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < slots; i++) table[i] = EMPTY_KEY;
    int64_t *old = self->table;
    Py_ssize_t old_slots = self->slots;
    self->table = table;
    self->slots = slots;
    for (Py_ssize_t j = 0; j < old_slots; j++) {
        int64_t key = old[j];
        if (key == EMPTY_KEY) continue;
        Py_ssize_t i = (Py_ssize_t)((uint64_t)key & (uint64_t)(slots - 1));
        while (table[i] != EMPTY_KEY) i = (i + 1) & (slots - 1);
        table[i] = key;
    }
    PyMem_Free(old);
    return 0;
}

static int KeyTable_init(KeyTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"limit", "expected", NULL};
    Py_ssize_t limit, expected = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|n", kwlist, &limit, &expected)) return -1;
    if (limit < 0 || limit > ((Py_ssize_t)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "limit out of range");
        return -1;
    }
    self->limit = limit;
    self->max_slots = slots_for(limit);
    Py_ssize_t slots = slots_for(expected);
    if (slots > self->max_slots) slots = self->max_slots;
    return keytable_alloc(self, slots);
}

static void KeyTable_dealloc(KeyTable *self) {
    PyMem_Free(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* add_all(keys: bytes of int64) -> how many were seen before */
static PyObject *KeyTable_add_all(KeyTable *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    if (view.len % 8) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "keys must be 8 bytes each");
        return NULL;
    }
    Py_ssize_t count = view.len / 8;
    Py_ssize_t want = self->size + count < self->limit ? self->size + count : self->limit;
    if (want * 2 > self->slots && self->slots < self->max_slots) {
        Py_ssize_t slots = self->slots;
        while (want * 2 > slots) slots *= 8;
        if (slots > self->max_slots) slots = self->max_slots;
        if (keytable_alloc(self, slots) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    const char *keys = view.buf;
    Py_ssize_t repeats = 0, mask = self->slots - 1;
    for (Py_ssize_t k = 0; k < count; k++) {
        int64_t key;
        memcpy(&key, keys + 8 * k, 8);
        Py_ssize_t i = (Py_ssize_t)((uint64_t)key & (uint64_t)mask);
        while (self->table[i] != EMPTY_KEY && self->table[i] != key) i = (i + 1) & mask;
        if (self->table[i] == key) {
            repeats++;
        } else if (self->size < self->limit) {
            self->table[i] = key;
            self->size++;
        } else {
            self->capped = 1;
        }
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(repeats);
}

static PyObject *KeyTable_get_size(KeyTable *self, void *closure) {
    return PyLong_FromSsize_t(self->size);
}

static PyObject *KeyTable_get_capped(KeyTable *self, void *closure) {
    return PyBool_FromLong(self->capped);
}

static PyMethodDef KeyTable_methods[] = {
    {"add_all", (PyCFunction)KeyTable_add_all, METH_O,
     "add_all(keys) -> how many keys (int64, native order) were seen before"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef KeyTable_getset[] = {
    {"size", (getter)KeyTable_get_size, NULL, "keys held", NULL},
    {"capped", (getter)KeyTable_get_capped, NULL, "a key was not held: limit reached", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject KeyTableType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "bulkctl._native.KeyTable",
    .tp_basicsize = sizeof(KeyTable),
    .tp_dealloc = (destructor)KeyTable_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Open-addressing set of 64-bit keys, at most `limit` of them.",
    .tp_methods = KeyTable_methods,
    .tp_getset = KeyTable_getset,
    .tp_init = (initproc)KeyTable_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "bulkctl._native",
    .m_doc = "The NDJSON fast path and the duplicate-id table in C (see bulkctl/native.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    crc_init();
    if (PyType_Ready(&ScannerType) < 0 || PyType_Ready(&KeyTableType) < 0) return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(module, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&KeyTableType);
    if (PyModule_AddObject(module, "KeyTable", (PyObject *)&KeyTableType) < 0) {
        Py_DECREF(&KeyTableType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
