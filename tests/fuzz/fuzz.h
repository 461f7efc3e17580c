/*
 * fuzz.h — shared by the libFuzzer targets of tests/fuzz (docs/FUZZ.md).
 *
 * A target checks properties, not only "no crash": FUZZ_CHECK aborts with
 * the property's text when one fails, which libFuzzer reports as a crash
 * and saves the input that broke it.
 */
#ifndef COFFER_FUZZ_H
#define COFFER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                          \
	do {                                                                                      \
		if (!(cond)) {                                                                    \
			fprintf(stderr, "fuzz: property failed at %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                           \
			abort();                                                                  \
		}                                                                                 \
	} while (0)

/* data[0..size) as a NUL-terminated string (free() it); NULL only if out of memory. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Takes n bytes off the front of the input, or fewer at its end. */
static inline size_t fuzz_take(const uint8_t **data, size_t *size, size_t n)
{
	if (n > *size)
		n = *size;
	*data += n;
	*size -= n;
	return n;
}

/* One byte off the front (0 at the end of the input). */
static inline uint8_t fuzz_byte(const uint8_t **data, size_t *size)
{
	uint8_t b = *size ? **data : 0;
	fuzz_take(data, size, 1);
	return b;
}

static inline void fuzz_sodium_init(void)
{
	if (sodium_init() < 0)
		abort();
}

#endif
