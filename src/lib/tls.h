/*
 * tls.h — what coffer's TLS needs besides libmicrohttpd and libcurl: which
 * hosts count as loopback (the only ones plain HTTP may use), and making a
 * CA and server certificates with GnuTLS's x509 API (GnuTLS is already in
 * the process as libmicrohttpd's TLS library).
 *
 * Certificates are ECDSA P-256, signed with SHA-256, X.509 v3 with a random
 * 128-bit serial. Files are PEM; a private key file is written 0600 with
 * fs_write_atomic and its bytes are wiped after use. Nothing here keeps
 * state between calls.
 */
#ifndef COFFER_TLS_H
#define COFFER_TLS_H

#include <stddef.h>
#include <time.h>

#include "err.h"

#define TLS_NAMES_MAX 16        /* subject alternative names of one certificate */
#define TLS_NAME_MAX 253        /* bytes of one DNS name */
#define TLS_PEM_MAX ((size_t)64 << 10)

/* "localhost", an IPv4 address in 127.0.0.0/8 or "::1" (brackets allowed): 1; anything else 0. */
int tls_host_is_loopback(const char *host);

/*
 * The notAfter of the certificate the server at host:port presents (host:
 * a name or an address, IPv6 with or without brackets), for the message
 * that says a certificate has expired: a TLS handshake that sends nothing
 * and verifies nothing, then closes; within timeout_ms per step.
 * COFFER_ERR_UNAVAILABLE when there is no such server or no certificate.
 */
COFFER_MUST_CHECK enum coffer_err tls_peer_not_after(const char *host, const char *port, unsigned timeout_ms,
						     time_t *out);

/*
 * A server's certificate chain and key (PEM, NUL-terminated) as GnuTLS
 * would load them: COFFER_OK, COFFER_ERR_CRYPTO when either does not parse
 * or the key is not the certificate's.
 */
COFFER_MUST_CHECK enum coffer_err tls_check_pair(const char *cert_pem, size_t cert_len, const char *key_pem,
						 size_t key_len);

/*
 * Makes a self-signed CA (basicConstraints CA:TRUE, keyCertSign) named
 * `name`, valid from not_before to not_after, into cert_file (0644) and
 * key_file (0600). Both files are replaced.
 */
COFFER_MUST_CHECK enum coffer_err tls_make_ca(const char *cert_file, const char *key_file, const char *name,
					      time_t not_before, time_t not_after);

/*
 * Issues a server certificate (CA:FALSE, digitalSignature, serverAuth)
 * signed by the CA in ca_cert_file/ca_key_file, for `names`: each one that
 * parses as an IPv4 or IPv6 address becomes an IP SAN, any other a DNS SAN;
 * the first is also the subject's CN. COFFER_ERR_INVALID for no names, more
 * than TLS_NAMES_MAX or a name that is neither; COFFER_ERR_NOT_FOUND when a
 * CA file is missing; COFFER_ERR_CRYPTO when the CA files do not parse.
 */
COFFER_MUST_CHECK enum coffer_err tls_make_cert(const char *ca_cert_file, const char *ca_key_file,
						const char *cert_file, const char *key_file,
						const char *const *names, size_t n_names, time_t not_before,
						time_t not_after);

#endif
