/*
 * tls.c — loopback hosts, and a CA and server certificates with GnuTLS
 * (tls.h). GnuTLS error codes become coffer codes in gnutls_rc only.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "fs.h"
#include "secret.h"
#include "banned.h"

#define SERIAL_LEN 16
#define KEY_ID_MAX 64
#define CERT_FILE_MODE 0644
#define KEY_FILE_MODE 0600
#define HOST_TEXT_MAX 64

int tls_host_is_loopback(const char *host)
{
	char text[HOST_TEXT_MAX];
	unsigned char a[16];
	size_t n;

	if (!host)
		return 0;
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(text))
			return 0;
		memcpy(text, host + 1, n - 2);
		text[n - 2] = '\0';
		host = text;
	}
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
	return 0;
}

static enum coffer_err gnutls_rc(int r)
{
	if (r >= 0)
		return COFFER_OK;
	return r == GNUTLS_E_MEMORY_ERROR ? COFFER_ERR_NOMEM : COFFER_ERR_CRYPTO;
}

enum coffer_err tls_check_pair(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t c = { (unsigned char *)cert_pem, (unsigned)cert_len };
	gnutls_datum_t k = { (unsigned char *)key_pem, (unsigned)key_len };
	enum coffer_err rc = gnutls_rc(gnutls_certificate_allocate_credentials(&cred));
	if (!rc)
		rc = gnutls_rc(gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0));
	if (cred)
		gnutls_certificate_free_credentials(cred);
	return rc;
}

/* A TCP connection to host:port, its reads and writes (and connect) bounded by timeout_ms; -1 if none. */
static int connect_to(const char *host, const char *port, unsigned timeout_ms)
{
	char name[HOST_TEXT_MAX];
	struct addrinfo hints, *res = NULL;
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	size_t n = strlen(host);
	int fd = -1;

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(name))
			return -1;
		memcpy(name, host + 1, n - 2);
		name[n - 2] = '\0';
		host = name;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || !res)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
			connect(fd, res->ai_addr, res->ai_addrlen))) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

enum coffer_err tls_peer_not_after(const char *host, const char *port, unsigned timeout_ms, time_t *out)
{
	gnutls_session_t session = NULL;
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_crt_t crt = NULL;
	const gnutls_datum_t *chain;
	unsigned n = 0;
	time_t t = (time_t)-1;
	enum coffer_err rc = COFFER_ERR_UNAVAILABLE;
	int fd = connect_to(host, port, timeout_ms);

	if (fd < 0)
		return COFFER_ERR_UNAVAILABLE;
	if (gnutls_certificate_allocate_credentials(&cred) < 0 || gnutls_init(&session, GNUTLS_CLIENT) < 0 ||
	    gnutls_set_default_priority(session) < 0 ||
	    gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred) < 0)
		goto out;
	gnutls_transport_set_int(session, fd);
	gnutls_handshake_set_timeout(session, timeout_ms);
	int r;
	do
		r = gnutls_handshake(session);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0)
		goto out;
	chain = gnutls_certificate_get_peers(session, &n);
	if (chain && n > 0 && gnutls_x509_crt_init(&crt) >= 0 &&
	    gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0)
		t = gnutls_x509_crt_get_expiration_time(crt);
	if (t != (time_t)-1) {
		*out = t;
		rc = COFFER_OK;
	}
	(void)gnutls_bye(session, GNUTLS_SHUT_WR);
out:
	gnutls_x509_crt_deinit(crt);
	if (session)
		gnutls_deinit(session);
	if (cred)
		gnutls_certificate_free_credentials(cred);
	close(fd);
	return rc;
}

/* A fresh P-256 key. */
static enum coffer_err new_key(gnutls_x509_privkey_t *out)
{
	gnutls_x509_privkey_t key = NULL;
	enum coffer_err rc = gnutls_rc(gnutls_x509_privkey_init(&key));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_privkey_generate2(
			key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0));
	if (rc) {
		gnutls_x509_privkey_deinit(key);
		return rc;
	}
	*out = key;
	return COFFER_OK;
}

/* Version, serial, validity, CN and public key: what every certificate here has. */
static enum coffer_err crt_common(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cn,
				  time_t not_before, time_t not_after)
{
	unsigned char serial[SERIAL_LEN], id[KEY_ID_MAX];
	size_t id_len = sizeof(id);
	int r;

	randombytes_buf(serial, sizeof(serial));
	serial[0] &= 0x7f; /* a positive INTEGER */
	serial[0] |= 0x01; /* and no leading zero byte */
	r = gnutls_x509_crt_set_version(crt, 3);
	if (r >= 0)
		r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial));
	if (r >= 0)
		r = gnutls_x509_crt_set_activation_time(crt, not_before);
	if (r >= 0)
		r = gnutls_x509_crt_set_expiration_time(crt, not_after);
	if (r >= 0)
		r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn));
	if (r >= 0)
		r = gnutls_x509_crt_set_key(crt, key);
	if (r >= 0)
		r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &id_len);
	if (r >= 0)
		r = gnutls_x509_crt_set_subject_key_id(crt, id, id_len);
	return gnutls_rc(r);
}

/* Signs crt with the issuer's key (issuer == crt for a self-signed CA). */
static enum coffer_err crt_sign(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer, gnutls_x509_privkey_t issuer_key)
{
	gnutls_privkey_t pk = NULL;
	int r = gnutls_privkey_init(&pk);
	if (r >= 0)
		r = gnutls_privkey_import_x509(pk, issuer_key, 0);
	if (r >= 0)
		r = gnutls_x509_crt_privkey_sign(crt, issuer, pk, GNUTLS_DIG_SHA256, 0);
	gnutls_privkey_deinit(pk);
	return gnutls_rc(r);
}

/* Writes the certificate (0644) and the key (0600, wiped from memory after). */
static enum coffer_err write_pair(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *cert_file,
				  const char *key_file)
{
	gnutls_datum_t c = { NULL, 0 }, k = { NULL, 0 };
	enum coffer_err rc = gnutls_rc(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &k));
	if (!rc)
		rc = fs_write_atomic(key_file, k.data, k.size, KEY_FILE_MODE, 0);
	if (!rc)
		rc = fs_write_atomic(cert_file, c.data, c.size, CERT_FILE_MODE, 0);
	if (k.data) {
		sodium_memzero(k.data, k.size);
		gnutls_free(k.data);
	}
	gnutls_free(c.data);
	return rc;
}

enum coffer_err tls_make_ca(const char *cert_file, const char *key_file, const char *name, time_t not_before,
			    time_t not_after)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	enum coffer_err rc;

	if (!cert_file || !key_file || !name || !*name || not_after <= not_before)
		return COFFER_ERR_INVALID;
	if (sodium_init() < 0)
		return COFFER_ERR_INTERNAL;
	rc = new_key(&key);
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_init(&crt));
	if (!rc)
		rc = crt_common(crt, key, name, not_before, not_after);
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_basic_constraints(crt, 1, -1));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN));
	if (!rc)
		rc = crt_sign(crt, crt, key);
	if (!rc)
		rc = write_pair(crt, key, cert_file, key_file);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return rc;
}

/* Loads the CA's certificate and key. */
static enum coffer_err load_ca(const char *cert_file, const char *key_file, gnutls_x509_crt_t *crt_out,
			       gnutls_x509_privkey_t *key_out)
{
	struct buf pem;
	struct secret *kpem = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	enum coffer_err rc;

	buf_init(&pem, TLS_PEM_MAX);
	rc = fs_read_file(cert_file, &pem);
	if (!rc)
		rc = fs_read_private(key_file, TLS_PEM_MAX, &kpem);
	if (rc)
		goto out;
	gnutls_datum_t cd = { (unsigned char *)pem.ptr, (unsigned)pem.len };
	gnutls_datum_t kd = { secret_bytes(kpem), (unsigned)secret_len(kpem) };
	rc = gnutls_rc(gnutls_x509_crt_init(&crt));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_privkey_init(&key));
	if (!rc && (gnutls_x509_crt_import(crt, &cd, GNUTLS_X509_FMT_PEM) < 0 ||
		    gnutls_x509_privkey_import2(key, &kd, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN) < 0))
		rc = COFFER_ERR_CRYPTO;
	if (rc)
		goto out;
	*crt_out = crt;
	*key_out = key;
	crt = NULL;
	key = NULL;
out:
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	secret_free(kpem);
	buf_release(&pem);
	return rc;
}

static enum coffer_err add_san(gnutls_x509_crt_t crt, const char *name)
{
	unsigned char ip[16];
	size_t n = strlen(name);

	if (inet_pton(AF_INET, name, ip) == 1)
		return gnutls_rc(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND));
	if (inet_pton(AF_INET6, name, ip) == 1)
		return gnutls_rc(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16, GNUTLS_FSAN_APPEND));
	if (n == 0 || n > TLS_NAME_MAX)
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || (ch == '*' && i == 0)))
			return COFFER_ERR_INVALID;
	}
	return gnutls_rc(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name, (unsigned)n,
							      GNUTLS_FSAN_APPEND));
}

enum coffer_err tls_make_cert(const char *ca_cert_file, const char *ca_key_file, const char *cert_file,
			      const char *key_file, const char *const *names, size_t n_names, time_t not_before,
			      time_t not_after)
{
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_x509_privkey_t ca_key = NULL, key = NULL;
	unsigned char id[KEY_ID_MAX];
	size_t id_len = sizeof(id);
	enum coffer_err rc;

	if (!ca_cert_file || !ca_key_file || !cert_file || !key_file || !names || n_names == 0 ||
	    n_names > TLS_NAMES_MAX || not_after <= not_before)
		return COFFER_ERR_INVALID;
	if (sodium_init() < 0)
		return COFFER_ERR_INTERNAL;
	rc = load_ca(ca_cert_file, ca_key_file, &ca, &ca_key);
	if (!rc)
		rc = new_key(&key);
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_init(&crt));
	if (!rc)
		rc = crt_common(crt, key, names[0], not_before, not_after);
	for (size_t i = 0; i < n_names && !rc; i++)
		rc = add_san(crt, names[i]);
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_basic_constraints(crt, 0, -1));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_get_subject_key_id(ca, id, &id_len, NULL));
	if (!rc)
		rc = gnutls_rc(gnutls_x509_crt_set_authority_key_id(crt, id, id_len));
	if (!rc)
		rc = crt_sign(crt, ca, ca_key);
	if (!rc)
		rc = write_pair(crt, key, cert_file, key_file);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_privkey_deinit(ca_key);
	return rc;
}
