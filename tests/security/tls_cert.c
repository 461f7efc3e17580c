/*
 * tls_cert — makes the CAs and server certificates the TLS tests need,
 * good and bad, with the code coffer itself uses (src/lib/tls.h):
 *
 *   tls_cert ca CERT KEY
 *   tls_cert cert CA_CERT CA_KEY CERT KEY DAYS NAME...
 *
 * DAYS is the validity from now; a negative DAYS makes a certificate that
 * expired that many days ago (valid from twice as long ago until then).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls.h"

#define DAY 86400L
#define CA_DAYS 3650L
#define SKEW 300L

static int usage(void)
{
	fputs("usage: tls_cert ca CERT KEY | tls_cert cert CA_CERT CA_KEY CERT KEY DAYS NAME...\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	time_t now = time(NULL);
	enum coffer_err rc;

	if (argc == 4 && strcmp(argv[1], "ca") == 0) {
		rc = tls_make_ca(argv[2], argv[3], "coffer test CA", now - SKEW, now + CA_DAYS * DAY);
	} else if (argc >= 8 && strcmp(argv[1], "cert") == 0) {
		char *end = NULL;
		long days = strtol(argv[6], &end, 10);
		if (!end || *end || days == 0 || days > CA_DAYS || days < -CA_DAYS)
			return usage();
		time_t nb = days > 0 ? now - SKEW : now + 2 * days * DAY;
		time_t na = days > 0 ? now + days * DAY : now + days * DAY;
		rc = tls_make_cert(argv[2], argv[3], argv[4], argv[5], (const char *const *)argv + 7, (size_t)(argc - 7),
				   nb, na);
	} else {
		return usage();
	}
	if (rc) {
		fprintf(stderr, "tls_cert: %s\n", coffer_strerror(rc));
		return 1;
	}
	return 0;
}
