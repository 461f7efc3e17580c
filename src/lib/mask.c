#include "mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "banned.h"

/*
 * Offsets below are into `work`: the carry (bytes fed but not yet
 * written) followed by the newest chunk. A start position p is searched
 * once work holds p + maxlen bytes (or at the end): every value that
 * starts there is then whole in work, so the byte at p is final once every
 * start up to p has been searched. `cov` is how far the occurrences found
 * so far reach: starts are searched in order, so the bytes covered ahead
 * of the next start are always one run from it.
 */
struct mask_stream {
	struct secret *store;      /* the values, one after the other */
	size_t *off, *len;         /* value k is store[off[k] .. off[k] + len[k]) */
	size_t n;
	size_t cap;                /* entries of off, len and by_first (they tell lengths and grouping: wiped) */
	uint32_t *by_first;        /* the values starting with byte b: by_first[first[b] .. first[b + 1]) */
	size_t first[257];
	size_t maxlen;
	struct secret *work;       /* carry + chunk */
	size_t used;               /* bytes in work */
	size_t cov;                /* bytes of work covered from offset 0 (by occurrences already found) */
	int in_run;                /* the last byte written was covered: a run continues */
	int done;
	mask_emit_fn emit;
	void *ctx;
};

enum coffer_err mask_stream_new(const struct secret *const *values, size_t n, mask_emit_fn emit, void *ctx,
				struct mask_stream **out)
{
	enum coffer_err rc = COFFER_OK;
	size_t total = 0, count = 0;
	if (n > MASK_VALUES_MAX || !emit)
		return n > MASK_VALUES_MAX ? COFFER_ERR_TOO_LARGE : COFFER_ERR_INVALID;
	struct mask_stream *ms = calloc(1, sizeof(*ms));
	if (!ms)
		return COFFER_ERR_NOMEM;
	ms->emit = emit;
	ms->ctx = ctx;
	for (size_t k = 0; k < n; k++) {
		size_t l = values[k] ? secret_len(values[k]) : 0;
		if (l > MASK_VALUE_MAX) {
			rc = COFFER_ERR_TOO_LARGE;
			goto out;
		}
		if (l) {
			total += l;
			count++;
			if (l > ms->maxlen)
				ms->maxlen = l;
		}
	}
	ms->cap = count + 1;
	ms->off = calloc(count + 1, sizeof(*ms->off));
	ms->len = calloc(count + 1, sizeof(*ms->len));
	ms->by_first = calloc(count + 1, sizeof(*ms->by_first));
	if (!ms->off || !ms->len || !ms->by_first) {
		rc = COFFER_ERR_NOMEM;
		goto out;
	}
	rc = secret_new(total, &ms->store);
	if (!rc)
		rc = secret_new((ms->maxlen ? ms->maxlen - 1 : 0) + MASK_CHUNK, &ms->work);
	if (rc)
		goto out;
	unsigned char *s = secret_bytes(ms->store);
	size_t at = 0, counts[256] = { 0 };
	for (size_t k = 0; k < n; k++) {
		size_t l = values[k] ? secret_len(values[k]) : 0;
		if (!l)
			continue;
		memcpy(s + at, secret_cbytes(values[k]), l);
		ms->off[ms->n] = at;
		ms->len[ms->n] = l;
		counts[s[at]]++;
		ms->n++;
		at += l;
	}
	ms->first[0] = 0;
	for (size_t b = 0; b < 256; b++)
		ms->first[b + 1] = ms->first[b] + counts[b];
	size_t fill[256];
	memcpy(fill, ms->first, sizeof(fill));
	for (size_t k = 0; k < ms->n; k++)
		ms->by_first[fill[s[ms->off[k]]]++] = (uint32_t)k;
	/* both tell how many values start with each byte */
	sodium_memzero(counts, sizeof(counts));
	sodium_memzero(fill, sizeof(fill));
	*out = ms;
	ms = NULL;
out:
	mask_stream_free(ms);
	return rc;
}

/* Searches the start p of work (bytes up to `end` exist) and widens cov. */
static void search_at(struct mask_stream *ms, const unsigned char *w, size_t p, size_t end)
{
	const unsigned char *s = secret_cbytes(ms->store);
	unsigned char b = w[p];
	for (size_t i = ms->first[b]; i < ms->first[b + 1]; i++) {
		size_t k = ms->by_first[i], l = ms->len[k];
		if (p + l <= end && p + l > ms->cov && memcmp(w + p, s + ms->off[k], l) == 0)
			ms->cov = p + l;
	}
}

/* Searches and writes work[0..upto), where every start below upto can be decided with work[0..end). */
static enum coffer_err flush_upto(struct mask_stream *ms, size_t upto, size_t end)
{
	unsigned char *w = secret_bytes(ms->work);
	size_t p = 0;
	while (p < upto) {
		search_at(ms, w, p, end);
		if (p < ms->cov) {
			if (!ms->in_run && ms->emit(ms->ctx, (const unsigned char *)MASK_TEXT, sizeof(MASK_TEXT) - 1))
				return COFFER_ERR_IO;
			ms->in_run = 1;
			p++;
			continue;
		}
		/* a plain stretch: up to the next byte that starts some value */
		size_t q = p + 1;
		while (q < upto && ms->first[w[q]] == ms->first[w[q] + 1])
			q++;
		if (ms->emit(ms->ctx, w + p, q - p))
			return COFFER_ERR_IO;
		ms->in_run = 0;
		p = q;
	}
	/* what is left moves to the front */
	memmove(w, w + upto, ms->used - upto);
	ms->used -= upto;
	ms->cov = ms->cov > upto ? ms->cov - upto : 0;
	return COFFER_OK;
}

/*
 * Where the bytes that must wait start: the first of the last maxlen - 1
 * positions where a value could still be starting (what is left of work
 * from there is a proper prefix of some value); used when there is none.
 * Everything before it is decided now, so a machine that prints a line and
 * waits has its line in the log, not held back.
 */
static size_t hold_point(const struct mask_stream *ms)
{
	const unsigned char *w = secret_cbytes(ms->work), *s = secret_cbytes(ms->store);
	size_t from = ms->used > ms->maxlen - 1 ? ms->used - (ms->maxlen - 1) : 0;
	for (size_t p = from; p < ms->used; p++) {
		size_t left = ms->used - p;
		for (size_t i = ms->first[w[p]]; i < ms->first[w[p] + 1]; i++) {
			size_t k = ms->by_first[i];
			if (ms->len[k] > left && memcmp(w + p, s + ms->off[k], left) == 0)
				return p;
		}
	}
	return ms->used;
}

enum coffer_err mask_feed(struct mask_stream *ms, const unsigned char *p, size_t n)
{
	if (ms->done)
		return COFFER_ERR_INVALID;
	if (ms->n == 0)
		return n && ms->emit(ms->ctx, p, n) ? COFFER_ERR_IO : COFFER_OK;
	size_t keep = ms->maxlen - 1;
	while (n) {
		size_t room = secret_len(ms->work) - ms->used;
		size_t take = n < room ? n : room;
		memcpy(secret_bytes(ms->work) + ms->used, p, take);
		ms->used += take;
		p += take;
		n -= take;
		if (ms->used > keep && n) { /* more to come at once: only what is surely decided */
			enum coffer_err rc = flush_upto(ms, ms->used - keep, ms->used);
			if (rc)
				return rc;
		}
	}
	return flush_upto(ms, hold_point(ms), ms->used);
}

enum coffer_err mask_finish(struct mask_stream *ms)
{
	if (ms->done)
		return COFFER_ERR_INVALID;
	ms->done = 1;
	if (ms->n == 0 || ms->used == 0)
		return COFFER_OK;
	return flush_upto(ms, ms->used, ms->used);
}

void mask_stream_free(struct mask_stream *ms)
{
	if (!ms)
		return;
	secret_free(ms->work);
	secret_free(ms->store);
	/* the index tells each value's length and which share a first byte: wiped, as the values are */
	if (ms->off)
		sodium_memzero(ms->off, ms->cap * sizeof(*ms->off));
	if (ms->len)
		sodium_memzero(ms->len, ms->cap * sizeof(*ms->len));
	if (ms->by_first)
		sodium_memzero(ms->by_first, ms->cap * sizeof(*ms->by_first));
	free(ms->off);
	free(ms->len);
	free(ms->by_first);
	sodium_memzero(ms, sizeof(*ms));
	free(ms);
}
