/* The per-event work of the CloudTrail reader in one pass, in C (issue 16): scan one decompressed log file, keep the
 * fields CloudTrailReader keeps (_Record, _Identity, _Session, _Issuer, _Params, _Resource in ingest.py), build each
 * record's group key and count it; keep the batch's eventIDs and times here, not as Python objects per event.
 *
 * It is a fast path only. It accepts a strict subset of what msgspec accepts, and refuses (returns None, nothing
 * changed) anything else: invalid JSON, invalid UTF-8 anywhere, a control character in a string, a \u escape of a
 * surrogate, a kept field that is neither a string nor null, a kept object that is not an object or null, a record
 * that is not an object, a key of a kept object that holds an escape, a kept key given twice, nesting deeper than
 * MAX_DEPTH, trailing bytes. The caller then reads the file with msgspec exactly as without this module. Records
 * the Python path skips or counts apart are handled here the same way, record by record (``take_record``): no
 * eventTime or a bad one (skipped and counted), an eventID counted before (a duplicate), no eventID (counted).
 * tests/usage/test_usage_fastct.py checks, on generated files, that this path either refuses or gives exactly the
 * Python path's groups, counts, IDs, times, skipped records and duplicates.
 *
 * Memory safety (the input is attacker-influenced log data): every read is checked against the end of the buffer,
 * every buffer grows on demand with overflow-checked sizes, recursion is bounded by MAX_DEPTH; the hash tables are
 * keyed per process (``hash_bytes``) and their probes bounded (MAX_PROBES).
 *
 * Use (ingest.py): g = Grouper(request_parameter_names, make_key); g.read(raw, groups, events) -> None | counts,
 * per file; g.ids() once per batch; g.export() when the reader must hold every event in Python (see ``_detach``).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define MAX_DEPTH 64
#define MAX_PARAMS 64
/* The longest probe sequence of the hash tables below. Their hash is keyed with a secret of this process, so keys
 * cannot be built to collide; a longer probe still refuses the file (the Python path's dict hashes with Python's own
 * secret), so no input walks a table quadratically. At the tables' load (at most a half) random hashes come nowhere
 * near this: the expected probe of linear probing is ~2.5 slots. */
#define MAX_PROBES 256
/* slot_of and bset_add: no entry, the probe sequence is too long (REFUSE); SIZE_MAX is a memory error (FAIL). */
#define TOO_LONG (SIZE_MAX - 1)

/* Results of the scanning functions. */
#define OK 0
#define REFUSE 1
#define FAIL (-1) /* a Python exception is set (memory) */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static inline int buf_reserve(Buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) {
        PyErr_NoMemory();
        return FAIL;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *d = PyMem_Realloc(b->data, cap);
    if (d == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    b->data = d;
    b->cap = cap;
    return OK;
}

static inline int buf_put(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n) != OK) return FAIL;
    if (n) memcpy(b->data + b->len, src, n);
    b->len += n;
    return OK;
}

static void buf_free(Buf *b) {
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* A kept string: unset (JSON null or absent), or bytes in the input or, when it held escapes, in the arena. */
typedef struct {
    size_t off, len;
    unsigned char set, in_arena;
} Str;

typedef struct {
    const unsigned char *s, *p, *end;
    Buf arena; /* decoded strings of the current record */
    Buf strs;  /* Str of the current record's resources[].ARN */
} Parser;

static inline void ws(Parser *ps) {
    const unsigned char *p = ps->p, *end = ps->end;
    /* most calls find no whitespace (CloudTrail writes compact JSON) or one space: every other byte is above 0x20 */
    while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

/* Whitespace where the grammar most often puts none (before ':', after a value): looked for only when the byte
 * that may come next is not there at once. */
static inline void ws_unless(Parser *ps, unsigned char a, unsigned char b) {
    if (ps->p < ps->end && (*ps->p == a || *ps->p == b)) return;
    ws(ps);
}

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One UTF-8 sequence whose first byte (>= 0x80) is at p; returns its length, 0 when invalid (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF). */
static inline size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    size_t avail = (size_t)(end - p);
#define CONT(i) (avail > (i) && (p[i] & 0xC0) == 0x80)
    if (c >= 0xC2 && c <= 0xDF) return CONT(1) ? 2 : 0;
    if (c == 0xE0) return (avail > 1 && p[1] >= 0xA0 && p[1] <= 0xBF && CONT(2)) ? 3 : 0;
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return (CONT(1) && CONT(2)) ? 3 : 0;
    if (c == 0xED) return (avail > 1 && p[1] >= 0x80 && p[1] <= 0x9F && CONT(2)) ? 3 : 0;
    if (c == 0xF0) return (avail > 1 && p[1] >= 0x90 && p[1] <= 0xBF && CONT(2) && CONT(3)) ? 4 : 0;
    if (c >= 0xF1 && c <= 0xF3) return (CONT(1) && CONT(2) && CONT(3)) ? 4 : 0;
    if (c == 0xF4) return (avail > 1 && p[1] >= 0x80 && p[1] <= 0x8F && CONT(2) && CONT(3)) ? 4 : 0;
#undef CONT
    return 0;
}

/* A string at ps->p (its opening quote). With out: kept (its bytes, escapes decoded into the arena when it has
 * any); *escaped tells whether it had escapes. */
static int scan_string(Parser *ps, Str *out, int *escaped) {
    const unsigned char *p = ps->p + 1, *end = ps->end;
    const unsigned char *start = p;
    int esc = 0;
    size_t arena_start = ps->arena.len;
    for (;;) {
#if defined(__SSE2__)
        {
            const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
            while (end - p >= 16) {
                __m128i v = _mm_loadu_si128((const __m128i *)p);
                /* signed compare: bytes >= 0x80 are negative, so "< 0x20" also flags them (UTF-8 to check) */
                __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                           _mm_cmplt_epi8(v, space));
                int m = _mm_movemask_epi8(hit);
                if (m) {
                    p += __builtin_ctz((unsigned)m);
                    break;
                }
                p += 16;
            }
        }
#endif
        while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) p++;
        if (p >= end) return REFUSE; /* unterminated */
        unsigned char c = *p;
        if (c == '"') break;
        if (c < 0x20) return REFUSE; /* JSON forbids raw control characters in strings */
        if (c >= 0x80) {
            size_t n = utf8_seq(p, end);
            if (n == 0) return REFUSE;
            p += n;
            continue;
        }
        /* a backslash */
        if (end - p < 2) return REFUSE;
        unsigned char e = p[1];
        unsigned char one = 0;
        unsigned int cp = 0;
        size_t take = 2;
        switch (e) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': {
                if (end - p < 6) return REFUSE;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(p[i]);
                    if (h < 0) return REFUSE;
                    cp = (cp << 4) | (unsigned int)h;
                }
                /* surrogates (paired or not) are left to the Python path, which knows what msgspec makes of them */
                if (cp >= 0xD800 && cp <= 0xDFFF) return REFUSE;
                take = 6;
                break;
            }
            default:
                return REFUSE;
        }
        if (out != NULL) {
            if (buf_put(&ps->arena, start, (size_t)(p - start)) != OK) return FAIL;
            unsigned char u[4];
            size_t un;
            if (e != 'u') {
                u[0] = one;
                un = 1;
            } else if (cp < 0x80) {
                u[0] = (unsigned char)cp;
                un = 1;
            } else if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                un = 2;
            } else {
                u[0] = (unsigned char)(0xE0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                un = 3;
            }
            if (buf_put(&ps->arena, u, un) != OK) return FAIL;
        }
        esc = 1;
        p += take;
        start = p;
    }
    /* p at the closing quote */
    if (out != NULL) {
        out->set = 1;
        if (esc) {
            if (buf_put(&ps->arena, start, (size_t)(p - start)) != OK) return FAIL;
            out->in_arena = 1;
            out->off = arena_start;
            out->len = ps->arena.len - arena_start;
        } else {
            out->in_arena = 0;
            out->off = (size_t)(start - ps->s);
            out->len = (size_t)(p - start);
        }
    }
    if (escaped != NULL) *escaped = esc;
    ps->p = p + 1;
    return OK;
}

/* The common string (printable ASCII, no escape) in line, 16 bytes at a time: most of a file's strings are keys and
 * short values, where the call and setup of scan_string cost more than the scan. Anything else (an escape, a
 * control character, a byte of UTF-8 to check, the last 15 bytes of the buffer) goes to scan_string, from the
 * string's start. */
static inline int scan_str(Parser *ps, Str *out, int *escaped) {
#if defined(__SSE2__)
    const unsigned char *start = ps->p + 1, *p = start, *end = ps->end;
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                   _mm_cmplt_epi8(v, space));
        int m = _mm_movemask_epi8(hit);
        if (m) {
            p += __builtin_ctz((unsigned)m);
            if (*p != '"') break;
            if (out != NULL) {
                out->set = 1;
                out->in_arena = 0;
                out->off = (size_t)(start - ps->s);
                out->len = (size_t)(p - start);
            }
            if (escaped != NULL) *escaped = 0;
            ps->p = p + 1;
            return OK;
        }
        p += 16;
    }
#endif
    return scan_string(ps, out, escaped);
}

static inline const unsigned char *str_ptr(const Parser *ps, const Str *s) {
    return s->in_arena ? (const unsigned char *)ps->arena.data + s->off : ps->s + s->off;
}

static int literal(Parser *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return REFUSE;
    ps->p += n;
    return OK;
}

static int scan_number(Parser *ps) {
    const unsigned char *p = ps->p, *end = ps->end;
    if (p < end && *p == '-') p++;
    if (p >= end) return REFUSE;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return REFUSE;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return REFUSE;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return REFUSE;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    ps->p = p;
    return OK;
}

static int skip_value(Parser *ps, int depth);

static int skip_object(Parser *ps, int depth) {
    if (depth > MAX_DEPTH) return REFUSE;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return OK;
    }
    for (;;) {
        int r;
        if (ps->p >= ps->end || *ps->p != '"') return REFUSE;
        if ((r = scan_str(ps, NULL, NULL)) != OK) return r;
        ws_unless(ps, ':', ':');
        if (ps->p >= ps->end || *ps->p != ':') return REFUSE;
        ps->p++;
        ws(ps);
        if ((r = skip_value(ps, depth + 1)) != OK) return r;
        ws_unless(ps, ',', '}');
        if (ps->p >= ps->end) return REFUSE;
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return OK;
        }
        return REFUSE;
    }
}

static int skip_array(Parser *ps, int depth) {
    if (depth > MAX_DEPTH) return REFUSE;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return OK;
    }
    for (;;) {
        int r;
        if ((r = skip_value(ps, depth + 1)) != OK) return r;
        ws_unless(ps, ',', ']');
        if (ps->p >= ps->end) return REFUSE;
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return OK;
        }
        return REFUSE;
    }
}

/* A value at ps->p (whitespace skipped). */
static int skip_value(Parser *ps, int depth) {
    if (ps->p >= ps->end) return REFUSE;
    switch (*ps->p) {
        case '"': return scan_str(ps, NULL, NULL);
        case '{': return skip_object(ps, depth);
        case '[': return skip_array(ps, depth);
        case 't': return literal(ps, "true", 4);
        case 'f': return literal(ps, "false", 5);
        case 'n': return literal(ps, "null", 4);
        default: return scan_number(ps);
    }
}

/* A kept field of type ``str | None``: a string or null, nothing else. */
static int kept_string(Parser *ps, Str *out) {
    if (ps->p >= ps->end) return REFUSE;
    if (*ps->p == '"') return scan_str(ps, out, NULL);
    if (*ps->p == 'n') {
        out->set = 0;
        return literal(ps, "null", 4);
    }
    return REFUSE;
}

/* Walks the members of an object at ps->p: for each key, calls field(ctx, key, keylen) which returns the index of
 * a kept field (< 64) or -1 to skip the value; a kept field given twice refuses. member(ctx, index) parses the
 * kept value. Keys of these objects must have no escapes (an escaped key could spell a kept name). */
typedef int (*member_fn)(Parser *ps, void *ctx, int index, int depth);
typedef int (*field_fn)(void *ctx, const unsigned char *key, size_t n);

static int walk_object(Parser *ps, int depth, void *ctx, field_fn field, member_fn member) {
    if (depth > MAX_DEPTH) return REFUSE;
    uint64_t seen = 0;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return OK;
    }
    for (;;) {
        int r, esc = 0;
        if (ps->p >= ps->end || *ps->p != '"') return REFUSE;
        const unsigned char *key = ps->p + 1;
        if ((r = scan_str(ps, NULL, &esc)) != OK) return r;
        if (esc) return REFUSE;
        size_t keylen = (size_t)(ps->p - 1 - key);
        ws_unless(ps, ':', ':');
        if (ps->p >= ps->end || *ps->p != ':') return REFUSE;
        ps->p++;
        ws(ps);
        int index = field(ctx, key, keylen);
        if (index >= 0) {
            uint64_t bit = (uint64_t)1 << index;
            if (seen & bit) return REFUSE; /* a kept key twice: msgspec keeps the last; not this path's business */
            seen |= bit;
            r = member(ps, ctx, index, depth + 1);
        } else {
            r = skip_value(ps, depth + 1);
        }
        if (r != OK) return r;
        ws_unless(ps, ',', '}');
        if (ps->p >= ps->end) return REFUSE;
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return OK;
        }
        return REFUSE;
    }
}

typedef struct {
    const char *s;
    size_t n;
} Name;
#define NAME(x) {x, sizeof(x) - 1}

static int name_index(const Name *names, int n, const unsigned char *key, size_t len) {
    for (int i = 0; i < n; i++) {
        if (names[i].n == len && memcmp(names[i].s, key, len) == 0) return i;
    }
    return -1;
}

/* ---------------------------------------------------------------- one record */

enum { R_ID, R_TIME, R_SOURCE, R_NAME, R_REGION, R_ERROR, R_ACCOUNT, R_STRINGS };
static const Name RECORD_NAMES[] = {NAME("eventID"), NAME("eventTime"), NAME("eventSource"), NAME("eventName"),
                                    NAME("awsRegion"), NAME("errorCode"), NAME("recipientAccountId"),
                                    NAME("userIdentity"), NAME("requestParameters"), NAME("resources")};
enum { R_IDENTITY = R_STRINGS, R_PARAMS, R_RESOURCES, R_FIELDS };

enum { U_TYPE, U_PRINCIPAL, U_ARN, U_ACCOUNT, U_INVOKED, U_STRINGS };
static const Name IDENTITY_NAMES[] = {NAME("type"), NAME("principalId"), NAME("arn"), NAME("accountId"),
                                      NAME("invokedBy"), NAME("sessionContext")};
enum { U_SESSION = U_STRINGS, U_FIELDS };
static const Name SESSION_NAMES[] = {NAME("sessionIssuer")};
static const Name ISSUER_NAMES[] = {NAME("arn"), NAME("userName")};
static const Name RESOURCE_NAMES[] = {NAME("ARN")};

typedef struct BytesSet BytesSet;
static uint64_t hash_bytes(const unsigned char *p, size_t n);
static inline void bset_prefetch(const BytesSet *b, uint64_t h);

typedef struct {
    Str f[R_STRINGS];
    uint64_t id_hash; /* of f[R_ID], when set */
    const BytesSet *ids;
    int ui_set;
    Str ui[U_STRINGS];
    int sc_set, si_set;
    Str si[2];
    int rp_set;
    Str rp[MAX_PARAMS];
    int res_set;
    size_t res_count;
    /* configuration */
    int n_params;
    const Name *param_names;
} Record;

static int record_field(void *ctx, const unsigned char *k, size_t n) {
    (void)ctx;
    return name_index(RECORD_NAMES, R_FIELDS, k, n);
}
static int identity_field(void *ctx, const unsigned char *k, size_t n) {
    (void)ctx;
    return name_index(IDENTITY_NAMES, U_FIELDS, k, n);
}
static int session_field(void *ctx, const unsigned char *k, size_t n) {
    (void)ctx;
    return name_index(SESSION_NAMES, 1, k, n);
}
static int issuer_field(void *ctx, const unsigned char *k, size_t n) {
    (void)ctx;
    return name_index(ISSUER_NAMES, 2, k, n);
}
static int resource_field(void *ctx, const unsigned char *k, size_t n) {
    (void)ctx;
    return name_index(RESOURCE_NAMES, 1, k, n);
}
static int params_field(void *ctx, const unsigned char *k, size_t n) {
    Record *rec = ctx;
    return name_index(rec->param_names, rec->n_params, k, n);
}

static int issuer_member(Parser *ps, void *ctx, int index, int depth) {
    (void)depth;
    return kept_string(ps, &((Record *)ctx)->si[index]);
}

static int session_member(Parser *ps, void *ctx, int index, int depth) {
    Record *rec = ctx;
    (void)index;
    if (ps->p >= ps->end) return REFUSE;
    if (*ps->p == 'n') {
        rec->si_set = 0;
        return literal(ps, "null", 4);
    }
    if (*ps->p != '{') return REFUSE;
    rec->si_set = 1;
    rec->si[0].set = rec->si[1].set = 0;
    return walk_object(ps, depth, ctx, issuer_field, issuer_member);
}

static int identity_member(Parser *ps, void *ctx, int index, int depth) {
    Record *rec = ctx;
    if (index < U_STRINGS) return kept_string(ps, &rec->ui[index]);
    if (ps->p >= ps->end) return REFUSE;
    if (*ps->p == 'n') {
        rec->sc_set = 0;
        rec->si_set = 0;
        return literal(ps, "null", 4);
    }
    if (*ps->p != '{') return REFUSE;
    rec->sc_set = 1;
    rec->si_set = 0;
    return walk_object(ps, depth, ctx, session_field, session_member);
}

static int params_member(Parser *ps, void *ctx, int index, int depth) {
    (void)depth;
    return kept_string(ps, &((Record *)ctx)->rp[index]);
}

static int resource_member(Parser *ps, void *ctx, int index, int depth) {
    (void)ctx;
    (void)index;
    (void)depth;
    /* the ARN of the resource being walked: the last Str of ps->strs */
    Str *s = (Str *)(ps->strs.data + ps->strs.len - sizeof(Str));
    return kept_string(ps, s);
}

static int resources_value(Parser *ps, Record *rec, int depth) {
    if (depth > MAX_DEPTH) return REFUSE;
    ps->p++;
    ws(ps);
    rec->res_count = 0;
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return OK;
    }
    for (;;) {
        int r;
        /* each element is a _Resource: an object (null or anything else would fail msgspec's tuple[_Resource, ...]) */
        if (ps->p >= ps->end || *ps->p != '{') return REFUSE;
        Str empty = {0, 0, 0, 0};
        if (buf_put(&ps->strs, &empty, sizeof empty) != OK) return FAIL;
        rec->res_count++;
        if ((r = walk_object(ps, depth + 1, rec, resource_field, resource_member)) != OK) return r;
        ws(ps);
        if (ps->p >= ps->end) return REFUSE;
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return OK;
        }
        return REFUSE;
    }
}

static int record_member(Parser *ps, void *ctx, int index, int depth) {
    Record *rec = ctx;
    if (index == R_ID) {
        int r = kept_string(ps, &rec->f[R_ID]);
        if (r == OK && rec->f[R_ID].set) {
            rec->id_hash = hash_bytes(str_ptr(ps, &rec->f[R_ID]), rec->f[R_ID].len);
            bset_prefetch(rec->ids, rec->id_hash);
        }
        return r;
    }
    if (index < R_STRINGS) return kept_string(ps, &rec->f[index]);
    if (ps->p >= ps->end) return REFUSE;
    int null = *ps->p == 'n';
    if (index == R_IDENTITY) {
        memset(rec->ui, 0, sizeof rec->ui);
        rec->sc_set = rec->si_set = 0;
        if (null) {
            rec->ui_set = 0;
            return literal(ps, "null", 4);
        }
        if (*ps->p != '{') return REFUSE;
        rec->ui_set = 1;
        return walk_object(ps, depth, ctx, identity_field, identity_member);
    }
    if (index == R_PARAMS) {
        memset(rec->rp, 0, sizeof(Str) * (size_t)rec->n_params);
        if (null) {
            rec->rp_set = 0;
            return literal(ps, "null", 4);
        }
        if (*ps->p != '{') return REFUSE;
        rec->rp_set = 1;
        return walk_object(ps, depth, ctx, params_field, params_member);
    }
    /* R_RESOURCES */
    ps->strs.len = 0;
    if (null) {
        rec->res_set = 0;
        return literal(ps, "null", 4);
    }
    if (*ps->p != '[') return REFUSE;
    rec->res_set = 1;
    return resources_value(ps, rec, depth);
}

/* ---------------------------------------------------------------- the key and the table of groups */

/* v as LEB128 (7 bits a byte, low first, the high bit set on all but the last): keys are hashed and compared
 * whole, and most of their lengths fit one byte where a fixed 8 took a third of a key. */
static inline int key_varint(Buf *k, uint64_t v) {
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n++] = (unsigned char)((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return buf_put(k, b, n);
}

/* A kept string: 0 when unset, else its length + 1, then its bytes. */
static inline int key_str(Buf *k, const Parser *ps, const Str *s) {
    if (!s->set) return buf_put(k, "\0", 1);
    if (key_varint(k, (uint64_t)s->len + 1) != OK) return FAIL;
    return buf_put(k, str_ptr(ps, s), s->len);
}

/* The group key as bytes: the parts of ingest.py's key (eventSource, eventName, awsRegion, errorCode,
 * recipientAccountId, who, requestParameters, resources), each string as 0 (absent) or its length + 1
 * (``key_varint``) and its bytes, so two keys are equal exactly when the Python keys are. ``who`` keeps principalId only when arn is absent (``_who``). */
static int make_key_bytes(Buf *k, const Parser *ps, const Record *rec) {
    k->len = 0;
    for (int i = R_SOURCE; i <= R_ACCOUNT; i++)
        if (key_str(k, ps, &rec->f[i]) != OK) return FAIL;
    if (!rec->ui_set) {
        if (buf_put(k, "\0", 1) != OK) return FAIL;
    } else {
        int whole = !rec->ui[U_ARN].set;
        if (buf_put(k, whole ? "\2" : "\3", 1) != OK) return FAIL;
        for (int i = 0; i < U_STRINGS; i++) {
            if (i == U_PRINCIPAL && !whole) continue;
            if (key_str(k, ps, &rec->ui[i]) != OK) return FAIL;
        }
        if (!rec->sc_set) {
            if (buf_put(k, "\0", 1) != OK) return FAIL;
        } else if (!rec->si_set) {
            if (buf_put(k, "\1\0", 2) != OK) return FAIL;
        } else {
            if (buf_put(k, "\1\1", 2) != OK) return FAIL;
            if (key_str(k, ps, &rec->si[0]) != OK || key_str(k, ps, &rec->si[1]) != OK) return FAIL;
        }
    }
    if (!rec->rp_set) {
        if (buf_put(k, "\0", 1) != OK) return FAIL;
    } else {
        if (buf_put(k, "\1", 1) != OK) return FAIL;
        for (int i = 0; i < rec->n_params; i++)
            if (key_str(k, ps, &rec->rp[i]) != OK) return FAIL;
    }
    if (!rec->res_set) {
        if (buf_put(k, "\0", 1) != OK) return FAIL;
    } else {
        if (buf_put(k, "\1", 1) != OK || key_varint(k, rec->res_count) != OK) return FAIL;
        const Str *arns = (const Str *)ps->strs.data;
        for (size_t i = 0; i < rec->res_count; i++)
            if (key_str(k, ps, &arns[i]) != OK) return FAIL;
    }
    return OK;
}

/* ---------------------------------------------------------------- hashing */

/* SipHash-1-3 (Aumasson and Bernstein, https://www.aumasson.jp/siphash/siphash.pdf; the variant CPython hashes str
 * and bytes with, PEP 456), keyed with 128 random bits drawn once per process (os.urandom, when the module is
 * imported). The group key holds attacker-chosen request parameters and the ID table attacker-chosen eventIDs: with
 * an unkeyed hash (this module's first one), keys that collide could be built offline, and every lookup of one walks
 * all the others. Without the key they cannot be aimed at one bucket; MAX_PROBES still bounds a probe. */
static uint64_t sip_k0, sip_k1;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                  \
    do {                                                                                                          \
        v0 += v1;                                                                                                 \
        v1 = ROTL(v1, 13);                                                                                        \
        v1 ^= v0;                                                                                                 \
        v0 = ROTL(v0, 32);                                                                                        \
        v2 += v3;                                                                                                 \
        v3 = ROTL(v3, 16);                                                                                        \
        v3 ^= v2;                                                                                                 \
        v0 += v3;                                                                                                 \
        v3 = ROTL(v3, 21);                                                                                        \
        v3 ^= v0;                                                                                                 \
        v2 += v1;                                                                                                 \
        v1 = ROTL(v1, 17);                                                                                        \
        v1 ^= v2;                                                                                                 \
        v2 = ROTL(v2, 32);                                                                                        \
    } while (0)

static inline uint64_t load_le64(const unsigned char *p) {
    uint64_t m;
    memcpy(&m, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    m = __builtin_bswap64(m);
#endif
    return m;
}

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t v0 = sip_k0 ^ 0x736f6d6570736575ULL, v1 = sip_k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = sip_k0 ^ 0x6c7967656e657261ULL, v3 = sip_k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)n << 56;
    while (n >= 8) {
        uint64_t m = load_le64(p);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
        p += 8;
        n -= 8;
    }
    for (size_t i = 0; i < n; i++) b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---------------------------------------------------------------- sets of byte strings */

/* A set of byte strings (a batch's eventIDs, or one file's distinct eventTimes); entries keep their bytes in one
 * buffer and are numbered in the order added, for the whole batch. The hash table holds the entries from ``base``
 * on: ``bset_forget`` empties it of them (a file's times: the work is what the file added, not the table's size),
 * ``bset_pop_to`` takes the last entries out altogether (a refused file's IDs). A table slot is 0 when empty, else
 * the entry's number + 1 in its low 32 bits and the top of its hash in the high ones, so a probe compares the hash
 * without reading the entry (the ID table is megabytes: each entry read is a cache miss). */
struct BytesSet {
    Buf bytes;
    size_t *off, *len;
    uint64_t *hash;
    PyObject **obj;      /* the entry as a str, made when first needed (owned) */
    unsigned char *flag; /* eventTimes: good_time's verdict */
    size_t n, cap, base;
    uint64_t *table; /* a power of two long */
    size_t table_cap;
};

#define MAX_ENTRIES ((size_t)UINT32_MAX - 1)
#define SLOT_OF(e, h) ((((h) >> 32) << 32) | (uint64_t)((e) + 1))
#define ENTRY_OF(v) ((size_t)((v) & 0xFFFFFFFFu) - 1)

static void bset_free(BytesSet *b) {
    buf_free(&b->bytes);
    if (b->obj != NULL)
        for (size_t e = 0; e < b->n; e++) Py_XDECREF(b->obj[e]);
    PyMem_Free(b->off);
    PyMem_Free(b->len);
    PyMem_Free(b->hash);
    PyMem_Free(b->obj);
    PyMem_Free(b->flag);
    PyMem_Free(b->table);
    memset(b, 0, sizeof *b);
}

static int bset_grow_table(BytesSet *b) {
    size_t cap = b->table_cap ? b->table_cap * 2 : 1024;
    if (cap > SIZE_MAX / sizeof(uint64_t) / 2) {
        PyErr_NoMemory();
        return FAIL;
    }
    uint64_t *t = PyMem_Calloc(cap, sizeof(uint64_t));
    if (t == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    /* in the order added: the table is then what adding them one by one would have made, which bset_pop_to needs */
    for (size_t e = b->base; e < b->n; e++) {
        size_t i = (size_t)b->hash[e] & (cap - 1);
        while (t[i] != 0) i = (i + 1) & (cap - 1);
        t[i] = SLOT_OF(e, b->hash[e]);
    }
    PyMem_Free(b->table);
    b->table = t;
    b->table_cap = cap;
    return OK;
}

/* The entry of these bytes (h: their hash_bytes), added when new (*added says so); SIZE_MAX on a memory error,
 * TOO_LONG (nothing added) when the probe sequence reaches MAX_PROBES. */
static size_t bset_add_h(BytesSet *b, const unsigned char *p, size_t n, uint64_t h, int *added) {
    if (b->table_cap == 0 || (b->n - b->base + 1) * 2 > b->table_cap) {
        if (bset_grow_table(b) != OK) return SIZE_MAX;
    }
    uint64_t tag = (h >> 32) << 32;
    size_t mask = b->table_cap - 1, i = (size_t)h & mask;
    for (size_t probes = 0;; probes++) {
        uint64_t v = b->table[i];
        if (v == 0) break;
        if ((v & ~(uint64_t)0xFFFFFFFFu) == tag) {
            size_t e = ENTRY_OF(v);
            if (b->hash[e] == h && b->len[e] == n && (n == 0 || memcmp(b->bytes.data + b->off[e], p, n) == 0)) {
                *added = 0;
                return e;
            }
        }
        if (probes >= MAX_PROBES) return TOO_LONG;
        i = (i + 1) & mask;
    }
    if (b->n >= MAX_ENTRIES) {
        PyErr_NoMemory(); /* 4 billion events in one batch */
        return SIZE_MAX;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        if (cap > SIZE_MAX / sizeof(uint64_t)) {
            PyErr_NoMemory();
            return SIZE_MAX;
        }
        size_t *off = PyMem_Realloc(b->off, cap * sizeof(size_t));
        if (off) b->off = off;
        size_t *len = PyMem_Realloc(b->len, cap * sizeof(size_t));
        if (len) b->len = len;
        uint64_t *hash = PyMem_Realloc(b->hash, cap * sizeof(uint64_t));
        if (hash) b->hash = hash;
        PyObject **obj = PyMem_Realloc(b->obj, cap * sizeof(PyObject *));
        if (obj) b->obj = obj;
        unsigned char *flag = PyMem_Realloc(b->flag, cap);
        if (flag) b->flag = flag;
        if (!off || !len || !hash || !obj || !flag) {
            PyErr_NoMemory();
            return SIZE_MAX;
        }
        b->cap = cap;
    }
    size_t e = b->n;
    b->off[e] = b->bytes.len;
    if (buf_put(&b->bytes, p, n) != OK) return SIZE_MAX;
    b->len[e] = n;
    b->hash[e] = h;
    b->obj[e] = NULL;
    b->flag[e] = 0;
    b->n++;
    b->table[i] = SLOT_OF(e, h);
    *added = 1;
    return e;
}

static inline size_t bset_add(BytesSet *b, const unsigned char *p, size_t n, int *added) {
    return bset_add_h(b, p, n, hash_bytes(p, n), added);
}

/* The batch's ID table is megabytes, so the slot of a new ID is a cache miss: asked for as soon as the eventID is
 * scanned, it is there by the end of the record (eventID comes before most of a record's fields). */
static inline void bset_prefetch(const BytesSet *b, uint64_t h) {
#if defined(__GNUC__) || defined(__clang__)
    if (b->table_cap) __builtin_prefetch(&b->table[(size_t)h & (b->table_cap - 1)]);
#else
    (void)b;
    (void)h;
#endif
}

/* Empties the table slot of entry e (in the table: base <= e < n). */
static void bset_unslot(BytesSet *b, size_t e) {
    size_t mask = b->table_cap - 1, i = (size_t)b->hash[e] & mask;
    uint64_t v = SLOT_OF(e, b->hash[e]);
    for (size_t k = 0; k < b->table_cap && b->table[i] != v; k++) i = (i + 1) & mask;
    if (b->table[i] == v) b->table[i] = 0;
}

/* Takes out the entries added last, down to n0 entries (n0 >= base): each empties the one slot it filled (with
 * linear probing and nothing removed otherwise, the table is then exactly what it was with n0 entries). */
static void bset_pop_to(BytesSet *b, size_t n0) {
    if (n0 >= b->n || n0 < b->base) return;
    for (size_t e = b->n; e-- > n0;) {
        bset_unslot(b, e);
        Py_CLEAR(b->obj[e]);
    }
    b->bytes.len = b->off[n0];
    b->n = n0;
}

/* Empties the table of its entries (they stay, numbered as before, for what refers to them): a file's times. */
static void bset_forget(BytesSet *b) {
    for (size_t e = b->base; e < b->n; e++) bset_unslot(b, e);
    b->base = b->n;
}

/* A kept string as Python: str (its bytes are valid UTF-8: checked while scanning). */
static PyObject *py_str(const unsigned char *p, size_t n) {
    uint64_t high = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* eight bytes at a time: any byte >= 0x80 */
        uint64_t w;
        memcpy(&w, p + i, 8);
        high |= w;
    }
    for (; i < n; i++) high |= p[i];
    if (high & 0x8080808080808080ULL) return PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "strict");
    PyObject *u = PyUnicode_New((Py_ssize_t)n, 127);
    if (u == NULL) return NULL;
    if (n) memcpy(PyUnicode_DATA(u), p, n);
    return u;
}

/* An entry as a str, made once (borrowed: the set holds it). */
static PyObject *bset_str(BytesSet *b, size_t e) {
    if (b->obj[e] == NULL) b->obj[e] = py_str((const unsigned char *)b->bytes.data + b->off[e], b->len[e]);
    return b->obj[e];
}

/* ---------------------------------------------------------------- the batch */

typedef struct {
    uint64_t hash;
    char *key;
    size_t keylen;
    PyObject *group; /* the reader's [first, last, count] list, once known */
    /* per commit: the file's count and its first and last time (entries of ``times``) */
    uint64_t epoch;
    size_t count, first, last;
} Slot;

/* Everything a batch has counted on this path stays here, not in Python objects per event (a dict insert, an ID and
 * a time str per event were a third of the reader's time): per event its group (slot), its time and its ID (entries
 * of ``times`` and ``ids``; no ID: SIZE_MAX). The reader asks for the IDs once per batch (``ids``), and for
 * everything (``export``) only when it must take events back or read a file the Python way. */
typedef struct {
    PyObject_HEAD
    Slot *slots;
    size_t n_slots, cap_slots;
    size_t *table; /* indices into slots, SIZE_MAX when empty; a power of two long */
    size_t table_cap;
    uint64_t epoch;
    size_t *ev_slot, *ev_time, *ev_id;
    size_t n_ev, cap_ev;
    BytesSet ids;   /* the eventIDs counted, in the order counted */
    BytesSet strs;  /* the strings of the Python keys made (``cached_str``) */
    BytesSet times; /* the distinct eventTimes of each file, each checked once (the table: the last file's) */
    Buf keybuf;
    int n_params;
    Name *param_names;
    PyObject *make_key;
    /* a call is running. read keeps pointers into the tables across calls that can run Python code (make_key, a
     * dict's comparison, a finalizer run by the cyclic collector, and with them another thread): another call from
     * there would move or rewrite those tables under it. */
    int busy;
} Grouper;

static int table_grow(Grouper *g) {
    size_t cap = g->table_cap ? g->table_cap * 2 : 1024;
    if (cap > SIZE_MAX / sizeof(size_t) / 2) {
        PyErr_NoMemory();
        return FAIL;
    }
    size_t *t = PyMem_Malloc(cap * sizeof(size_t));
    if (t == NULL) {
        PyErr_NoMemory();
        return FAIL;
    }
    for (size_t i = 0; i < cap; i++) t[i] = SIZE_MAX;
    for (size_t s = 0; s < g->n_slots; s++) {
        size_t i = (size_t)g->slots[s].hash & (cap - 1);
        while (t[i] != SIZE_MAX) i = (i + 1) & (cap - 1);
        t[i] = s;
    }
    PyMem_Free(g->table);
    g->table = t;
    g->table_cap = cap;
    return OK;
}

/* The slot of a key (a new one when unseen); SIZE_MAX on a memory error, TOO_LONG (nothing added) when the probe
 * sequence reaches MAX_PROBES. A slot added by a file that is then refused stays, without a group: a key seen. */
static size_t slot_of(Grouper *g, const char *key, size_t len) {
    uint64_t h = hash_bytes((const unsigned char *)key, len);
    if (g->table_cap == 0 || (g->n_slots + 1) * 2 > g->table_cap) {
        if (table_grow(g) != OK) return SIZE_MAX;
    }
    size_t i = (size_t)h & (g->table_cap - 1);
    for (size_t probes = 0;; probes++) {
        size_t s = g->table[i];
        if (s == SIZE_MAX) break;
        Slot *sl = &g->slots[s];
        if (sl->hash == h && sl->keylen == len && (len == 0 || memcmp(sl->key, key, len) == 0)) return s;
        if (probes >= MAX_PROBES) return TOO_LONG;
        i = (i + 1) & (g->table_cap - 1);
    }
    if (g->n_slots == g->cap_slots) {
        size_t cap = g->cap_slots ? g->cap_slots * 2 : 256;
        if (cap > SIZE_MAX / sizeof(Slot)) {
            PyErr_NoMemory();
            return SIZE_MAX;
        }
        Slot *ns = PyMem_Realloc(g->slots, cap * sizeof(Slot));
        if (ns == NULL) {
            PyErr_NoMemory();
            return SIZE_MAX;
        }
        g->slots = ns;
        g->cap_slots = cap;
    }
    char *copy = PyMem_Malloc(len ? len : 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return SIZE_MAX;
    }
    if (len) memcpy(copy, key, len);
    size_t s = g->n_slots++;
    g->slots[s] = (Slot){.hash = h, .key = copy, .keylen = len, .group = NULL, .epoch = 0};
    g->table[i] = s;
    return s;
}

static int push_event(Grouper *g, size_t s, size_t t, size_t id) {
    if (g->n_ev == g->cap_ev) {
        size_t cap = g->cap_ev ? g->cap_ev * 2 : 4096;
        if (cap > SIZE_MAX / sizeof(size_t)) {
            PyErr_NoMemory();
            return FAIL;
        }
        size_t *a = PyMem_Realloc(g->ev_slot, cap * sizeof(size_t));
        if (a) g->ev_slot = a;
        size_t *b = PyMem_Realloc(g->ev_time, cap * sizeof(size_t));
        if (b) g->ev_time = b;
        size_t *c = PyMem_Realloc(g->ev_id, cap * sizeof(size_t));
        if (c) g->ev_id = c;
        if (a == NULL || b == NULL || c == NULL) {
            PyErr_NoMemory();
            return FAIL;
        }
        g->cap_ev = cap;
    }
    g->ev_slot[g->n_ev] = s;
    g->ev_time[g->n_ev] = t;
    g->ev_id[g->n_ev] = id;
    g->n_ev++;
    return OK;
}

/* ---------------------------------------------------------------- the file */

static inline int digits(const unsigned char *p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* ingest.py's ``event_time_problem`` is None: ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (ASCII digits, a clock's ranges, one
 * to six digits of fraction) on a day that exists (years 1 to 9999, as ``date.fromisoformat``). tests/usage compares
 * the two on generated times. */
static int good_time(const unsigned char *p, size_t n) {
    if (n < 20 || n > 27 || n == 21) return 0;
    int y = digits(p, 4), mo = digits(p + 5, 2), d = digits(p + 8, 2);
    int h = digits(p + 11, 2), mi = digits(p + 14, 2), s = digits(p + 17, 2);
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[n - 1] != 'Z') return 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59) return 0;
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > days[mo - 1] + (mo == 2 && leap)) return 0;
    if (n > 20) {
        if (p[19] != '.' || digits(p + 20, (int)n - 21) < 0) return 0;
    }
    return 1;
}

typedef struct {
    size_t records, duplicates, no_time, bad_time;
} Counts;

/* One record, as CloudTrailReader._add_record takes it: without an eventTime (absent or null), or with one that is
 * not a UTC timestamp, it is skipped and counted; then an eventID counted before (by this path, in ``events`` of
 * the Python path, or earlier in the same file) makes it a duplicate; a record without an eventID is counted (it
 * cannot be deduplicated). */
static int take_record(Grouper *g, const Parser *ps, const Record *rec, PyObject *events, Counts *cnt) {
    const Str *t = &rec->f[R_TIME], *id = &rec->f[R_ID];
    int added;
    if (!t->set) {
        cnt->no_time++;
        return OK;
    }
    size_t te = bset_add(&g->times, str_ptr(ps, t), t->len, &added);
    if (te == SIZE_MAX) return FAIL;
    if (te == TOO_LONG) return REFUSE;
    if (added) g->times.flag[te] = (unsigned char)good_time(str_ptr(ps, t), t->len);
    if (!g->times.flag[te]) {
        cnt->bad_time++;
        return OK;
    }
    size_t ie = SIZE_MAX;
    if (id->set) {
        ie = bset_add_h(&g->ids, str_ptr(ps, id), id->len, rec->id_hash, &added);
        if (ie == SIZE_MAX) return FAIL;
        if (ie == TOO_LONG) return REFUSE;
        if (!added) {
            cnt->duplicates++;
            return OK;
        }
        if (PyDict_GET_SIZE(events) > 0) {
            PyObject *s = py_str(str_ptr(ps, id), id->len);
            if (s == NULL) return FAIL;
            int c = PyDict_Contains(events, s);
            Py_DECREF(s);
            if (c != 0) {
                bset_pop_to(&g->ids, ie);
                if (c < 0) return FAIL;
                cnt->duplicates++;
                return OK;
            }
        }
    }
    if (make_key_bytes(&g->keybuf, ps, rec) != OK) return FAIL;
    size_t s = slot_of(g, g->keybuf.data, g->keybuf.len);
    if (s == SIZE_MAX) return FAIL;
    if (s == TOO_LONG) return REFUSE;
    return push_event(g, s, te, ie);
}

static int parse_records(Grouper *g, Parser *ps, Record *rec, PyObject *events, Counts *cnt) {
    int r;
    ws(ps);
    if (ps->p >= ps->end || *ps->p != '{') return REFUSE;
    /* The top level: {"Records": [...]} with any other members skipped; Records must be an array (null, or no
     * Records, is the Python path's error to report). */
    int seen_records = 0;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == '}') return REFUSE;
    for (;;) {
        int esc = 0;
        if (ps->p >= ps->end || *ps->p != '"') return REFUSE;
        const unsigned char *key = ps->p + 1;
        if ((r = scan_str(ps, NULL, &esc)) != OK) return r;
        if (esc) return REFUSE;
        size_t keylen = (size_t)(ps->p - 1 - key);
        ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') return REFUSE;
        ps->p++;
        ws(ps);
        if (keylen == 7 && memcmp(key, "Records", 7) == 0) {
            if (seen_records) return REFUSE;
            seen_records = 1;
            if (ps->p >= ps->end || *ps->p != '[') return REFUSE;
            ps->p++;
            ws(ps);
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
            } else {
                for (;;) {
                    if (ps->p >= ps->end || *ps->p != '{') return REFUSE; /* every record an object */
                    ps->arena.len = 0;
                    ps->strs.len = 0;
                    memset(rec->f, 0, sizeof rec->f);
                    memset(rec->ui, 0, sizeof rec->ui);
                    rec->ui_set = rec->sc_set = rec->si_set = rec->rp_set = rec->res_set = 0;
                    rec->res_count = 0;
                    if ((r = walk_object(ps, 2, rec, record_field, record_member)) != OK) return r;
                    cnt->records++;
                    if ((r = take_record(g, ps, rec, events, cnt)) != OK) return r;
                    ws(ps);
                    if (ps->p >= ps->end) return REFUSE;
                    if (*ps->p == ',') {
                        ps->p++;
                        ws(ps);
                        continue;
                    }
                    if (*ps->p == ']') {
                        ps->p++;
                        break;
                    }
                    return REFUSE;
                }
            }
        } else if ((r = skip_value(ps, 2)) != OK) {
            return r;
        }
        ws(ps);
        if (ps->p >= ps->end) return REFUSE;
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            break;
        }
        return REFUSE;
    }
    ws(ps);
    if (ps->p != ps->end) return REFUSE; /* trailing bytes */
    return seen_records ? OK : REFUSE;
}

/* ---------------------------------------------------------------- a new group's Python key */

/* A key's string as one str per distinct value in the batch: the keys of a batch repeat their values (the same
 * eventSource, account, role ARN in thousands of keys), and one object each saves their memory and lets Python's
 * cached str hash serve every later lookup of them (the staging's caches per value). */
static PyObject *cached_str(Grouper *g, const unsigned char *p, size_t n) {
    int added;
    size_t e = bset_add(&g->strs, p, n, &added);
    if (e == SIZE_MAX) return NULL;
    if (e == TOO_LONG) return py_str(p, n); /* a long probe: a str of its own, never a refusal here */
    PyObject *s = bset_str(&g->strs, e);
    return s == NULL ? NULL : Py_NewRef(s);
}

typedef struct {
    const unsigned char *p, *end;
    Grouper *g;
} Reader;

/* key_varint's number back; -1 (SystemError) when the key ends first or the number runs past 64 bits. */
static int read_varint(Reader *rd, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (rd->p >= rd->end) break;
        unsigned char c = *rd->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    PyErr_SetString(PyExc_SystemError, "_fastct: corrupt key");
    return -1;
}

static PyObject *read_str(Reader *rd) {
    uint64_t n;
    if (read_varint(rd, &n) < 0) return NULL;
    if (n-- == 0) Py_RETURN_NONE;
    if ((uint64_t)(rd->end - rd->p) < n) goto bad;
    PyObject *s = cached_str(rd->g, rd->p, (size_t)n);
    rd->p += n;
    return s;
bad:
    PyErr_SetString(PyExc_SystemError, "_fastct: corrupt key");
    return NULL;
}

static int read_byte(Reader *rd) {
    if (rd->p >= rd->end) {
        PyErr_SetString(PyExc_SystemError, "_fastct: corrupt key");
        return -1;
    }
    return *rd->p++;
}

static PyObject *read_tuple_of_str(Reader *rd, size_t n) {
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    if (t == NULL) return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *s = read_str(rd);
        if (s == NULL) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, s);
    }
    return t;
}

static PyObject *key_args(Grouper *g, const Slot *sl) {
    Reader rd = {(const unsigned char *)sl->key, (const unsigned char *)sl->key + sl->keylen, g};
    PyObject *a[10] = {NULL};
    PyObject *out = NULL;
    int b;
    for (int i = 0; i < 5; i++)
        if ((a[i] = read_str(&rd)) == NULL) goto done;
    if ((b = read_byte(&rd)) < 0) goto done;
    if (b == 0) {
        a[5] = Py_NewRef(Py_None);
        a[6] = Py_NewRef(Py_False);
        a[7] = Py_NewRef(Py_None);
    } else {
        PyObject *u[5] = {NULL};
        for (int i = 0; i < 5; i++) {
            if (i == U_PRINCIPAL && b == 3) {
                u[i] = Py_NewRef(Py_None);
            } else if ((u[i] = read_str(&rd)) == NULL) {
                for (int j = 0; j < i; j++) Py_DECREF(u[j]);
                goto done;
            }
        }
        a[5] = PyTuple_Pack(5, u[0], u[1], u[2], u[3], u[4]);
        for (int j = 0; j < 5; j++) Py_DECREF(u[j]);
        if (a[5] == NULL) goto done;
        int sc = read_byte(&rd);
        if (sc < 0) goto done;
        a[6] = Py_NewRef(sc ? Py_True : Py_False);
        if (!sc) {
            a[7] = Py_NewRef(Py_None);
        } else {
            int si = read_byte(&rd);
            if (si < 0) goto done;
            if ((a[7] = si ? read_tuple_of_str(&rd, 2) : Py_NewRef(Py_None)) == NULL) goto done;
        }
    }
    if ((b = read_byte(&rd)) < 0) goto done;
    if ((a[8] = b ? read_tuple_of_str(&rd, (size_t)g->n_params) : Py_NewRef(Py_None)) == NULL) goto done;
    if ((b = read_byte(&rd)) < 0) goto done;
    if (!b) {
        a[9] = Py_NewRef(Py_None);
    } else {
        uint64_t n;
        if (read_varint(&rd, &n) < 0) goto done;
        if (n > (uint64_t)(rd.end - rd.p)) { /* each ARN takes at least a byte */
            PyErr_SetString(PyExc_SystemError, "_fastct: corrupt key");
            goto done;
        }
        if ((a[9] = read_tuple_of_str(&rd, (size_t)n)) == NULL) goto done;
    }
    out = PyObject_Vectorcall(g->make_key, a, 10, NULL);
done:
    for (int i = 0; i < 10; i++) Py_XDECREF(a[i]);
    return out;
}

static int utf8_of(PyObject *s, const char **p, Py_ssize_t *n) {
    *p = PyUnicode_AsUTF8AndSize(s, n);
    return *p == NULL ? FAIL : OK;
}

/* -1, 0, 1 as Python's comparison of two str (UTF-8 byte order is code point order). */
static int cmp_str(PyObject *a, PyObject *b, int *out) {
    const char *pa, *pb;
    Py_ssize_t na, nb;
    if (utf8_of(a, &pa, &na) != OK || utf8_of(b, &pb, &nb) != OK) return FAIL;
    int c = memcmp(pa, pb, (size_t)(na < nb ? na : nb));
    *out = c != 0 ? (c < 0 ? -1 : 1) : (na < nb ? -1 : na > nb ? 1 : 0);
    return OK;
}

/* Two eventTimes (entries of ``times``) compared as Python compares the str (UTF-8 byte order is code point order). */
static inline int time_cmp(const BytesSet *b, size_t x, size_t y) {
    size_t nx = b->len[x], ny = b->len[y], n = nx < ny ? nx : ny;
    int c = n ? memcmp(b->bytes.data + b->off[x], b->bytes.data + b->off[y], n) : 0;
    return c != 0 ? c : (nx < ny ? -1 : nx > ny ? 1 : 0);
}

/* What a commit will do to one group: made first (all that can fail, and all Python code that runs), applied after
 * (nothing fails there), so a commit that fails part-way leaves the reader's groups as they were. */
typedef struct {
    PyObject *key;   /* a new group's key (owned), else NULL */
    PyObject *group; /* the group (owned): a new [first, last, count] list, or one the reader has */
    PyObject *count; /* an existing group's new count (owned) */
    int first, last; /* an existing group's first / last time to replace */
} Change;

static void changes_free(Change *ch, size_t n) {
    for (size_t j = 0; j < n; j++) {
        Py_XDECREF(ch[j].key);
        Py_XDECREF(ch[j].group);
        Py_XDECREF(ch[j].count);
    }
    PyMem_Free(ch);
}

/* Counts the events from ev0 on (the file just parsed) into ``groups``: each group's count and first and last time
 * in the file, added in the order of each group's first event (the order the Python path adds them). */
static int commit(Grouper *g, PyObject *groups, size_t ev0) {
    size_t n = g->n_ev - ev0, n_touched = 0;
    uint64_t epoch = ++g->epoch;
    size_t *touched = PyMem_Malloc((n ? n : 1) * sizeof(size_t));
    Change *ch = PyMem_Calloc(n ? n : 1, sizeof(Change));
    size_t n_inserted = 0;
    int result = FAIL;
    if (touched == NULL || ch == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = ev0; i < g->n_ev; i++) {
        Slot *sl = &g->slots[g->ev_slot[i]];
        size_t t = g->ev_time[i];
        if (sl->epoch != epoch) {
            sl->epoch = epoch;
            sl->count = 1;
            sl->first = sl->last = t;
            touched[n_touched++] = g->ev_slot[i];
            continue;
        }
        sl->count++;
        if (time_cmp(&g->times, t, sl->first) < 0) sl->first = t;
        if (time_cmp(&g->times, t, sl->last) > 0) sl->last = t;
    }
    /* 1. every Python call: the times as str, the keys of groups this table has not met, their lookups */
    for (size_t j = 0; j < n_touched; j++) {
        Slot *sl = &g->slots[touched[j]];
        if (bset_str(&g->times, sl->first) == NULL || bset_str(&g->times, sl->last) == NULL) goto done;
        if (sl->group != NULL) {
            ch[j].group = Py_NewRef(sl->group);
            continue;
        }
        PyObject *key = key_args(g, sl); /* runs make_key */
        if (key == NULL) goto done;
        sl = &g->slots[touched[j]];
        PyObject *grp = PyDict_GetItemWithError(groups, key);
        if (grp != NULL) {
            ch[j].group = Py_NewRef(grp);
            Py_DECREF(key);
            continue;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            goto done;
        }
        ch[j].key = key;
        PyObject *count = PyLong_FromSize_t(sl->count);
        if (count == NULL || (ch[j].group = PyList_New(3)) == NULL) {
            Py_XDECREF(count);
            goto done;
        }
        PyList_SET_ITEM(ch[j].group, 0, Py_NewRef(g->times.obj[sl->first]));
        PyList_SET_ITEM(ch[j].group, 1, Py_NewRef(g->times.obj[sl->last]));
        PyList_SET_ITEM(ch[j].group, 2, count);
    }
    /* 2. the existing groups' new counts and spans (no Python code runs: exact lists, str and int only) */
    for (size_t j = 0; j < n_touched; j++) {
        if (ch[j].key != NULL) continue;
        Slot *sl = &g->slots[touched[j]];
        PyObject *grp = ch[j].group;
        if (!PyList_CheckExact(grp) || PyList_GET_SIZE(grp) != 3 || !PyUnicode_CheckExact(PyList_GET_ITEM(grp, 0)) ||
            !PyUnicode_CheckExact(PyList_GET_ITEM(grp, 1)) || !PyLong_CheckExact(PyList_GET_ITEM(grp, 2))) {
            PyErr_SetString(PyExc_TypeError, "Grouper: a group is not a [first, last, count] list");
            goto done;
        }
        PyObject *add = PyLong_FromSize_t(sl->count);
        if (add == NULL) goto done;
        ch[j].count = PyNumber_Add(PyList_GET_ITEM(grp, 2), add);
        Py_DECREF(add);
        if (ch[j].count == NULL) goto done;
        int c;
        if (cmp_str(g->times.obj[sl->first], PyList_GET_ITEM(grp, 0), &c) != OK) goto done;
        ch[j].first = c < 0;
        if (cmp_str(g->times.obj[sl->last], PyList_GET_ITEM(grp, 1), &c) != OK) goto done;
        ch[j].last = c > 0;
    }
    /* 3. the new groups into the reader's dict; on an error, those put in are taken out again (their keys are tuples
     * of str, None and msgspec structs: hashing and comparing them runs no Python code and cannot fail) */
    for (; n_inserted < n_touched; n_inserted++) {
        Change *c = &ch[n_inserted];
        if (c->key == NULL) continue;
        PyObject *there = PyDict_SetDefault(groups, c->key, c->group);
        if (there == NULL) goto done;
        if (there != c->group) {
            PyErr_SetString(PyExc_SystemError, "Grouper: two keys of this table made the same Python key");
            goto done;
        }
    }
    /* 4. nothing fails from here on */
    for (size_t j = 0; j < n_touched; j++) {
        Slot *sl = &g->slots[touched[j]];
        PyObject *grp = ch[j].group;
        if (sl->group == NULL) sl->group = Py_NewRef(grp);
        if (ch[j].key != NULL) continue;
        PyObject *old = PyList_GET_ITEM(grp, 2);
        PyList_SET_ITEM(grp, 2, ch[j].count);
        ch[j].count = NULL;
        Py_DECREF(old);
        if (ch[j].first) {
            old = PyList_GET_ITEM(grp, 0);
            PyList_SET_ITEM(grp, 0, Py_NewRef(g->times.obj[sl->first]));
            Py_DECREF(old);
        }
        if (ch[j].last) {
            old = PyList_GET_ITEM(grp, 1);
            PyList_SET_ITEM(grp, 1, Py_NewRef(g->times.obj[sl->last]));
            Py_DECREF(old);
        }
    }
    n_inserted = 0;
    result = OK;
done:
    if (result != OK && ch != NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        for (size_t j = 0; j < n_inserted; j++)
            if (ch[j].key != NULL && PyDict_DelItem(groups, ch[j].key) < 0) PyErr_Clear();
        PyErr_Restore(type, value, tb);
    }
    if (ch != NULL) changes_free(ch, n_touched);
    PyMem_Free(touched);
    return result;
}

static int enter(Grouper *g) {
    if (g->make_key == NULL) {
        PyErr_SetString(PyExc_TypeError, "Grouper: not initialized");
        return FAIL;
    }
    if (g->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Grouper: re-entered while a call runs");
        return FAIL;
    }
    g->busy = 1;
    return OK;
}

/* read(raw, groups, events) -> None when refused (nothing changed: read it the Python way), else (records,
 * duplicates, no_time, bad_time) of the file, counted into groups. On an error nothing changed either. */
static PyObject *Grouper_read(Grouper *g, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read(raw, groups: dict, events: dict)");
        return NULL;
    }
    if (enter(g) != OK) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        g->busy = 0;
        return NULL;
    }
    Parser ps = {.s = view.buf, .p = view.buf, .end = (const unsigned char *)view.buf + view.len};
    Record rec;
    memset(&rec, 0, sizeof rec);
    rec.n_params = g->n_params;
    rec.param_names = g->param_names;
    rec.ids = &g->ids;
    Counts cnt = {0, 0, 0, 0};
    size_t ev0 = g->n_ev, id0 = g->ids.n;
    PyObject *result = NULL;
    bset_forget(&g->times); /* a file covers minutes: its times, not the batch's, in a table that stays small */
    int r = parse_records(g, &ps, &rec, args[2], &cnt);
    buf_free(&ps.arena);
    buf_free(&ps.strs);
    if (r == OK) { /* the answer made before the commit: nothing may fail after it */
        result = Py_BuildValue("(nnnn)", (Py_ssize_t)cnt.records, (Py_ssize_t)cnt.duplicates,
                               (Py_ssize_t)cnt.no_time, (Py_ssize_t)cnt.bad_time);
        r = result == NULL ? FAIL : commit(g, args[1], ev0);
        if (r != OK) Py_CLEAR(result);
    }
    if (r != OK) { /* the file's events out again */
        g->n_ev = ev0;
        bset_pop_to(&g->ids, id0);
    }
    if (r == REFUSE) result = Py_NewRef(Py_None);
    PyBuffer_Release(&view);
    g->busy = 0;
    return result;
}

/* ids() -> the eventIDs counted, in the order counted. */
static PyObject *Grouper_ids(Grouper *g, PyObject *unused) {
    (void)unused;
    if (enter(g) != OK) return NULL;
    PyObject *out = PyList_New((Py_ssize_t)g->ids.n);
    for (size_t e = 0; out != NULL && e < g->ids.n; e++) {
        PyObject *s = py_str((const unsigned char *)g->ids.bytes.data + g->ids.off[e], g->ids.len[e]);
        if (s == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, (Py_ssize_t)e, s);
    }
    g->busy = 0;
    return out;
}

/* export() -> (ids, groups, times, no_id): per event with an ID, in the order counted, its ID, group and time; per
 * event without, a (group, time) tuple. */
static PyObject *Grouper_export(Grouper *g, PyObject *unused) {
    (void)unused;
    if (enter(g) != OK) return NULL;
    size_t n_id = g->ids.n, n_no = g->n_ev - n_id, a = 0, b = 0;
    PyObject *ids = PyList_New((Py_ssize_t)n_id), *groups = PyList_New((Py_ssize_t)n_id);
    PyObject *times = PyList_New((Py_ssize_t)n_id), *no_id = PyList_New((Py_ssize_t)n_no), *out = NULL;
    if (ids == NULL || groups == NULL || times == NULL || no_id == NULL) goto done;
    for (size_t i = 0; i < g->n_ev; i++) {
        PyObject *grp = g->slots[g->ev_slot[i]].group, *t = bset_str(&g->times, g->ev_time[i]);
        if (t == NULL) goto done;
        if (grp == NULL) { /* every event counted is in a committed group */
            PyErr_SetString(PyExc_SystemError, "Grouper: an event without a group");
            goto done;
        }
        size_t e = g->ev_id[i];
        if (e == SIZE_MAX) {
            if (b >= n_no) goto corrupt;
            PyObject *pair = PyTuple_Pack(2, grp, t);
            if (pair == NULL) goto done;
            PyList_SET_ITEM(no_id, (Py_ssize_t)b++, pair);
            continue;
        }
        if (a >= n_id || e != a) goto corrupt;
        PyObject *s = py_str((const unsigned char *)g->ids.bytes.data + g->ids.off[e], g->ids.len[e]);
        if (s == NULL) goto done;
        PyList_SET_ITEM(ids, (Py_ssize_t)a, s);
        PyList_SET_ITEM(groups, (Py_ssize_t)a, Py_NewRef(grp));
        PyList_SET_ITEM(times, (Py_ssize_t)a, Py_NewRef(t));
        a++;
    }
    if (a != n_id || b != n_no) goto corrupt;
    out = PyTuple_Pack(4, ids, groups, times, no_id);
    goto done;
corrupt:
    PyErr_SetString(PyExc_SystemError, "Grouper: events and IDs disagree");
done:
    Py_XDECREF(ids);
    Py_XDECREF(groups);
    Py_XDECREF(times);
    Py_XDECREF(no_id);
    g->busy = 0;
    return out;
}

/* The cyclic garbage collector: a Grouper holds make_key (a closure may hold the reader, which holds the Grouper)
 * and the reader's groups; without traverse and clear such a cycle would never be freed. */
static int Grouper_traverse(Grouper *g, visitproc visit, void *arg) {
    Py_VISIT(g->make_key);
    for (size_t s = 0; s < g->n_slots; s++) Py_VISIT(g->slots[s].group);
    return 0; /* the time str the set holds are exact str: they hold nothing */
}

static int Grouper_clear(Grouper *g) {
    Py_CLEAR(g->make_key); /* a later call raises "not initialized" */
    for (size_t s = 0; s < g->n_slots; s++) Py_CLEAR(g->slots[s].group);
    return 0;
}

static void Grouper_dealloc(Grouper *g) {
    PyObject_GC_UnTrack(g);
    Grouper_clear(g);
    for (size_t s = 0; s < g->n_slots; s++) PyMem_Free(g->slots[s].key);
    PyMem_Free(g->slots);
    PyMem_Free(g->table);
    PyMem_Free(g->ev_slot);
    PyMem_Free(g->ev_time);
    PyMem_Free(g->ev_id);
    bset_free(&g->ids);
    bset_free(&g->times);
    bset_free(&g->strs);
    buf_free(&g->keybuf);
    if (g->param_names != NULL) {
        for (int i = 0; i < g->n_params; i++) PyMem_Free((char *)g->param_names[i].s);
        PyMem_Free(g->param_names);
    }
    Py_TYPE(g)->tp_free((PyObject *)g);
}

static int Grouper_init(Grouper *g, PyObject *args, PyObject *kwds) {
    PyObject *names, *make_key;
    static char *kwlist[] = {"param_names", "make_key", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O:Grouper", kwlist, &PyTuple_Type, &names, &make_key)) return -1;
    if (g->param_names != NULL) {
        PyErr_SetString(PyExc_TypeError, "Grouper: already initialized");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (n > MAX_PARAMS) {
        PyErr_SetString(PyExc_ValueError, "Grouper: too many request parameter names");
        return -1;
    }
    if (!PyCallable_Check(make_key)) {
        PyErr_SetString(PyExc_TypeError, "Grouper: make_key must be callable");
        return -1;
    }
    g->param_names = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Name));
    if (g->param_names == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyTuple_GET_ITEM(names, i);
        Py_ssize_t len;
        const char *u = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &len) : NULL;
        if (u == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Grouper: names must be str");
            return -1;
        }
        if ((size_t)len != strlen(u)) {
            PyErr_SetString(PyExc_ValueError, "Grouper: a name holds NUL");
            return -1;
        }
        char *copy = PyMem_Malloc((size_t)len + 1);
        if (copy == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(copy, u, (size_t)len + 1);
        g->param_names[i].s = copy;
        g->param_names[i].n = (size_t)len;
        g->n_params = (int)i + 1;
    }
    g->make_key = Py_NewRef(make_key);
    return 0;
}

static PyObject *event_time_ok(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    int ok = good_time(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyObject *hash_key(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return Py_BuildValue("(KK)", (unsigned long long)sip_k0, (unsigned long long)sip_k1);
}

static PyMethodDef module_methods[] = {
    {"event_time_ok", event_time_ok, METH_O, "event_time_ok(utf8: bytes) -> bool: the C path's eventTime check."},
    {"_hash_key", hash_key, METH_NOARGS,
     "_hash_key() -> (k0, k1): this process's SipHash-1-3 key (for tests: building collisions needs it)."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef Grouper_methods[] = {
    {"read", (PyCFunction)(void (*)(void))Grouper_read, METH_FASTCALL,
     "read(raw, groups, events) -> None (refused, nothing changed: read it the Python way) or (records, duplicates,\n"
     "no_time, bad_time): the file counted into groups; its events kept here (``ids``, ``export``)."},
    {"ids", (PyCFunction)Grouper_ids, METH_NOARGS, "ids() -> the eventIDs counted, in the order counted."},
    {"export", (PyCFunction)Grouper_export, METH_NOARGS,
     "export() -> (ids, groups, times, no_id): every event counted, for the reader to hold in Python."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject GrouperType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "iamgraph.usage._fastct.Grouper",
    .tp_basicsize = sizeof(Grouper),
    .tp_dealloc = (destructor)Grouper_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Groups CloudTrail records by the reader's key across the files of one batch, and keeps their IDs.",
    .tp_traverse = (traverseproc)Grouper_traverse,
    .tp_clear = (inquiry)Grouper_clear,
    .tp_methods = Grouper_methods,
    .tp_init = (initproc)Grouper_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "iamgraph.usage._fastct",
    .m_doc = "The CloudTrail reader's per-event work in C (a fast path; see ingest.py).", .m_size = -1,
    .m_methods = module_methods,
};

static int seed(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) return FAIL;
    PyObject *b = PyObject_CallMethod(os, "urandom", "i", 16);
    Py_DECREF(os);
    if (b == NULL) return FAIL;
    if (!PyBytes_Check(b) || PyBytes_GET_SIZE(b) != 16) {
        Py_DECREF(b);
        PyErr_SetString(PyExc_SystemError, "_fastct: os.urandom gave no 16 bytes");
        return FAIL;
    }
    sip_k0 = load_le64((const unsigned char *)PyBytes_AS_STRING(b));
    sip_k1 = load_le64((const unsigned char *)PyBytes_AS_STRING(b) + 8);
    Py_DECREF(b);
    return OK;
}

PyMODINIT_FUNC PyInit__fastct(void) {
    if (seed() != OK) return NULL;
    if (PyType_Ready(&GrouperType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Grouper", (PyObject *)&GrouperType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
