/*
 * HTTP/1.1 chunked transfer coding, RFC 9112 section 7.1. See chunked.h for the contract.
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG              (<= 16 digits, value < 2^63)
 *   chunk-ext      = BWS ";" ...           (ignored; no control characters)
 *   trailer-section= *( field-name ":" OWS field-value OWS CRLF )
 *
 * Deliberate strictness (request smuggling hygiene, as h11 and llhttp in strict mode):
 * CRLF only (a bare LF anywhere is DL_E_BAD_CRLF), no obs-fold in trailers, no whitespace
 * before the size. Trailing
 * whitespace after the size is tolerated because RFC 9112 7.1.1 allows BWS before ";".
 */
#include "chunked.h"

#include <string.h>

enum {
    S_SIZE_START = 0, /* first hex digit of chunk-size */
    S_SIZE,           /* more hex digits */
    S_SIZE_BWS,       /* whitespace after the digits */
    S_EXT,            /* inside chunk extensions, until CR */
    S_SIZE_LF,        /* LF ending the size line */
    S_DATA,           /* chunk data, `size` bytes left */
    S_DATA_CR,        /* CR after chunk data */
    S_DATA_LF,        /* LF after chunk data */
    S_TRAILER_START,  /* start of a trailer line, or the CR of the final CRLF */
    S_TNAME,          /* field-name */
    S_TVALUE_OWS,     /* OWS before field-value */
    S_TVALUE,         /* field-value */
    S_TLF,            /* LF ending a trailer line */
    S_END_LF,         /* LF of the final CRLF */
    S_DONE
};

/* -1 for non-hex; otherwise the digit's value. */
static const signed char HEX[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
    ['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
}; /* stored +1 so that the zero default means "not hex" */

/* tchar, RFC 9110 5.6.2 */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar = VCHAR / obs-text (RFC 9110 5.5) */
static int is_vchar(unsigned char c) { return (c >= 0x21 && c != 0x7f); }

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

/* A control character other than HTAB: never allowed inside a line. */
static int is_ctl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

void dl_decoder_init(dl_decoder *d) {
    d->state = S_SIZE_START;
    d->error = 0;
    d->size = 0;
    d->data_total = 0;
    d->digits = 0;
    d->line_len = 0;
    d->trailer_len = 0;
    d->value_end = 0;
    d->n_trailers = 0;
    d->pad_ = 0;
}

static int fail(dl_decoder *d, int code) {
    d->error = code;
    return code;
}

/* Copy a short run; fixed-size memcpy calls compile to plain moves, which is what makes
 * tiny chunks cheap (a libc memcpy call costs more than the copy itself). */
static void copy_small(unsigned char *dst, const unsigned char *src, size_t n) {
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) memcpy(dst + i, src + i, 8);
        if (i < n) memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n >= 4) {
        memcpy(dst, src, 4);
        memcpy(dst + n - 4, src + n - 4, 4);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
    }
}

void dl_gather(const unsigned char *in, const dl_span *spans, size_t n, unsigned char *out) {
    for (size_t k = 0; k < n; k++) {
        size_t len = (size_t)spans[k].len;
        if (len <= 64)
            copy_small(out, in + spans[k].off, len);
        else
            memcpy(out, in + spans[k].off, len);
        out += len;
    }
}

/* Store one trailer byte. */
static int store(dl_decoder *d, unsigned char c) {
    if (d->trailer_len >= DL_MAX_TRAILER_BYTES) return fail(d, DL_E_TRAILERS_TOO_LARGE);
    d->trailers[d->trailer_len++] = c;
    return 0;
}

/* One byte of a line state (size line after its digits, or trailers). */
static int step_line(dl_decoder *d, unsigned char c) {
    switch (d->state) {
    case S_SIZE:
    case S_SIZE_BWS:
        if (c == '\r') { d->state = S_SIZE_LF; return 0; }
        if (c == '\n') return fail(d, DL_E_BAD_CRLF);
        if (++d->line_len > DL_MAX_LINE) return fail(d, DL_E_LINE_TOO_LONG);
        if (is_ows(c)) { d->state = S_SIZE_BWS; return 0; }
        if (c == ';') { d->state = S_EXT; return 0; }
        return fail(d, DL_E_BAD_SIZE);
    case S_EXT:
        if (c == '\r') { d->state = S_SIZE_LF; return 0; }
        if (c == '\n') return fail(d, DL_E_BAD_CRLF);
        if (++d->line_len > DL_MAX_LINE) return fail(d, DL_E_LINE_TOO_LONG);
        return is_ctl(c) ? fail(d, DL_E_BAD_EXTENSION) : 0;
    case S_SIZE_LF:
        if (c != '\n') return fail(d, DL_E_BAD_CRLF);
        d->line_len = 0;
        d->state = d->size ? S_DATA : S_TRAILER_START;
        return 0;
    case S_DATA_CR:
        if (c != '\r') return fail(d, DL_E_BAD_CRLF);
        d->state = S_DATA_LF;
        return 0;
    case S_DATA_LF:
        if (c != '\n') return fail(d, DL_E_BAD_CRLF);
        d->state = S_SIZE_START;
        return 0;
    case S_TRAILER_START:
        if (c == '\r') { d->state = S_END_LF; return 0; }
        if (c == '\n') return fail(d, DL_E_BAD_CRLF);
        d->line_len = 1;
        if (!is_tchar(c)) return fail(d, DL_E_BAD_TRAILER);
        if (d->n_trailers == DL_MAX_TRAILERS) return fail(d, DL_E_TRAILERS_TOO_LARGE);
        d->fields[d->n_trailers].name_off = d->trailer_len;
        d->state = S_TNAME;
        return store(d, c);
    case S_TNAME:
        if (c == '\n') return fail(d, DL_E_BAD_CRLF);
        if (++d->line_len > DL_MAX_LINE) return fail(d, DL_E_LINE_TOO_LONG);
        if (c == ':') {
            dl_field *f = &d->fields[d->n_trailers];
            f->name_len = d->trailer_len - f->name_off;
            f->value_off = d->value_end = d->trailer_len;
            d->state = S_TVALUE_OWS;
            return 0;
        }
        return is_tchar(c) ? store(d, c) : fail(d, DL_E_BAD_TRAILER);
    case S_TVALUE_OWS:
    case S_TVALUE:
        if (c == '\r') { d->state = S_TLF; return 0; }
        if (c == '\n') return fail(d, DL_E_BAD_CRLF);
        if (++d->line_len > DL_MAX_LINE) return fail(d, DL_E_LINE_TOO_LONG);
        if (is_ows(c)) return d->state == S_TVALUE_OWS ? 0 : store(d, c);
        if (!is_vchar(c)) return fail(d, DL_E_BAD_TRAILER);
        d->state = S_TVALUE;
        if (store(d, c)) return d->error;
        d->value_end = d->trailer_len;
        return 0;
    case S_TLF: {
        if (c != '\n') return fail(d, DL_E_BAD_CRLF);
        dl_field *f = &d->fields[d->n_trailers++];
        f->value_len = d->value_end - f->value_off;
        d->trailer_len = d->value_end; /* drop trailing OWS */
        d->state = S_TRAILER_START;
        return 0;
    }
    case S_END_LF:
        if (c != '\n') return fail(d, DL_E_BAD_CRLF);
        d->state = S_DONE;
        return 0;
    default:
        return fail(d, DL_E_AFTER_END);
    }
}

/*
 * Straight-line path for the common case: a whole "HEX CRLF data CRLF" chunk in the buffer.
 * It commits nothing until the chunk is known good; anything unusual (extensions, the last
 * chunk, a chunk cut by the read, an error) is left to the state machine, which then reads the
 * same bytes and reaches the same result, error included.
 */
static size_t fast_chunks(dl_decoder *d, const unsigned char *in, size_t in_len, size_t i,
                          dl_span *spans, size_t max_spans, size_t *ns, uint64_t *bytes) {
    size_t n = *ns;
    uint64_t total = 0;
    while (n < max_spans && in_len - i >= 5) {
        size_t p = i;
        int v = HEX[in[p]];
        if (!v) break;
        uint64_t size = (uint64_t)(v - 1);
        p++;
        while (p < in_len && (v = HEX[in[p]]) != 0) {
            if (p - i >= DL_MAX_SIZE_DIGITS || (size >> 59)) goto out;
            size = (size << 4) | (uint64_t)(v - 1);
            p++;
        }
        if (in_len - p < 2 || in[p] != '\r' || in[p + 1] != '\n' || size == 0) break;
        p += 2;
        if (size > in_len - p || in_len - p - size < 2) break;
        if (in[p + size] != '\r' || in[p + size + 1] != '\n') break;
        spans[n].off = p;
        spans[n].len = size;
        n++;
        total += size;
        i = p + (size_t)size + 2;
    }
out:
    *ns = n;
    *bytes += total;
    d->data_total += total;
    return i;
}

int dl_decode(dl_decoder *d, const unsigned char *in, size_t in_len, uint64_t *res,
              dl_span *spans, size_t max_spans) {
    size_t i = 0;
    size_t ns = 0;
    uint64_t bytes = 0;
    int rc = DL_NEED_MORE;

    if (d->error) {
        res[0] = res[1] = res[2] = 0;
        return d->error;
    }
    while (i < in_len) {
        if (d->state == S_SIZE_START) {
            i = fast_chunks(d, in, in_len, i, spans, max_spans, &ns, &bytes);
            if (i == in_len) break;
        }
        int state = d->state;
        if (state == S_DATA) {
            if (ns == max_spans) { rc = DL_FULL; break; }
            size_t avail = in_len - i;
            size_t take = d->size < avail ? (size_t)d->size : avail;
            spans[ns].off = i;
            spans[ns].len = take;
            ns++;
            bytes += take;
            i += take;
            d->size -= take;
            d->data_total += take;
            if (d->size) continue;
            /* The CRLF after the data is usually right there. */
            if (i + 2 <= in_len) {
                if (in[i] != '\r' || in[i + 1] != '\n') {
                    if (in[i] == '\r') i++;
                    rc = fail(d, DL_E_BAD_CRLF);
                    break;
                }
                i += 2;
                d->state = S_SIZE_START;
            } else {
                d->state = S_DATA_CR;
            }
        } else if (state == S_SIZE_START || state == S_SIZE) {
            if (state == S_SIZE_START) {
                if (ns == max_spans) { rc = DL_FULL; break; }
                int v = HEX[in[i]];
                if (!v) { rc = fail(d, DL_E_BAD_SIZE); break; }
                d->size = (uint64_t)(v - 1);
                d->digits = 1;
                d->line_len = 1;
                d->state = S_SIZE;
                i++;
            }
            while (i < in_len) {
                int v = HEX[in[i]];
                if (!v) break;
                /* Overflow: a 17th digit, or a value that would reach 2^63. */
                if (++d->digits > DL_MAX_SIZE_DIGITS || (d->size >> 59)) {
                    rc = fail(d, DL_E_SIZE_OVERFLOW);
                    goto out;
                }
                d->size = (d->size << 4) | (uint64_t)(v - 1);
                d->line_len++;
                i++;
            }
            if (i == in_len) break;
            if (i + 2 <= in_len && in[i] == '\r' && in[i + 1] == '\n') {
                i += 2;
                d->line_len = 0;
                d->state = d->size ? S_DATA : S_TRAILER_START;
                continue;
            }
            if (step_line(d, in[i])) { rc = d->error; break; }
            i++;
        } else {
            if (step_line(d, in[i])) { rc = d->error; break; }
            i++;
            if (d->state == S_DONE) { rc = DL_END; break; }
        }
    }
out:
    res[0] = i;
    res[1] = ns;
    res[2] = bytes;
    if (rc == DL_NEED_MORE && d->state == S_DONE) rc = DL_END;
    return rc;
}

size_t dl_chunk_head(uint64_t len, unsigned char *head) {
    static const char digits[] = "0123456789abcdef";
    unsigned char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)digits[len & 15];
        len >>= 4;
    } while (len);
    for (size_t i = 0; i < n; i++) head[i] = tmp[n - 1 - i];
    head[n] = '\r';
    head[n + 1] = '\n';
    return n + 2;
}

static size_t hex_len(uint64_t v) {
    size_t n = 1;
    while (v >>= 4) n++;
    return n;
}

size_t dl_frame_size(const uint64_t *lens, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (lens[i]) total += hex_len(lens[i]) + 4 + (size_t)lens[i];
    return total;
}

size_t dl_encode_joined(const unsigned char *data, const uint64_t *lens, size_t n,
                        unsigned char *out) {
    unsigned char *p = out;
    for (size_t i = 0; i < n; i++) {
        size_t len = (size_t)lens[i];
        if (!len) continue; /* a zero-length chunk would end the body (RFC 9112 7.1) */
        p += dl_chunk_head(len, p);
        if (len <= 64)
            copy_small(p, data, len);
        else
            memcpy(p, data, len);
        data += len;
        p += len;
        p[0] = '\r';
        p[1] = '\n';
        p += 2;
    }
    return (size_t)(p - out);
}

int dl_is_token(const unsigned char *s, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar(s[i])) return 0;
    return 1;
}

int dl_is_field_value(const unsigned char *s, size_t n) {
    if (n && (is_ows(s[0]) || is_ows(s[n - 1]))) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_vchar(s[i]) && !is_ows(s[i])) return 0;
    return 1;
}
