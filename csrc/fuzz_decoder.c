/*
 * libFuzzer target for the C chunk decoder and encoder (csrc/chunked.c), built with
 * AddressSanitizer and UndefinedBehaviorSanitizer, coverage-guided by the C code itself:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *       -Icsrc csrc/fuzz_decoder.c csrc/chunked.c -o build/fuzz_decoder
 *   build/fuzz_decoder -max_total_time=60 -dict=csrc/chunked.dict fuzz-artifacts/corpus-decoder \
 *       tests/protocol/corpus/chunked/valid tests/protocol/corpus/chunked/invalid
 *
 * (`bash .ci/fuzz` does both.) The input is a chunked body. Invariants, each a trap when
 * broken, so libFuzzer saves the input as a crash file:
 *
 * 1. Decode or report an error, never crash: every feed returns DL_NEED_MORE, DL_END,
 *    DL_FULL or a DL_E_* code; ASan/UBSan turn any memory or UB error into a crash. Every
 *    piece is fed from its own heap block of exactly its size, so a read one byte past a
 *    piece is caught.
 * 2. One-shot == byte by byte == random pieces (split points and the span-array size drawn
 *    from a hash of the input): the same data bytes (spans resolved against the piece they
 *    point into, and data decoded before an error included), the same outcome (need more,
 *    end or the same error code), the same absolute offset of the offending byte or of the
 *    end of the body, the same data_total and the same trailers.
 * 3. Errors are sticky: after an error every further feed returns the same code and
 *    consumes nothing. After the end, more bytes give DL_E_AFTER_END.
 * 4. Spans lie inside the piece they were decoded from and cover res[2] bytes in all.
 * 5. Encoder round trip: the input cut into writes (lengths from the hash) and framed by
 *    dl_encode_joined, plus "0\r\n\r\n", is exactly dl_frame_size bytes and decodes back to
 *    the input with nothing unused.
 *
 * The "== the Python twin" half of the differential lives in csrc/fuzz_chunked.py (atheris).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunked.h"

#define CHECK(cond, what)                                                  \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz_decoder: invariant broken: %s (%s:%d)\n", \
                    what, __FILE__, __LINE__);                             \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* Everything observable about one decoding run. */
typedef struct {
    unsigned char *data; /* decoded bytes (malloc'd, at most the input's length) */
    size_t data_len;
    int outcome;       /* DL_NEED_MORE, DL_END or a DL_E_* code */
    size_t where;      /* absolute offset: end of the body (DL_END) or the offending byte */
    uint64_t data_total;
    uint32_t n_trailers;
    uint32_t trailer_len;
    dl_field fields[DL_MAX_TRAILERS];
    unsigned char trailers[DL_MAX_TRAILER_BYTES];
} outcome_t;

/* splitmix64: the input's hash seeds the split points, the span-array size and the writes. */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_input(const uint8_t *data, size_t size) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ULL;
    return h;
}

static dl_decoder g_dec; /* ~17 KiB: static, not on the stack */
static dl_span g_spans[64];

/*
 * Feed `size` bytes in pieces of the lengths in `cuts` (n_cuts of them, summing to size),
 * each copied into its own exact-size heap block, until the body ends or fails.
 */
static void decode_pieces(const uint8_t *input, size_t size, const size_t *cuts, size_t n_cuts,
                          size_t max_spans, outcome_t *out) {
    dl_decoder *d = &g_dec;
    dl_decoder_init(d);
    memset(out, 0, sizeof(*out));
    out->data = malloc(size ? size : 1);
    CHECK(out->data != NULL, "malloc");
    out->outcome = DL_NEED_MORE;
    size_t start = 0;
    for (size_t k = 0; k < n_cuts && out->outcome == DL_NEED_MORE; k++) {
        size_t len = cuts[k];
        unsigned char *piece = malloc(len ? len : 1);
        CHECK(piece != NULL, "malloc");
        memcpy(piece, input + start, len);
        size_t off = 0;
        for (;;) {
            uint64_t res[3] = {99, 99, 99};
            int rc = dl_decode(d, piece + off, len - off, res, g_spans, max_spans);
            CHECK(rc == DL_NEED_MORE || rc == DL_END || rc == DL_FULL ||
                      (rc <= DL_E_BAD_SIZE && rc >= DL_E_AFTER_END),
                  "unknown return code");
            CHECK(res[0] <= len - off, "consumed more than fed");
            CHECK(res[1] <= max_spans, "more spans than room");
            uint64_t covered = 0;
            for (uint64_t s = 0; s < res[1]; s++) {
                CHECK(g_spans[s].len > 0, "empty span");
                CHECK(g_spans[s].off + g_spans[s].len <= res[0], "span outside the consumed input");
                CHECK(out->data_len + g_spans[s].len <= size, "more data than input");
                memcpy(out->data + out->data_len, piece + off + g_spans[s].off, g_spans[s].len);
                out->data_len += g_spans[s].len;
                covered += g_spans[s].len;
            }
            CHECK(covered == res[2], "res[2] is not the bytes the spans cover");
            if (rc == DL_FULL) {
                CHECK(res[1] == max_spans, "DL_FULL with room left");
                off += res[0];
                continue;
            }
            if (rc == DL_END || rc < 0) {
                out->outcome = rc;
                out->where = start + off + res[0];
            } else {
                CHECK(res[0] == len - off, "DL_NEED_MORE left input unconsumed");
            }
            break;
        }
        free(piece);
        start += len;
    }
    out->data_total = d->data_total;
    CHECK(out->data_total == out->data_len, "data_total is not the data decoded");
    out->n_trailers = d->n_trailers;
    out->trailer_len = d->trailer_len;
    CHECK(out->n_trailers <= DL_MAX_TRAILERS, "too many trailer fields stored");
    CHECK(out->trailer_len <= DL_MAX_TRAILER_BYTES, "too many trailer bytes stored");
    memcpy(out->fields, d->fields, sizeof(dl_field) * out->n_trailers);
    memcpy(out->trailers, d->trailers, out->trailer_len);
    for (uint32_t t = 0; t < out->n_trailers; t++) {
        dl_field f = out->fields[t];
        CHECK(f.name_off + f.name_len <= out->trailer_len, "trailer name outside storage");
        CHECK(f.value_off + f.value_len <= out->trailer_len, "trailer value outside storage");
        CHECK(dl_is_token(d->trailers + f.name_off, f.name_len), "trailer name not a token");
        CHECK(dl_is_field_value(d->trailers + f.value_off, f.value_len),
              "trailer value not a field value");
    }
    /* Errors are sticky; after the end, bytes are DL_E_AFTER_END. */
    uint64_t res[3];
    static const unsigned char more[2] = {'0', '\r'};
    if (out->outcome < 0) {
        CHECK(dl_decode(d, more, 2, res, g_spans, max_spans) == out->outcome, "error not sticky");
        CHECK(res[0] == 0 && res[1] == 0, "consumed after an error");
    } else if (out->outcome == DL_END) {
        CHECK(dl_decode(d, more, 0, res, g_spans, max_spans) == DL_END, "end not kept");
        CHECK(dl_decode(d, more, 1, res, g_spans, max_spans) == DL_E_AFTER_END,
              "bytes after the end accepted");
    }
}

static void same(const outcome_t *a, const outcome_t *b, const char *what) {
    if (a->outcome != b->outcome || a->where != b->where || a->data_len != b->data_len ||
        memcmp(a->data, b->data, a->data_len) != 0 || a->data_total != b->data_total ||
        a->n_trailers != b->n_trailers || a->trailer_len != b->trailer_len ||
        memcmp(a->trailers, b->trailers, a->trailer_len) != 0 ||
        memcmp(a->fields, b->fields, sizeof(dl_field) * a->n_trailers) != 0) {
        fprintf(stderr,
                "fuzz_decoder: %s disagrees with one-shot: outcome %d/%d at %zu/%zu, "
                "data %zu/%zu bytes, trailers %u/%u\n",
                what, b->outcome, a->outcome, b->where, a->where, b->data_len, a->data_len,
                b->n_trailers, a->n_trailers);
        abort();
    }
}

static void round_trip(const uint8_t *data, size_t size, uint64_t *seed) {
    size_t n = 0;
    uint64_t *lens = malloc(sizeof(uint64_t) * (2 * size + 1));
    CHECK(lens != NULL, "malloc");
    for (size_t left = size; left;) {
        uint64_t r = next_rand(seed);
        /* one empty write in four (while there is room for them), 1-300 bytes otherwise */
        size_t len = r % 4 == 0 && n < size ? 0 : 1 + (size_t)(r >> 8) % (left < 300 ? left : 300);
        lens[n++] = len; /* zero-length writes are skipped by the encoder */
        left -= len;
    }
    size_t framed = dl_frame_size(lens, n);
    unsigned char *out = malloc(framed + 5);
    CHECK(out != NULL, "malloc");
    size_t wrote = dl_encode_joined(data, lens, n, out);
    CHECK(wrote == framed, "dl_encode_joined wrote other than dl_frame_size");
    memcpy(out + framed, "0\r\n\r\n", 5);
    size_t whole = framed + 5;
    outcome_t *o = malloc(sizeof(outcome_t));
    CHECK(o != NULL, "malloc");
    decode_pieces(out, whole, &whole, 1, 64, o);
    CHECK(o->outcome == DL_END, "encoded body did not decode");
    CHECK(o->where == whole, "encoded body left bytes unused");
    CHECK(o->data_len == size && memcmp(o->data, data, size) == 0, "round trip changed data");
    CHECK(o->n_trailers == 0, "trailers from nowhere");
    free(o->data);
    free(o);
    free(out);
    free(lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024) return 0;
    uint64_t seed = hash_input(data, size);
    size_t max_spans = 1 + (size_t)(next_rand(&seed) % 64);
    size_t *cuts = malloc(sizeof(size_t) * (size + 2));
    CHECK(cuts != NULL, "malloc");
    outcome_t *ref = malloc(sizeof(outcome_t));
    outcome_t *got = malloc(sizeof(outcome_t));
    CHECK(ref != NULL && got != NULL, "malloc");

    /* one-shot, with room for every span */
    cuts[0] = size;
    decode_pieces(data, size, cuts, 1, 64, ref);

    /* byte by byte, with a small span array */
    for (size_t i = 0; i < size; i++) cuts[i] = 1;
    decode_pieces(data, size, cuts, size, max_spans, got);
    same(ref, got, "byte by byte");
    free(got->data);

    /* random pieces (a few empty ones included) */
    size_t n = 0;
    for (size_t left = size; left && n < size;) {
        uint64_t r = next_rand(&seed);
        size_t len = r % 8 == 0 ? 0 : 1 + (size_t)(r >> 8) % left;
        cuts[n++] = len;
        left -= len;
    }
    size_t fed = 0;
    for (size_t k = 0; k < n; k++) fed += cuts[k];
    cuts[n++] = size - fed; /* the rest (or one more empty feed) */
    decode_pieces(data, size, cuts, n, max_spans, got);
    same(ref, got, "random pieces");
    free(got->data);

    /* a one-shot with a one-span array: DL_FULL after every run of data */
    decode_pieces(data, size, &size, 1, 1, got);
    same(ref, got, "one-shot with one span at a time");
    free(got->data);

    round_trip(data, size, &seed);

    free(ref->data);
    free(ref);
    free(got);
    free(cuts);
    return 0;
}
