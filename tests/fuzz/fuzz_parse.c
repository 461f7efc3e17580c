/*
 * Numbers (parse.h) and encodings (encode.h). Each parser is compared with a
 * small reference of the rule its header states, both ways: it accepts
 * exactly what the rule accepts, with the same value. Encodings: decode of
 * encode is the identity, and a decoded text encodes back to itself (one
 * spelling per value).
 */
#include <errno.h>
#include <inttypes.h>

#include "encode.h"
#include "fuzz.h"
#include "parse.h"

static const uint64_t maxes[] = { 0, 1, 5, 9, 10, 99, 65535, 86400000, INT64_MAX, UINT64_MAX };
#define N_MAXES (sizeof(maxes) / sizeof(maxes[0]))

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads digits at *p into *v (saturated above UINT64_MAX, *over set); 0 if none. */
static int ref_digits(const char **p, unsigned __int128 *v)
{
	const char *s = *p;
	*v = 0;
	if (!is_digit(*s))
		return 0;
	for (; is_digit(*s); s++) {
		*v = *v * 10 + (unsigned)(*s - '0');
		if (*v > (unsigned __int128)UINT64_MAX * 10)
			*v = (unsigned __int128)UINT64_MAX * 10; /* saturate: anything above is refused alike */
	}
	*p = s;
	return 1;
}

static void check_uint(const char *s, uint64_t max)
{
	uint64_t got = 7;
	const char *p = s;
	unsigned __int128 v;
	int ok = ref_digits(&p, &v) && !*p && v <= max;
	enum coffer_err rc = parse_uint64(s, max, &got);
	FUZZ_CHECK((rc == COFFER_OK) == ok);
	FUZZ_CHECK(ok ? got == (uint64_t)v : got == 7);
}

static void check_int(const char *s, int64_t min, int64_t max)
{
	int64_t got = 7;
	const char *p = s;
	int neg = *p == '-' && min < 0;
	unsigned __int128 v;
	p += neg;
	int ok = ref_digits(&p, &v) && !*p;
	if (ok) {
		__int128 r = neg ? -(__int128)v : (__int128)v;
		ok = r >= min && r <= max;
		enum coffer_err rc = parse_int64(s, min, max, &got);
		FUZZ_CHECK((rc == COFFER_OK) == ok);
		FUZZ_CHECK(!ok || got == (int64_t)r);
		return;
	}
	FUZZ_CHECK(parse_int64(s, min, max, &got) != COFFER_OK && got == 7);
}

static void check_duration(const char *s, uint64_t max)
{
	uint64_t got = 7;
	unsigned __int128 total = 0;
	const char *p = s;
	int ok = *p != '\0';
	while (ok && *p) {
		unsigned __int128 n, unit = 0;
		if (!ref_digits(&p, &n)) {
			ok = 0;
			break;
		}
		if (p[0] == 'm' && p[1] == 's')
			unit = 1, p += 2;
		else if (*p == 's')
			unit = 1000, p++;
		else if (*p == 'm')
			unit = 60000, p++;
		else if (*p == 'h')
			unit = 3600000, p++;
		else if (*p == 'd')
			unit = 86400000, p++;
		ok = unit != 0;
		total += n * unit;
		if (total > max)
			ok = 0;
	}
	enum coffer_err rc = parse_duration_ms(s, max, &got);
	FUZZ_CHECK((rc == COFFER_OK) == ok);
	FUZZ_CHECK(ok ? got == (uint64_t)total : got == 7);
}

static void check_size(const char *s, uint64_t max)
{
	static const struct {
		const char *unit;
		uint64_t mul;
	} units[] = { { "", 1 },           { "B", 1 },           { "K", 1 << 10 }, { "KiB", 1 << 10 },
		      { "M", 1 << 20 },    { "MiB", 1 << 20 },   { "G", 1 << 30 }, { "GiB", 1 << 30 } };
	uint64_t got = 7;
	const char *p = s;
	unsigned __int128 n, v = 0;
	int ok = 0;
	if (ref_digits(&p, &n))
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(p, units[i].unit) == 0) {
				v = n * units[i].mul;
				ok = v <= max;
			}
	enum coffer_err rc = parse_size(s, max, &got);
	FUZZ_CHECK((rc == COFFER_OK) == ok);
	FUZZ_CHECK(ok ? got == (uint64_t)v : got == 7);
}

static void check_host_port(const char *s)
{
	char host[64];
	uint16_t port = 7;
	if (parse_host_port(s, host, sizeof(host), &port) != COFFER_OK) {
		FUZZ_CHECK(port == 7);
		return;
	}
	/* the port is the decimal after the last ':', the host is what is before it */
	const char *colon = strrchr(s, ':');
	FUZZ_CHECK(colon && host[0]);
	char text[8];
	FUZZ_CHECK(snprintf(text, sizeof(text), "%u", (unsigned)port) > 0);
	uint64_t again;
	FUZZ_CHECK(parse_uint64(colon + 1, 65535, &again) == COFFER_OK && again == port);
	if (s[0] == '[')
		FUZZ_CHECK(colon[-1] == ']' && strlen(host) == (size_t)(colon - s - 2) &&
			   memcmp(host, s + 1, strlen(host)) == 0);
	else
		FUZZ_CHECK(!strchr(host, ':') && strlen(host) == (size_t)(colon - s) && memcmp(host, s, strlen(host)) == 0);
}

static void check_b64(const uint8_t *data, size_t size)
{
	struct buf a, b;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	/* round trip */
	FUZZ_CHECK(b64url_encode(data, size, &a) == COFFER_OK);
	FUZZ_CHECK(a.len == B64URL_LEN(size));
	FUZZ_CHECK(b64url_decode(a.ptr, a.len, &b) == COFFER_OK);
	FUZZ_CHECK(b.len == size && (size == 0 || memcmp(b.ptr, data, size) == 0));
	/* one spelling: what decodes, encodes back to the same text */
	if (b64url_decode((const char *)data, size, &a) == COFFER_OK) {
		FUZZ_CHECK(b64url_encode(a.ptr, a.len, &b) == COFFER_OK);
		FUZZ_CHECK(b.len == size && memcmp(b.ptr, data, size) == 0);
	} else {
		FUZZ_CHECK(a.len == 0);
	}
	size_t cap = size / 4 * 3 + 3, got = 0;
	unsigned char *out = malloc(cap);
	char *enc = malloc(sodium_base64_ENCODED_LEN(cap, sodium_base64_VARIANT_ORIGINAL));
	FUZZ_CHECK(out && enc);
	if (b64_decode_into(B64_STD, (const char *)data, size, out, cap, &got) == COFFER_OK) {
		sodium_bin2base64(enc, sodium_base64_ENCODED_LEN(got, sodium_base64_VARIANT_ORIGINAL), out, got,
				  sodium_base64_VARIANT_ORIGINAL);
		FUZZ_CHECK(strlen(enc) == size && memcmp(enc, data, size) == 0);
	}
	free(out);
	free(enc);
	/* hex: decodes to what encodes back to its lower-case form */
	if (hex_decode_buf((const char *)data, size, &a) == COFFER_OK) {
		char *h = malloc(2 * a.len + 1);
		FUZZ_CHECK(h && hex_encode(a.ptr, a.len, h, 2 * a.len + 1) == COFFER_OK);
		FUZZ_CHECK(strlen(h) == size);
		for (size_t i = 0; i < size; i++) {
			char c = (char)data[i];
			FUZZ_CHECK(h[i] == (c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c));
		}
		free(h);
	}
	buf_release(&a);
	buf_release(&b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_sodium_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	uint8_t sel = fuzz_byte(&data, &size);
	char *s = fuzz_cstr(data, size);
	uint64_t max = maxes[(sel >> 3) % N_MAXES];
	switch (sel & 7) {
	case 0:
		check_uint(s, max);
		break;
	case 1:
		check_int(s, -(int64_t)(max > INT64_MAX ? INT64_MAX : max) - (max > INT64_MAX),
			  (int64_t)(max > INT64_MAX ? INT64_MAX : max));
		check_int(s, 0, max > INT64_MAX ? INT64_MAX : (int64_t)max);
		break;
	case 2:
		check_duration(s, max);
		break;
	case 3:
		check_size(s, max);
		break;
	case 4:
		check_host_port(s);
		break;
	default:
		check_b64(data, size);
		break;
	}
	free(s);
	return 0;
}
