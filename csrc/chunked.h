/*
 * HTTP/1.1 chunked transfer coding (RFC 9112 section 7.1), both directions.
 *
 * C99, no allocation, no Python.h: every buffer belongs to the caller. The decoder is an
 * incremental state machine: it may be fed any split of the input, keeps no copy of it, and
 * reports an error at the first byte that makes the input invalid (so a one-shot feed and a
 * byte-by-byte feed agree exactly). The Python twin in
 * src/duplexlambda/protocol/_chunked_py.py is the reference for this file.
 */
#ifndef DUPLEXLAMBDA_CHUNKED_H
#define DUPLEXLAMBDA_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

/* Limits. Lines are counted without their CRLF. */
#define DL_MAX_LINE 8192           /* a chunk-size line (with extensions) or one trailer line */
#define DL_MAX_SIZE_DIGITS 16      /* hex digits of chunk-size, leading zeros included */
#define DL_MAX_TRAILER_BYTES 16384 /* stored trailer names + values */
#define DL_MAX_TRAILERS 64         /* trailer fields */

/* Return codes of dl_decode. Errors are negative and sticky. */
#define DL_NEED_MORE 0   /* all input consumed, body not finished */
#define DL_END 1         /* body finished; `*consumed` tells where */
#define DL_FULL 2        /* span array full: call again with the rest of the input */
#define DL_E_BAD_SIZE (-1)         /* chunk-size is not 1*HEXDIG */
#define DL_E_SIZE_OVERFLOW (-2)    /* more than 16 hex digits, or a size >= 2^63 */
#define DL_E_LINE_TOO_LONG (-3)    /* size line or trailer line longer than DL_MAX_LINE */
#define DL_E_BAD_CRLF (-4)         /* a line or a chunk's data not ended by CRLF */
#define DL_E_BAD_EXTENSION (-5)    /* control character inside a chunk extension */
#define DL_E_BAD_TRAILER (-6)      /* trailer field not `token ":" OWS value OWS` */
#define DL_E_TRAILERS_TOO_LARGE (-7) /* more than DL_MAX_TRAILERS or DL_MAX_TRAILER_BYTES */
#define DL_E_AFTER_END (-8)        /* bytes fed after the body had ended */

/* A piece of decoded data: `len` bytes at `off` in the input (zero copy). */
typedef struct {
    uint64_t off;
    uint64_t len;
} dl_span;

/* A trailer field: offsets into dl_decoder.trailers. */
typedef struct {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
} dl_field;

typedef struct {
    int32_t state;
    int32_t error;        /* 0, or the sticky DL_E_* code */
    uint64_t size;        /* chunk-size being parsed, then data bytes left in the chunk */
    uint64_t data_total;  /* data bytes decoded so far */
    uint32_t digits;      /* hex digits seen in the current chunk-size */
    uint32_t line_len;    /* bytes of the current line, CRLF excluded */
    uint32_t trailer_len; /* bytes used in `trailers` */
    uint32_t value_end;   /* trailer_len after the last non-OWS value byte */
    uint32_t n_trailers;
    uint32_t pad_;
    dl_field fields[DL_MAX_TRAILERS];
    unsigned char trailers[DL_MAX_TRAILER_BYTES];
} dl_decoder;

void dl_decoder_init(dl_decoder *d);

/*
 * Decode `in[0:in_len]`. Each run of body data is reported as a span into `in` (nothing is
 * copied), in spans[0..max_spans). On return res[0] = input bytes consumed, res[1] = spans
 * filled, res[2] = data bytes they cover. (One result array, not three out-pointers: reading
 * it from Python is then one buffer view instead of three cffi lookups.)
 *
 * Returns DL_NEED_MORE, DL_END (bytes from res[0] on belong to whatever follows the body),
 * DL_FULL (span array full: nothing is lost, call again with the rest), or a DL_E_* code
 * (res[0] then points at the offending byte).
 */
int dl_decode(dl_decoder *d, const unsigned char *in, size_t in_len, uint64_t *res,
              dl_span *spans, size_t max_spans);

/* Copy the spans' bytes, in order, to out (which holds their total). Callers coalesce many
 * small runs into one buffer this way instead of handing out thousands of tiny views. */
void dl_gather(const unsigned char *in, const dl_span *spans, size_t n, unsigned char *out);

/* Encoder. A chunk head is at most 16 hex digits + CRLF. */
#define DL_HEAD_MAX 18

/* Write `<hex len>\r\n` (lowercase hex) into head; return its length. */
size_t dl_chunk_head(uint64_t len, unsigned char *head);

/* Frame `n` writes that lie back to back in `data` (lens[i] bytes each; zero lengths
 * skipped) as one chunk each into out, which must hold dl_frame_size(lens, n) bytes. Returns
 * the bytes written. */
size_t dl_frame_size(const uint64_t *lens, size_t n);
size_t dl_encode_joined(const unsigned char *data, const uint64_t *lens, size_t n,
                        unsigned char *out);

/* 1 if `s[0:n]` is a token (RFC 9110 5.6.2), else 0. */
int dl_is_token(const unsigned char *s, size_t n);
/* 1 if `s[0:n]` is a valid field value with no leading/trailing OWS, else 0. */
int dl_is_field_value(const unsigned char *s, size_t n);

#endif
