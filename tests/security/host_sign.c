/*
 * host_sign — signs an agent request as a host would (hostauth.h), so that
 * the security tests can craft valid, tampered, replayed and stale
 * requests with curl. Whoever runs it holds the host's key file: this is
 * the agent's own signing, given to the test, not an attack.
 *
 *   host_sign KEYFILE HOST_ID METHOD PATH BODYFILE [TIMESTAMP [NONCE]]
 *
 * KEYFILE is an agent's host.sign.key (the 32-byte Ed25519 seed, 0600);
 * BODYFILE the exact body bytes to sign ("" or /dev/null for none);
 * TIMESTAMP unix seconds (default: now); NONCE 32 lower-case hex (default:
 * random). Prints the four headers, one "Name: value" per line, for
 * `curl -H`. Exit 0, or 2 on error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "buf.h"
#include "fs.h"
#include "hostauth.h"
#include "jws.h"
#include "parse.h"
#include "secret.h"

#define BODY_MAX ((size_t)1 << 20)
#define KEY_LEN 32

static int fail(const char *what)
{
	fprintf(stderr, "host_sign: %s\n", what);
	return 2;
}

int main(int argc, char **argv)
{
	struct secret *seed = NULL, *sk = NULL;
	unsigned char pk[JWS_PK_LEN];
	struct hostauth_headers h;
	struct buf body;
	int64_t ts = (int64_t)time(NULL);
	enum coffer_err rc;
	int ex = 0;

	if (argc < 6 || argc > 8)
		return fail("usage: host_sign KEYFILE HOST_ID METHOD PATH BODYFILE [TIMESTAMP [NONCE]]");
	if (sodium_init() < 0)
		return fail("libsodium failed to initialise");
	if (argc >= 7 && parse_int64(argv[6], 0, INT64_MAX, &ts))
		return fail("TIMESTAMP must be unix seconds");
	buf_init(&body, BODY_MAX);
	if (argv[5][0] && fs_read_file(argv[5], &body)) {
		ex = fail("cannot read BODYFILE");
		goto out;
	}
	rc = fs_read_private(argv[1], KEY_LEN + 1, &seed);
	if (rc || secret_len(seed) != KEY_LEN || jws_key_from_seed(seed, &sk, pk)) {
		ex = fail("KEYFILE is not a private 32-byte key file");
		goto out;
	}
	struct hostauth_request r = { argv[3], argv[4], body.ptr, body.len };
	if (argc == 8)
		rc = hostauth_sign_headers_with(sk, argv[2], &r, ts, argv[7], &h);
	else
		rc = hostauth_sign_headers(sk, argv[2], &r, ts, &h);
	if (rc) {
		ex = fail("cannot sign (a bad host id, method, path or nonce)");
		goto out;
	}
	printf("%s: %s\n%s: %s\n%s: %s\n%s: %s\n", HOSTAUTH_HEADER_HOST, h.host, HOSTAUTH_HEADER_TIMESTAMP, h.timestamp,
	       HOSTAUTH_HEADER_NONCE, h.nonce, HOSTAUTH_HEADER_SIGNATURE, h.signature);
out:
	buf_release(&body);
	secret_free(sk);
	secret_free(seed);
	return ex;
}
