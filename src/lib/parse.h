/*
 * parse.h — strict parsers for numbers, durations and sizes.
 *
 * Each parser takes the whole string: leading or trailing spaces, signs where
 * none belong, empty input and overflow are all COFFER_ERR_INVALID. The result
 * is written only on success.
 */
#ifndef COFFER_PARSE_H
#define COFFER_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Decimal integer in [min, max]; an optional leading '-' only if min < 0. */
COFFER_MUST_CHECK enum coffer_err parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Decimal unsigned integer in [0, max]. */
COFFER_MUST_CHECK enum coffer_err parse_uint64(const char *s, uint64_t max, uint64_t *out);
/*
 * Duration: one or more <digits><unit> groups with unit ms, s, m, h or d
 * ("30s", "2m", "1h30m", "500ms"); result in milliseconds, at most
 * max_ms. A bare number is refused: the unit is required.
 */
COFFER_MUST_CHECK enum coffer_err parse_duration_ms(const char *s, uint64_t max_ms, uint64_t *out_ms);
/*
 * Size: <digits> with an optional unit B, K/KiB, M/MiB, G/GiB (powers of
 * 1024); "64KiB", "1M", "512". At most max bytes.
 */
COFFER_MUST_CHECK enum coffer_err parse_size(const char *s, uint64_t max, uint64_t *out);
/* host:port or [v6]:port; host may be a name. Port 0..65535. */
COFFER_MUST_CHECK enum coffer_err parse_host_port(const char *s, char *host, size_t host_size, uint16_t *port);

#endif
