/*
 * cmd_tls.c — `coffer tls`: a small CA for operators who have none, with
 * the code `coffer dev` uses (src/lib/tls.h).
 *
 *   coffer tls ca --dir DIR [--days N]
 *       DIR/ca.pem (give it to every client as --ca / COFFER_CA) and
 *       DIR/ca.key (0600; keep it off the servers). An existing CA is kept.
 *   coffer tls cert --dir DIR --name NAME --host HOST... [--days N]
 *       DIR/NAME.pem and DIR/NAME.key (0600), signed by DIR's CA, for each
 *       HOST (a DNS name or an IP address): the --tls-cert and --tls-key of
 *       a keeper or an api. Replaced if they exist.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fs.h"
#include "opts.h"
#include "parse.h"
#include "tls.h"
#include "banned.h"

#define TLS_PATH_MAX 4096
#define TLS_CA_DAYS_DEFAULT 3650
#define TLS_CERT_DAYS_DEFAULT 397 /* what browsers accept for a server certificate */
#define TLS_DAYS_MAX 36500
#define TLS_DAY_S 86400
#define TLS_SKEW_S 300 /* valid from a little before now: clocks differ */
#define TLS_DIR_MODE 0700

/* NAME: a file name of letters, digits, '-', '_' and '.', not starting with '.'. */
static int name_ok(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return 0;
	return 1;
}

int cmd_tls(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL, *days_text = NULL;
	struct opts_values hosts = { .n = 0 };
	char ca[TLS_PATH_MAX], ca_key[TLS_PATH_MAX], cert[TLS_PATH_MAX], key[TLS_PATH_MAX];
	const struct opts_spec specs[] = { { "dir", 0, OPTS_VALUE, &dir },	 { "name", 0, OPTS_VALUE, &name },
					   { "host", 0, OPTS_LIST, &hosts },	 { "days", 0, OPTS_VALUE, &days_text },
					   { NULL, 0, OPTS_FLAG, NULL } };
	int is_ca = argc >= 2 && strcmp(argv[1], "ca") == 0, is_cert = argc >= 2 && strcmp(argv[1], "cert") == 0;
	uint64_t days = 0;
	time_t now = time(NULL);
	enum coffer_err rc;

	if (!is_ca && !is_cert)
		return opts_usage("tls");
	int ex = opts_parse_role("tls", specs, argc, argv, 2);
	if (ex)
		return ex;
	if (!dir || (is_ca && (name || hosts.n)) || (is_cert && (!name || !hosts.n)))
		return opts_usage("tls");
	if (days_text && (parse_uint64(days_text, TLS_DAYS_MAX, &days) || days == 0))
		return opts_fail(COFFER_ERR_USAGE, "--days must be a number from 1 to %d", TLS_DAYS_MAX);
	if (!days)
		days = is_ca ? TLS_CA_DAYS_DEFAULT : TLS_CERT_DAYS_DEFAULT;
	if (is_cert && !name_ok(name))
		return opts_fail(COFFER_ERR_USAGE, "--name must be a file name of letters, digits, '-', '_' and '.'");
	if (is_cert && hosts.n > TLS_NAMES_MAX)
		return opts_fail(COFFER_ERR_USAGE, "at most %d --host", TLS_NAMES_MAX);
	if (fmt_into(ca, sizeof(ca), "%s/ca.pem", dir) || fmt_into(ca_key, sizeof(ca_key), "%s/ca.key", dir) ||
	    (is_cert && (fmt_into(cert, sizeof(cert), "%s/%s.pem", dir, name) ||
			 fmt_into(key, sizeof(key), "%s/%s.key", dir, name))))
		return opts_fail(COFFER_ERR_USAGE, "the folder's path is too long");
	time_t not_after = now + (time_t)days * TLS_DAY_S;
	if (is_ca) {
		if (access(ca, F_OK) == 0 || access(ca_key, F_OK) == 0) {
			printf("a CA exists already in '%s': kept it\n", dir);
			return 0;
		}
		rc = fs_mkdir_p(dir, TLS_DIR_MODE);
		if (!rc)
			rc = tls_make_ca(ca, ca_key, "coffer CA", now - TLS_SKEW_S, not_after);
		if (rc)
			return opts_fail(rc, "cannot make the CA in '%s': %s", dir, coffer_strerror(rc));
		printf("CA written: %s (give it to the clients: --ca, COFFER_CA) and %s (private)\n", ca, ca_key);
		return 0;
	}
	rc = tls_make_cert(ca, ca_key, cert, key, hosts.v, hosts.n, now - TLS_SKEW_S, not_after);
	if (rc == COFFER_ERR_NOT_FOUND)
		return opts_fail(rc, "no CA in '%s': run 'coffer tls ca --dir %s' first", dir, dir);
	if (rc == COFFER_ERR_FORBIDDEN)
		return opts_fail(rc, "'%s' may be read or written by group or others: make it private (chmod 600)",
				 ca_key);
	if (rc == COFFER_ERR_INVALID)
		return opts_fail(rc, "a --host is neither an IP address nor a DNS name");
	if (rc)
		return opts_fail(rc, "cannot make the certificate: %s", coffer_strerror(rc));
	printf("certificate written: %s and %s (private): give them as --tls-cert and --tls-key\n", cert, key);
	return 0;
}
