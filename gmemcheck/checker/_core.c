/* The breadth-first search of gmemcheck's explicit engine, in C (issue 14).
 *
 * The model stays in Python: this file knows nothing of guest_memfd. A state is a
 * vector of F small codes (uint32), one per field of the model's NamedTuple state; the
 * Python side (gmemcheck/checker/accel.py) owns the tables from codes to field values.
 * Every question the search asks of the model -- is label L enabled and what does it
 * write, does state predicate P hold, does step predicate E hold on (s, L, t) -- is
 * answered from a read-set memo: the Python side runs the guard, body or predicate
 * once on a proxy that records the fields it reads (gmemcheck/model/work.py:_Reads) and
 * returns those fields' positions with the answer; this file stores the answer under
 * the codes of those fields, and answers every later state agreeing on them without
 * calling Python. An answer the proxy could not follow comes back without reads and
 * that question is asked of Python on every state from then on (the memo is "always").
 *
 * Exactness: states are stored whole (every code), compared whole; the memo only
 * replaces a call whose answer is a function of the fields it read (the same argument
 * as work.memoized). The order of the search -- states in breadth-first order, labels
 * in label-table order, predicates in the order given -- is the Python engine's, so
 * state ids, parents, shortest traces and hits are the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define EMPTY INT32_MIN

/* ------------------------------------------------------------------ a buffer object */
/* Memory handed to Python without a copy: exposes the buffer protocol (bytes). */
typedef struct {
    PyObject_HEAD
    char *p;
    Py_ssize_t len;
} Buf;

static void buf_dealloc(Buf *b) { free(b->p); Py_TYPE(b)->tp_free((PyObject *)b); }

static int buf_getbuffer(Buf *b, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)b, b->p, b->len, 1, flags);
}

static Py_ssize_t buf_length(Buf *b) { return b->len; }

static PyBufferProcs buf_as_buffer = {(getbufferproc)buf_getbuffer, NULL};
static PySequenceMethods buf_as_seq = {(lenfunc)buf_length};

static PyTypeObject BufType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gmemcheck.checker._core.Buf",
    .tp_basicsize = sizeof(Buf),
    .tp_dealloc = (destructor)buf_dealloc,
    .tp_as_buffer = &buf_as_buffer,
    .tp_as_sequence = &buf_as_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "memory owned by the search, read through memoryview",
};

/* Wraps p (malloc'd, len bytes) in a Buf that frees it; p is freed on failure. */
static PyObject *buf_wrap(void *p, size_t len) {
    Buf *b = PyObject_New(Buf, &BufType);
    if (b == NULL) { free(p); return NULL; }
    b->p = p;
    b->len = (Py_ssize_t)len;
    return (PyObject *)b;
}

/* ------------------------------------------------------------------ growable vectors */
typedef struct { char *p; size_t len, cap; } Vec; /* len and cap in bytes */

/* Large tables are read at random (the state table) or grow by the gigabyte: ask
 * Linux for transparent huge pages there (fewer page faults and TLB misses; the
 * machine's THP setting is usually "madvise"). Only a hint: nothing depends on it. */
#define HUGE_HINT ((size_t)4 << 20)

static void huge_hint(void *p, size_t len) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t b = ((uintptr_t)p + len) & ~(uintptr_t)4095;
    if (len >= HUGE_HINT && b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

static int vec_need(Vec *v, size_t more) {
    if (v->len + more <= v->cap) return 0;
    size_t cap = v->cap ? v->cap : 4096;
    while (cap < v->len + more) cap = cap < ((size_t)1 << 30) ? cap * 2 : cap + cap / 2;
    char *p = realloc(v->p, cap);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    v->p = p;
    v->cap = cap;
    huge_hint(p, cap);
    return 0;
}

static int vec_i32(Vec *v, int32_t x) {
    if (vec_need(v, 4) < 0) return -1;
    memcpy(v->p + v->len, &x, 4);
    v->len += 4;
    return 0;
}

static int vec_u16(Vec *v, uint16_t x) {
    if (vec_need(v, 2) < 0) return -1;
    memcpy(v->p + v->len, &x, 2);
    v->len += 2;
    return 0;
}

static int vec_u8(Vec *v, uint8_t x) {
    if (vec_need(v, 1) < 0) return -1;
    v->p[v->len++] = (char)x;
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(P) __builtin_prefetch((P))
#else
#define PREFETCH(P) ((void)0)
#endif

static inline uint64_t mix(uint64_t h, uint32_t c) {
    h = (h ^ c) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

/* ------------------------------------------------------------------ read-set memos */
/* One table per read set: entries of n + 1 words, the answer (EMPTY where free) then
 * the n codes of the key, side by side so that a probe touches one place. */
#define EMPTYW ((uint32_t)EMPTY)

typedef struct {
    int n;          /* fields in the key */
    int *idx;       /* their positions: 0..F-1 in s, F..2F-1 in t */
    uint32_t *ent;  /* cap entries of n + 1 words */
    size_t cap, used;
} RSet;

typedef struct {
    int nsets;
    RSet *sets;
    int always; /* the proxy could not follow: ask Python every time */
} Memo;

typedef struct {
    int F;
    size_t entries, cap; /* memo entries stored, and the most it may store */
    uint32_t *key;       /* scratch: 2F codes */
} Ctx;

/* The key of read set r in (s, t), into c->key; returns its hash. */
static inline uint64_t make_key(const Ctx *c, const RSet *r, const uint32_t *s,
                                const uint32_t *t) {
    uint64_t h = 0x12345;
    const int F = c->F;
    for (int q = 0; q < r->n; q++) {
        int i = r->idx[q];
        uint32_t v = i < F ? s[i] : t[i - F];
        c->key[q] = v;
        h = mix(h, v);
    }
    return h;
}

static inline int same_words(const uint32_t *a, const uint32_t *b, int n) {
    for (int q = 0; q < n; q++) {
        if (a[q] != b[q]) return 0;
    }
    return 1;
}

static inline uint64_t hash_words(const uint32_t *k, int n) {
    uint64_t h = 0x12345;
    for (int q = 0; q < n; q++) h = mix(h, k[q]);
    return h;
}

static int memo_get(Ctx *c, Memo *m, const uint32_t *s, const uint32_t *t, int32_t *out) {
    for (int j = 0; j < m->nsets; j++) {
        RSet *r = &m->sets[j];
        if (r->cap == 0) continue;
        uint64_t h = make_key(c, r, s, t);
        const size_t w = (size_t)r->n + 1, mask = r->cap - 1;
        size_t i = (size_t)h & mask;
        for (;;) {
            const uint32_t *e = r->ent + i * w;
            if (e[0] == EMPTYW) break;
            if (same_words(e + 1, c->key, r->n)) {
                *out = (int32_t)e[0];
                if (j > 0) { /* read sets that hit drift to the front */
                    RSet tmp = m->sets[j - 1];
                    m->sets[j - 1] = m->sets[j];
                    m->sets[j] = tmp;
                }
                return 1;
            }
            i = (i + 1) & mask;
        }
    }
    return 0;
}

static int rset_grow(RSet *r) {
    size_t cap = r->cap ? r->cap * 2 : 64, w = (size_t)r->n + 1;
    uint32_t *ent = malloc(cap * w * 4);
    if (ent == NULL) { PyErr_NoMemory(); return -1; }
    for (size_t i = 0; i < cap; i++) ent[i * w] = EMPTYW;
    size_t mask = cap - 1;
    for (size_t i = 0; i < r->cap; i++) {
        const uint32_t *e = r->ent + i * w;
        if (e[0] == EMPTYW) continue;
        size_t at = (size_t)hash_words(e + 1, r->n) & mask;
        while (ent[at * w] != EMPTYW) at = (at + 1) & mask;
        memcpy(ent + at * w, e, w * 4);
    }
    free(r->ent);
    r->ent = ent;
    r->cap = cap;
    return 0;
}

/* Stores ans under the codes of `reads` (positions) in s and t: 1 if stored, 0 if the
 * memo is full, -1 on error. */
static int memo_put(Ctx *c, Memo *m, const int *reads, int n, const uint32_t *s,
                    const uint32_t *t, int32_t ans) {
    if (c->entries >= c->cap) return 0; /* full: not stored */
    RSet *r = NULL;
    for (int j = 0; j < m->nsets; j++) {
        if (m->sets[j].n == n && memcmp(m->sets[j].idx, reads, (size_t)n * sizeof(int)) == 0) {
            r = &m->sets[j];
            break;
        }
    }
    if (r == NULL) {
        RSet *sets = realloc(m->sets, (size_t)(m->nsets + 1) * sizeof(RSet));
        if (sets == NULL) { PyErr_NoMemory(); return -1; }
        m->sets = sets;
        r = &m->sets[m->nsets++];
        memset(r, 0, sizeof(RSet));
        r->n = n;
        r->idx = malloc((size_t)(n ? n : 1) * sizeof(int));
        if (r->idx == NULL) { m->nsets--; PyErr_NoMemory(); return -1; }
        memcpy(r->idx, reads, (size_t)n * sizeof(int));
    }
    if ((r->used + 1) * 2 > r->cap && rset_grow(r) < 0) return -1;
    const size_t w = (size_t)n + 1, mask = r->cap - 1;
    size_t i = (size_t)make_key(c, r, s, t) & mask;
    for (;;) {
        uint32_t *e = r->ent + i * w;
        if (e[0] == EMPTYW) {
            e[0] = (uint32_t)ans;
            memcpy(e + 1, c->key, (size_t)n * 4);
            r->used++;
            c->entries++;
            return 1;
        }
        if (same_words(e + 1, c->key, n)) { e[0] = (uint32_t)ans; return 1; }
        i = (i + 1) & mask;
    }
}

static void memo_free(Memo *m) {
    for (int j = 0; j < m->nsets; j++) {
        free(m->sets[j].idx);
        free(m->sets[j].ent);
    }
    free(m->sets);
    m->sets = NULL;
    m->nsets = 0;
}

/* ------------------------------------------------------------------ the search */
typedef struct {
    Ctx c;
    int F, L, P, E;
    PyObject *miss, *tick;
    Memo *labels, *preds, *edges; /* L, P + 1 (the last: terminal), E * L */
    Vec writes;                   /* int32: count, then (field, code) pairs */
    long scratch;                 /* offset of an answer kept by no memo (reused), or -1 */
    /* states: F codes each, uint16 while every code fits (wide = 0), then uint32 */
    int wide;
    long wide_at; /* the first code that needs four bytes: 65536 (less in a test) */
    Vec codes, parent, via, depth; /* F codes per state; int32 x3 */
    uint64_t *slots;               /* the state's hash << 32 | sid + 1; 0 free */
    size_t nslots;
    size_t n;
} Search;

static int widen(Search *S);

static PyObject *codes_bytes(const uint32_t *s, int F) {
    return PyBytes_FromStringAndSize((const char *)s, (Py_ssize_t)F * 4);
}

/* Reads the (reads, answer) pair the Python side returns; *reads_out is NULL for an
 * answer without reads. For a label the answer is None (disabled) or a flat tuple of
 * (field, code) pairs; for a predicate a bool. */
static int parse_reads(PyObject *reads, int F, int **out, int *n) {
    *out = NULL;
    *n = -1;
    if (reads == Py_None) return 0;
    PyObject *seq = PySequence_Fast(reads, "reads must be a sequence");
    if (seq == NULL) return -1;
    Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
    if (k > 2 * (Py_ssize_t)F) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "reads: more positions than fields");
        return -1;
    }
    int *r = malloc((size_t)(k ? k : 1) * sizeof(int));
    if (r == NULL) { Py_DECREF(seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < k; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) { free(r); Py_DECREF(seq); return -1; }
        r[i] = (int)v;
    }
    Py_DECREF(seq);
    *out = r;
    *n = (int)k;
    return 0;
}

/* Asks Python: kind 0 label (idx = lid), 1 state predicate, 2 step predicate
 * (idx = e * L + lid). Stores the answer in the memo unless it came without reads. */
static int ask(Search *S, Memo *m, int kind, int idx, const uint32_t *s, const uint32_t *t,
               int32_t *out) {
    if (S->scratch >= 0) { /* the last answer no memo kept: its writes were used up */
        S->writes.len = (size_t)S->scratch * 4;
        S->scratch = -1;
    }
    PyObject *sb = codes_bytes(s, S->F);
    if (sb == NULL) return -1;
    PyObject *tb = t ? codes_bytes(t, S->F) : (Py_INCREF(Py_None), Py_None);
    if (tb == NULL) { Py_DECREF(sb); return -1; }
    PyObject *r = PyObject_CallFunction(S->miss, "iiOO", kind, idx, sb, tb);
    Py_DECREF(sb);
    Py_DECREF(tb);
    if (r == NULL) return -1;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_TypeError, "miss must return (reads, answer)");
        return -1;
    }
    PyObject *ans = PyTuple_GET_ITEM(r, 1);
    int32_t a;
    if (kind == 0) {
        if (ans == Py_None) {
            a = -1;
        } else {
            PyObject *seq = PySequence_Fast(ans, "writes must be a sequence");
            if (seq == NULL) { Py_DECREF(r); return -1; }
            Py_ssize_t k = PySequence_Fast_GET_SIZE(seq);
            if (k % 2 || S->writes.len / 4 + (size_t)k + 1 > INT32_MAX) {
                Py_DECREF(seq);
                Py_DECREF(r);
                PyErr_SetString(PyExc_ValueError, "writes: (field, code) pairs");
                return -1;
            }
            a = (int32_t)(S->writes.len / 4);
            if (vec_i32(&S->writes, (int32_t)(k / 2)) < 0) { Py_DECREF(seq); Py_DECREF(r); return -1; }
            for (Py_ssize_t i = 0; i < k; i++) {
                long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
                if ((v == -1 && PyErr_Occurred()) || (i % 2 == 0 && (v < 0 || v >= S->F))) {
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "write: bad field");
                    Py_DECREF(seq);
                    Py_DECREF(r);
                    return -1;
                }
                if (i % 2 && v >= S->wide_at && !S->wide && widen(S) < 0) { Py_DECREF(seq); Py_DECREF(r); return -1; }
                if (vec_i32(&S->writes, (int32_t)v) < 0) { Py_DECREF(seq); Py_DECREF(r); return -1; }
            }
            Py_DECREF(seq);
        }
    } else {
        int b = PyObject_IsTrue(ans);
        if (b < 0) { Py_DECREF(r); return -1; }
        a = b;
    }
    int *reads;
    int n;
    if (parse_reads(PyTuple_GET_ITEM(r, 0), S->F, &reads, &n) < 0) { Py_DECREF(r); return -1; }
    Py_DECREF(r);
    if (reads == NULL) {
        m->always = 1;
        if (kind == 0 && a >= 0) S->scratch = a;
    } else {
        for (int q = 0; q < n; q++) {
            if (reads[q] < 0 || reads[q] >= 2 * S->F || (t == NULL && reads[q] >= S->F)) {
                free(reads);
                PyErr_SetString(PyExc_ValueError, "reads: bad field position");
                return -1;
            }
        }
        int rc = memo_put(&S->c, m, reads, n, s, t, a);
        free(reads);
        if (rc < 0) return -1;
        if (rc == 0 && kind == 0 && a >= 0) S->scratch = a;
    }
    *out = a;
    return 0;
}

static inline int answer(Search *S, Memo *m, int kind, int idx, const uint32_t *s,
                         const uint32_t *t, int32_t *out) {
    if (!m->always && memo_get(&S->c, m, s, t, out)) return 0;
    return ask(S, m, kind, idx, s, t, out);
}

static inline size_t state_bytes(const Search *S) {
    return (size_t)S->F * (S->wide ? 4 : 2);
}

static inline const char *state_at(const Search *S, size_t sid) {
    return S->codes.p + sid * state_bytes(S);
}

/* The codes of stored state sid, as uint32. */
static void load_state(const Search *S, size_t sid, uint32_t *out) {
    if (S->wide) {
        memcpy(out, state_at(S, sid), (size_t)S->F * 4);
    } else {
        const uint16_t *p = (const uint16_t *)state_at(S, sid);
        for (int i = 0; i < S->F; i++) out[i] = p[i];
    }
}

/* The stored form of the codes in `in` (state_bytes(S) bytes at out). */
static void pack_state(const Search *S, const uint32_t *in, char *out) {
    if (S->wide) {
        memcpy(out, in, (size_t)S->F * 4);
    } else {
        uint16_t *p = (uint16_t *)out;
        for (int i = 0; i < S->F; i++) p[i] = (uint16_t)in[i];
    }
}

/* A code past 65535 arrived: store every state's codes as uint32 from now on. The
 * hashes are of the uint32 codes, so the table stays as it is. */
static int widen(Search *S) {
    size_t n = S->codes.len / 2;
    uint32_t *p = malloc((n ? n : 1) * 4);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    const uint16_t *q = (const uint16_t *)S->codes.p;
    for (size_t i = 0; i < n; i++) p[i] = q[i];
    free(S->codes.p);
    S->codes.p = (char *)p;
    S->codes.len = S->codes.cap = n * 4;
    S->wide = 1;
    return 0;
}

static uint32_t hash_state(const uint32_t *s, int F) {
    uint64_t h = 0xABCDEF;
    for (int i = 0; i < F; i++) h = mix(h, s[i]);
    return (uint32_t)(h ^ (h >> 32));
}

static int slots_grow(Search *S) {
    size_t cap = S->nslots ? S->nslots * 2 : 1 << 12;
    uint64_t *slots = malloc(cap * 8);
    if (slots == NULL) { PyErr_NoMemory(); return -1; }
    huge_hint(slots, cap * 8);
    memset(slots, 0, cap * 8);
    for (size_t j = 0; j < S->nslots; j++) {
        uint64_t v = S->slots[j];
        if (v == 0) continue;
        size_t i = (size_t)(v >> 32) & (cap - 1);
        while (slots[i]) i = (i + 1) & (cap - 1);
        slots[i] = v;
    }
    free(S->slots);
    S->slots = slots;
    S->nslots = cap;
    return 0;
}

/* The id of the state stored as tp, or -1 if new; *slot_out is where it would go.
 * The slot holds the hash: a probe past another state does not touch that state. */
static long find_state(Search *S, const char *tp, uint32_t h, size_t *slot_out) {
    size_t mask = S->nslots - 1, i = h & mask;
    for (;;) {
        uint64_t v = S->slots[i];
        if (v == 0) { *slot_out = i; return -1; }
        if ((uint32_t)(v >> 32) == h) {
            size_t sid = (size_t)(uint32_t)v - 1;
            if (memcmp(state_at(S, sid), tp, state_bytes(S)) == 0) return (long)sid;
        }
        i = (i + 1) & mask;
    }
}

/* Appends the state stored as tp as state n (its slot found by find_state). */
static int add_state(Search *S, const char *tp, uint32_t h, size_t slot, int32_t par,
                     int32_t lab, int32_t d) {
    if (S->n >= INT32_MAX - 1) {  /* ids are int32 (parents, labels, the graph) */
        PyErr_SetString(PyExc_OverflowError, "more than 2**31 - 2 states");
        return -1;
    }
    if (vec_need(&S->codes, state_bytes(S)) < 0) return -1;
    memcpy(S->codes.p + S->codes.len, tp, state_bytes(S));
    S->codes.len += state_bytes(S);
    if (vec_i32(&S->parent, par) < 0
        || vec_i32(&S->via, lab) < 0 || vec_i32(&S->depth, d) < 0)
        return -1;
    S->slots[slot] = ((uint64_t)h << 32) | (uint64_t)(S->n + 1);
    S->n++;
    if (S->n * 2 > S->nslots && slots_grow(S) < 0) return -1;
    return 0;
}

static PyObject *vec_to_buf(Vec *v) {
    PyObject *b = buf_wrap(v->p ? v->p : malloc(1), v->len);
    v->p = NULL;
    v->len = v->cap = 0;
    return b;
}

/* search(F, L, env, inits, pkinds, punless, ewant, miss, tick, max_states, max_depth,
 *        can_stop, keep_graph, ndeadlock, memo_cap, open_count)
 *
 * env: bytes, one per label (1: an environment step, not progress for deadlock).
 * inits: list of bytes (F uint32 codes each), the initial states in order.
 * pkinds: bytes, one per state predicate: 0 safety (hit where false), 1 reachable
 *   (hit where true), 2 mark (a column of answers); punless: per predicate, the index of
 *   the mark predicate whose true answer makes this one 0 unevaluated, or -1.
 *   The last predicate asked (index P) is the model's terminal predicate.
 * ewant: bytes, one per step predicate; the Python side answers pred == want already.
 * tick(head, n, depth_of_head) -> True to stop (the time cap); called every 1024
 *   expansions, as the Python engine checks its clock.
 */
static PyObject *search(PyObject *self, PyObject *args) {
    int F, L;
    Py_buffer env, pkinds, ewant;
    PyObject *inits, *punless, *miss, *tick;
    long long max_states, max_depth, memo_cap;
    int can_stop, keep_graph, ndeadlock, open_count;
    long wide_at = 65536;
    if (!PyArg_ParseTuple(args, "iiy*O!y*O!y*OOLLppiLi|l", &F, &L, &env, &PyList_Type, &inits,
                          &pkinds, &PyTuple_Type, &punless, &ewant, &miss, &tick, &max_states,
                          &max_depth, &can_stop, &keep_graph, &ndeadlock, &memo_cap, &open_count,
                          &wide_at))
        return NULL;
    PyObject *result = NULL, *initial = NULL;
    Search S;
    memset(&S, 0, sizeof S);
    S.F = F;
    S.L = L;
    S.P = (int)pkinds.len;
    S.E = (int)ewant.len;
    S.miss = miss;
    S.tick = tick;
    S.c.F = F;
    S.c.cap = (size_t)memo_cap;
    S.c.key = malloc((size_t)F * 8);
    S.scratch = -1;
    S.wide_at = wide_at < 1 || wide_at > 65536 ? 65536 : wide_at;
    const uint8_t *envp = env.buf, *pk = pkinds.buf;
    int P = S.P, E = S.E;
    int *unless = NULL;
    int32_t *hit_sid = NULL, *hit_src = NULL, *hit_lid = NULL, *hit_seq = NULL;
    uint8_t *done = NULL; /* per state predicate, then per step predicate: resolved */
    Vec *cols = NULL;
    Vec off = {0}, edst = {0}, elab = {0}, terminal = {0};
    uint32_t *t = NULL, *cur = NULL; /* the successor and the state expanded, uint32 */
    uint32_t *succ = NULL, *sh = NULL;  /* the successors of one state, their hashes */
    int *slid = NULL;                   /* and their labels */
    uint32_t *t0 = NULL;                /* t's own buffer (t points into succ below) */
    char *tp = NULL;                  /* the successor in its stored form */
    long long *fired = NULL;
    int seq = 0;
    long deadlock_sid = -1;
    int deadlock_seq = -1;
    size_t head = 0;
    int cap_kind = 0, stopped = 0;

    if (F <= 0 || L < 0 || (Py_ssize_t)L != env.len || PyTuple_GET_SIZE(punless) != P) {
        PyErr_SetString(PyExc_ValueError, "search: inconsistent sizes");
        goto out;
    }
    S.labels = calloc((size_t)(L ? L : 1), sizeof(Memo));
    S.preds = calloc((size_t)P + 1, sizeof(Memo));
    S.edges = calloc((size_t)(E * L > 0 ? E * L : 1), sizeof(Memo));
    unless = malloc(((size_t)P + 1) * sizeof(int));
    hit_sid = malloc(((size_t)P + E + 1) * 4);
    hit_src = malloc(((size_t)P + E + 1) * 4);
    hit_lid = malloc(((size_t)P + E + 1) * 4);
    hit_seq = malloc(((size_t)P + E + 1) * 4);
    done = calloc((size_t)P + E + 1, 1);
    cols = calloc((size_t)P + 1, sizeof(Vec));
    t = t0 = malloc((size_t)F * 4);
    succ = malloc((size_t)(L ? L : 1) * F * 4);
    sh = malloc((size_t)(L ? L : 1) * 4);
    slid = malloc((size_t)(L ? L : 1) * sizeof(int));
    cur = malloc((size_t)F * 4);
    tp = malloc((size_t)F * 4);
    fired = calloc((size_t)(L ? L : 1), sizeof(long long));
    if (!S.labels || !S.preds || !S.edges || !unless || !hit_sid || !hit_src || !hit_lid
        || !hit_seq || !done || !cols || !t || !cur || !tp || !fired || !S.c.key || !succ
        || !sh || !slid) {
        PyErr_NoMemory();
        goto out;
    }
    for (int p = 0; p < P + E + 1; p++) hit_sid[p] = hit_src[p] = hit_lid[p] = hit_seq[p] = -1;
    for (int p = 0; p < P; p++) {
        long u = PyLong_AsLong(PyTuple_GET_ITEM(punless, p));
        if (u == -1 && PyErr_Occurred()) goto out;
        unless[p] = (int)u;
        if (pk[p] > 2 || u >= P || (u >= 0 && (pk[u] != 2 || u >= p))) {
            PyErr_SetString(PyExc_ValueError, "search: bad predicate table");
            goto out;
        }
    }
    if (slots_grow(&S) < 0) goto out;

#define CHECK_STATE(SID, CODES)                                                         \
    do {                                                                                \
        const uint32_t *cs_ = (CODES);                                                  \
        for (int p_ = 0; p_ < P; p_++) {                                                \
            int32_t a_ = 0;                                                             \
            if (pk[p_] != 2 && done[p_]) continue;                                      \
            if (pk[p_] == 2 && unless[p_] >= 0                                          \
                && cols[unless[p_]].p[cols[unless[p_]].len - 1]) {                      \
                a_ = 0;                                                                 \
            } else if (answer(&S, &S.preds[p_], 1, p_, cs_, NULL, &a_) < 0) {            \
                goto out;                                                               \
            }                                                                           \
            if (pk[p_] == 2) {                                                          \
                if (vec_u8(&cols[p_], (uint8_t)a_) < 0) goto out;                       \
            } else if ((pk[p_] == 0) != (a_ != 0)) {                                    \
                done[p_] = 1;                                                           \
                hit_sid[p_] = (int32_t)(SID);                                           \
                hit_seq[p_] = seq++;                                                    \
                open_count--;                                                           \
            }                                                                           \
        }                                                                               \
    } while (0)

    Py_ssize_t ninit = PyList_GET_SIZE(inits);
    initial = PyList_New(0);
    if (initial == NULL) goto out;
    for (Py_ssize_t i = 0; i < ninit; i++) {
        PyObject *b = PyList_GET_ITEM(inits, i);
        if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) != (Py_ssize_t)F * 4) {
                        PyErr_SetString(PyExc_ValueError, "search: an initial state is not F codes");
            goto out;
        }
        memcpy(t, PyBytes_AS_STRING(b), (size_t)F * 4);
        for (int i = 0; i < F; i++) {
            if (t[i] >= (uint32_t)S.wide_at && !S.wide && widen(&S) < 0) goto out;
        }
        uint32_t h = hash_state(t, F);
        size_t slot;
        pack_state(&S, t, tp);
        if (find_state(&S, tp, h, &slot) >= 0) continue;
        size_t sid = S.n;
        if (add_state(&S, tp, h, slot, -1, -1, 0) < 0) { goto out; }
        PyObject *v = PyLong_FromSize_t(sid);
        if (v == NULL || PyList_Append(initial, v) < 0) { Py_XDECREF(v); goto out; }
        Py_DECREF(v);
        CHECK_STATE(sid, t);
    }
    size_t limit = max_states >= 0 ? (size_t)max_states : SIZE_MAX;
    while (head < S.n) {
        if (can_stop && open_count == 0) { stopped = 1; break; }
        if ((head & 1023) == 0) {
            int32_t d0 = ((int32_t *)S.depth.p)[head];
            PyObject *r = PyObject_CallFunction(tick, "nni", (Py_ssize_t)head, (Py_ssize_t)S.n, d0);
            if (r == NULL) { goto out; }
            int stop = PyObject_IsTrue(r);
            Py_DECREF(r);
            if (stop < 0) { goto out; }
            if (stop) { cap_kind = 3; break; }
        }
        size_t sid = head;
        int32_t d = ((int32_t *)S.depth.p)[sid];
        if (keep_graph && vec_i32(&off, (int32_t)(edst.len / 4)) < 0) { goto out; }
        int32_t term;
        load_state(&S, sid, cur);
        if (answer(&S, &S.preds[P], 1, -1, cur, NULL, &term) < 0) {
                        goto out;
        }
        if (term) {
            if (vec_i32(&terminal, (int32_t)sid) < 0) { goto out; }
            head++;
            continue;
        }
        if (max_depth >= 0 && d >= max_depth) { cap_kind = 2; break; }
        int progress = 0, ns = 0;
        /* The successors of every enabled label first (their answers do not depend
         * on what is interned), with the state table's slots fetched ahead: the
         * probes are random reads of a table of gigabytes at four pages. Then each
         * is interned and checked in label order, as the Python loop does. */
        for (int lid = 0; lid < L; lid++) {
            int32_t w;
            if (answer(&S, &S.labels[lid], 0, lid, cur, NULL, &w) < 0) goto out;
            if (w < 0) continue;
            if (!envp[lid]) progress = 1;
            uint32_t *tk = succ + (size_t)ns * F;
            memcpy(tk, cur, (size_t)F * 4);
            const int32_t *wp = (const int32_t *)S.writes.p + w;
            for (int q = 0; q < wp[0]; q++) tk[wp[1 + 2 * q]] = (uint32_t)wp[2 + 2 * q];
            sh[ns] = hash_state(tk, F);
            slid[ns] = lid;
            PREFETCH(&S.slots[sh[ns] & (S.nslots - 1)]);
            ns++;
        }
        for (int k = 0; k < ns; k++) { /* the stored state a slot names, fetched ahead */
            uint64_t v = S.slots[sh[k] & (S.nslots - 1)];
            if (v && (uint32_t)(v >> 32) == sh[k]) PREFETCH(state_at(&S, (size_t)(uint32_t)v - 1));
        }
        for (int k = 0; k < ns; k++) {
            const int lid = slid[k];
            t = succ + (size_t)k * F;
            fired[lid]++;
            uint32_t h = sh[k];
            size_t slot;
            pack_state(&S, t, tp);
            long tid = find_state(&S, tp, h, &slot);
            if (tid < 0) {
                if (S.n >= limit) { cap_kind = 1; break; }
                tid = (long)S.n;
                if (add_state(&S, tp, h, slot, (int32_t)sid, lid, d + 1) < 0) {
                                        goto out;
                }
                CHECK_STATE((size_t)tid, t);
            }
            for (int e = 0; e < E; e++) {
                if (done[P + e]) continue;
                int32_t a;
                if (answer(&S, &S.edges[e * L + lid], 2, e * L + lid, cur, t, &a) < 0) {
                                        goto out;
                }
                if (a) {
                    done[P + e] = 1;
                    hit_sid[P + e] = (int32_t)tid;
                    hit_src[P + e] = (int32_t)sid;
                    hit_lid[P + e] = lid;
                    hit_seq[P + e] = seq++;
                    open_count--;
                }
            }
            if (keep_graph && edst.len / 4 >= INT32_MAX - 1) {
                PyErr_SetString(PyExc_OverflowError, "more than 2**31 - 2 edges in the graph");
                goto out;
            }
            if (keep_graph && (vec_i32(&edst, (int32_t)tid) < 0
                               || (L <= 0xFF ? vec_u8(&elab, (uint8_t)lid)
                                   : L <= 0xFFFF ? vec_u16(&elab, (uint16_t)lid)
                                                 : vec_i32(&elab, lid)) < 0)) {
                                goto out;
            }
        }
        if (cap_kind) break;
        if (!progress && deadlock_sid < 0 && ndeadlock > 0) {
            deadlock_sid = (long)sid;
            deadlock_seq = seq++;
            open_count -= ndeadlock;
        }
        head++;
    }
    if (keep_graph) {
        while (off.len / 4 <= S.n) {
            if (vec_i32(&off, (int32_t)(edst.len / 4)) < 0) { goto out; }
        }
    }
    {
        PyObject *hits = PyList_New(0), *firedl = PyList_New(L), *colsl = PyList_New(P);
        if (hits == NULL || firedl == NULL || colsl == NULL) {
            Py_XDECREF(hits); Py_XDECREF(firedl); Py_XDECREF(colsl);             goto out;
        }
        for (int lid = 0; lid < L; lid++) {
            PyObject *f = PyLong_FromLongLong(fired[lid]);
            if (f == NULL) { Py_DECREF(hits); Py_DECREF(firedl); Py_DECREF(colsl); goto out; }
            PyList_SET_ITEM(firedl, lid, f);
        }
        for (int p = 0; p < P + E; p++) {
            if (hit_seq[p] < 0) continue;
            PyObject *h = Py_BuildValue("(iiiii)", hit_seq[p], p, hit_sid[p], hit_src[p], hit_lid[p]);
            if (h == NULL || PyList_Append(hits, h) < 0) {
                Py_XDECREF(h); Py_DECREF(hits); Py_DECREF(firedl); Py_DECREF(colsl);                 goto out;
            }
            Py_DECREF(h);
        }
        for (int p = 0; p < P; p++) {
            PyObject *b = pk[p] == 2 ? PyByteArray_FromStringAndSize(cols[p].p ? cols[p].p : "", (Py_ssize_t)cols[p].len)
                                     : (Py_INCREF(Py_None), Py_None);
            if (b == NULL) { Py_DECREF(hits); Py_DECREF(firedl); Py_DECREF(colsl); goto out; }
            PyList_SET_ITEM(colsl, p, b);
        }
        size_t entries = S.c.entries;
        size_t nstates = S.n;
        PyObject *codes = vec_to_buf(&S.codes), *parent = vec_to_buf(&S.parent);
        PyObject *via = vec_to_buf(&S.via), *depth = vec_to_buf(&S.depth);
        PyObject *terms = vec_to_buf(&terminal);
        PyObject *o = keep_graph ? vec_to_buf(&off) : (Py_INCREF(Py_None), Py_None);
        PyObject *ed = keep_graph ? vec_to_buf(&edst) : (Py_INCREF(Py_None), Py_None);
        PyObject *el = keep_graph ? vec_to_buf(&elab) : (Py_INCREF(Py_None), Py_None);
        result = Py_BuildValue(
            "{s:n,s:n,s:i,s:i,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:N,s:(ll),s:n,s:i,s:s}",
            "n", (Py_ssize_t)nstates, "head", (Py_ssize_t)head, "cap", cap_kind, "stopped", stopped,
            "codes", codes, "parent", parent, "via", via, "depth", depth, "terminal", terms,
            "off", o, "edst", ed, "elab", el, "hits", hits, "fired", firedl, "cols", colsl,
            "initial", initial, "deadlock", deadlock_sid, (long)deadlock_seq,
            "memo_entries", (Py_ssize_t)entries, "wide", S.wide, "elab_format",
            L <= 0xFF ? "B" : L <= 0xFFFF ? "H" : "i");
        initial = NULL; /* the result holds it (or Py_BuildValue released it) */
    }

out:
#undef CHECK_STATE
    Py_XDECREF(initial);
    PyBuffer_Release(&env);
    PyBuffer_Release(&pkinds);
    PyBuffer_Release(&ewant);
    if (S.labels) for (int i = 0; i < L; i++) memo_free(&S.labels[i]);
    if (S.preds) for (int i = 0; i <= P; i++) memo_free(&S.preds[i]);
    if (S.edges) for (int i = 0; i < E * L; i++) memo_free(&S.edges[i]);
    free(S.labels); free(S.preds); free(S.edges);
    free(S.writes.p); free(S.codes.p); free(S.parent.p); free(S.via.p);
    free(S.depth.p); free(S.slots);
    if (cols) for (int p = 0; p <= P; p++) free(cols[p].p);
    free(cols); free(unless); free(hit_sid); free(hit_src); free(hit_lid); free(hit_seq);
    free(done); free(t0); free(cur); free(tp); free(fired); free(S.c.key);
    free(succ); free(sh); free(slid);
    free(off.p); free(edst.p); free(elab.p); free(terminal.p);
    return result;
}

/* reach_back(off, dst, lab, keep, good[, sweeps]): liveness.py:check_recoverable's closure. off
 * (int32, n + 1), dst (int32) and lab (uint8, uint16 or int32) are the state graph in CSR
 * form, keep one byte per label (0: the edge is left out), good one byte per state
 * (writable). Marks good every state with a path of kept edges to a good state.
 * First by sweeps over the states from the last id down, each marking a state with a
 * kept edge to a good one, until a sweep changes nothing (no memory beyond the graph:
 * breadth-first ids make most edges point up, so a few sweeps settle it); after
 * REACH_SWEEPS sweeps that still change something, by a breadth-first search of the
 * reverse graph (4 bytes an edge more). Either way the least fixpoint. */
#define REACH_SWEEPS 24
static PyObject *reach_back(PyObject *self, PyObject *args) {
    Py_buffer off, dst, lab, keep, good;
    int sweeps = REACH_SWEEPS;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*|i", &off, &dst, &lab, &keep, &good, &sweeps))
        return NULL;
    PyObject *result = NULL;
    int32_t *rstart = NULL, *fill = NULL, *rsrc = NULL, *queue = NULL;
    size_t n = (size_t)good.len, ne = (size_t)dst.len / 4;
    int lw = (int)lab.itemsize;
    if (off.itemsize != 4 || dst.itemsize != 4 || (lw != 1 && lw != 2 && lw != 4)
        || (size_t)off.len != (n + 1) * 4 || (size_t)lab.len != ne * (size_t)lw) {
        PyErr_SetString(PyExc_ValueError, "reach_back: the graph's columns do not agree");
        goto done;
    }
    const int32_t *o = off.buf, *d = dst.buf;
    const uint8_t *k = keep.buf;
    uint8_t *g = good.buf;
    size_t nl = (size_t)keep.len;
#define LAB(E) ((size_t)(lw == 1 ? ((const uint8_t *)lab.buf)[E] \
                        : lw == 2 ? ((const uint16_t *)lab.buf)[E] \
                                  : (uint32_t)((const int32_t *)lab.buf)[E]))
    for (size_t e = 0; e < ne; e++) {
        if (LAB(e) >= nl || (size_t)d[e] >= n) {
            PyErr_SetString(PyExc_ValueError, "reach_back: edge out of range");
            goto done;
        }
    }
    for (int sweep = 0; sweep < sweeps; sweep++) {
        int changed = 0;
        for (size_t u = n; u-- > 0;) {
            if (g[u]) continue;
            for (int32_t e = o[u]; e < o[u + 1]; e++) {
                if (k[LAB((size_t)e)] && g[d[e]]) { g[u] = 1; changed = 1; break; }
            }
        }
        if (!changed) goto settled;
    }
    rstart = calloc(n + 1, 4);
    fill = malloc((n ? n : 1) * 4);
    if (!rstart || !fill) { PyErr_NoMemory(); goto done; }
    for (size_t e = 0; e < ne; e++) {
        if (k[LAB(e)]) rstart[(size_t)d[e] + 1]++;
    }
    for (size_t i = 0; i < n; i++) rstart[i + 1] += rstart[i];
    rsrc = malloc(((size_t)rstart[n] ? (size_t)rstart[n] : 1) * 4);
    if (!rsrc) { PyErr_NoMemory(); goto done; }
    memcpy(fill, rstart, n * 4);
    for (size_t u = 0; u < n; u++) {
        for (int32_t e = o[u]; e < o[u + 1]; e++) {
            if (k[LAB((size_t)e)]) rsrc[fill[d[e]]++] = (int32_t)u;
        }
    }
    free(fill); /* done with: its memory serves as the queue */
    fill = NULL;
    queue = malloc((n ? n : 1) * 4);
    if (!queue) { PyErr_NoMemory(); goto done; }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++) {
        if (g[i]) queue[tail++] = (int32_t)i;
    }
    while (head < tail) {
        int32_t v = queue[head++];
        for (int32_t j = rstart[v]; j < rstart[v + 1]; j++) {
            int32_t u = rsrc[j];
            if (!g[u]) { g[u] = 1; queue[tail++] = u; }
        }
    }
settled:
#undef LAB
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(rstart); free(fill); free(rsrc); free(queue);
    PyBuffer_Release(&off); PyBuffer_Release(&dst); PyBuffer_Release(&lab);
    PyBuffer_Release(&keep); PyBuffer_Release(&good);
    return result;
}

static PyMethodDef methods[] = {
    {"search", search, METH_VARARGS, "Breadth-first search over read-set memos (see accel.py)."},
    {"reach_back", reach_back, METH_VARARGS, "The reverse closure of check_recoverable."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core", NULL, -1, methods};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&BufType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&BufType);
    if (PyModule_AddObject(m, "Buf", (PyObject *)&BufType) < 0) {
        Py_DECREF(&BufType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
