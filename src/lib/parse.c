#include "parse.h"

#include <string.h>

#include "buf.h"
#include "banned.h"

/* Reads digits at *s; advances *s. Needs at least one digit. */
static enum coffer_err digits(const char **s, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return COFFER_ERR_INVALID;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (d > max || v > (max - d) / 10)
			return COFFER_ERR_INVALID;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return COFFER_OK;
}

enum coffer_err parse_uint64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;
	if (!s || digits(&s, max, &v) || *s)
		return COFFER_ERR_INVALID;
	*out = v;
	return COFFER_OK;
}

enum coffer_err parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || min > max)
		return COFFER_ERR_INVALID;
	int neg = 0;
	if (*s == '-') {
		if (min >= 0)
			return COFFER_ERR_INVALID;
		neg = 1;
		s++;
	}
	uint64_t limit = neg ? (uint64_t)(-(min + 1)) + 1 : (max < 0 ? 0 : (uint64_t)max);
	uint64_t v;
	if (digits(&s, limit, &v) || *s)
		return COFFER_ERR_INVALID;
	int64_t r = neg ? (v == 0 ? 0 : -(int64_t)(v - 1) - 1) : (int64_t)v;
	if (r < min || r > max)
		return COFFER_ERR_INVALID;
	*out = r;
	return COFFER_OK;
}

enum coffer_err parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *out_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 } };
	uint64_t total = 0;
	if (!s || !*s)
		return COFFER_ERR_INVALID;
	while (*s) {
		uint64_t n;
		if (digits(&s, UINT64_MAX, &n))
			return COFFER_ERR_INVALID;
		size_t i, best = 0, bestlen = 0;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].unit);
			if (strncmp(s, units[i].unit, l) == 0 && l > bestlen) {
				best = i;
				bestlen = l;
			}
		}
		if (!bestlen)
			return COFFER_ERR_INVALID;
		s += bestlen;
		if (n > max_ms / units[best].ms)
			return COFFER_ERR_INVALID;
		n *= units[best].ms;
		if (total > max_ms - n)
			return COFFER_ERR_INVALID;
		total += n;
	}
	*out_ms = total;
	return COFFER_OK;
}

enum coffer_err parse_size(const char *s, uint64_t max, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = { { "", 1 },           { "B", 1 },           { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
		      { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 } };
	uint64_t n;
	if (!s || digits(&s, UINT64_MAX, &n))
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s, units[i].unit) != 0)
			continue;
		if (n > max / units[i].mul)
			return COFFER_ERR_INVALID;
		*out = n * units[i].mul;
		return COFFER_OK;
	}
	return COFFER_ERR_INVALID;
}

enum coffer_err parse_host_port(const char *s, char *host, size_t host_size, uint16_t *port)
{
	if (!s)
		return COFFER_ERR_INVALID;
	const char *colon, *hstart = s, *hend;
	if (*s == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			return COFFER_ERR_INVALID;
		hstart = s + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return COFFER_ERR_INVALID;
		hend = colon;
	}
	size_t hlen = (size_t)(hend - hstart);
	if (hlen == 0 || hlen >= host_size)
		return COFFER_ERR_INVALID;
	uint64_t p;
	if (parse_uint64(colon + 1, 65535, &p))
		return COFFER_ERR_INVALID;
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)p;
	return COFFER_OK;
}
