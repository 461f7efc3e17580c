/*
 * config.c — the CLI's config file (client.h): where it is, reading it,
 * writing it (`coffer dev`). The token it holds stays in secure memory.
 */
#include "client.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "fs.h"
#include "banned.h"

#define CONFIG_DIR_MODE 0700
#define CONFIG_FILE_MODE 0600
#define CONFIG_DEPTH 2
#define CONFIG_SUFFIX "/coffer/config.json"
#define CONFIG_HOME_SUFFIX "/.config/coffer/config.json"

enum coffer_err cli_config_path(char *out, size_t size)
{
	const char *env = getenv("COFFER_CONFIG");
	if (env && *env)
		return str_copy(out, size, env);
	env = getenv("XDG_CONFIG_HOME");
	if (env && env[0] == '/') /* the XDG spec ignores a relative value */
		return fmt_into(out, size, "%s" CONFIG_SUFFIX, env);
	env = getenv("HOME");
	if (env && *env)
		return fmt_into(out, size, "%s" CONFIG_HOME_SUFFIX, env);
	return COFFER_ERR_NOT_FOUND;
}

/* Printable ASCII without '"' and '\\': can go into a JSON string as it is. */
static int json_plain(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

static void append(unsigned char *dst, size_t *pos, const void *src, size_t n)
{
	if (dst)
		memcpy(dst + *pos, src, n);
	*pos += n;
}

static void append_field(unsigned char *dst, size_t *pos, const char *name, const void *value, size_t len)
{
	if (*pos > 1)
		append(dst, pos, ",", 1);
	append(dst, pos, "\n  \"", 4);
	append(dst, pos, name, strlen(name));
	append(dst, pos, "\": \"", 4);
	append(dst, pos, value, len);
	append(dst, pos, "\"", 1);
}

/* Counts (dst NULL) or writes the config document. */
static size_t config_doc(unsigned char *dst, const char *api_url, const char *ca, const struct secret *token,
			 const struct cli_config_deployer *dep)
{
	size_t pos = 0;
	append(dst, &pos, "{", 1);
	if (api_url)
		append_field(dst, &pos, "api_url", api_url, strlen(api_url));
	if (ca)
		append_field(dst, &pos, "ca", ca, strlen(ca));
	if (dep && dep->keeper_url[0])
		append_field(dst, &pos, "keeper_url", dep->keeper_url, strlen(dep->keeper_url));
	if (dep && dep->keeper_public_key[0])
		append_field(dst, &pos, "keeper_public_key", dep->keeper_public_key, strlen(dep->keeper_public_key));
	if (dep && dep->deployer_id[0])
		append_field(dst, &pos, "deployer_id", dep->deployer_id, strlen(dep->deployer_id));
	if (dep && dep->deployer_org_id[0])
		append_field(dst, &pos, "deployer_org_id", dep->deployer_org_id, strlen(dep->deployer_org_id));
	if (dep && dep->deployer_app_id[0])
		append_field(dst, &pos, "deployer_app_id", dep->deployer_app_id, strlen(dep->deployer_app_id));
	if (token) {
		if (pos > 1)
			append(dst, &pos, ",", 1);
		append(dst, &pos, "\n  \"token\": \"", 13);
		append(dst, &pos, secret_cbytes(token), secret_len(token));
		append(dst, &pos, "\"", 1);
	}
	append(dst, &pos, "\n}\n", 3);
	return pos;
}

static int url_ok(const char *url)
{
	return (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) &&
	       json_plain((const unsigned char *)url, strlen(url));
}

/* Writes the whole document (every argument checked by the callers). */
static enum coffer_err write_doc(const char *api_url, const char *ca, const struct secret *token,
				 const struct cli_config_deployer *dep)
{
	char path[CLI_CONFIG_PATH_MAX], dir[CLI_CONFIG_PATH_MAX];
	struct secret *doc = NULL;
	enum coffer_err rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = str_copy(dir, sizeof(dir), path);
	if (!rc)
		rc = fs_mkdir_p(dirname(dir), CONFIG_DIR_MODE);
	if (!rc)
		rc = secret_new(config_doc(NULL, api_url, ca, token, dep), &doc);
	if (rc)
		goto out;
	config_doc(secret_bytes(doc), api_url, ca, token, dep);
	rc = fs_write_atomic(path, secret_cbytes(doc), secret_len(doc), CONFIG_FILE_MODE, 0);
out:
	secret_free(doc);
	return rc;
}

enum coffer_err cli_config_write(const char *api_url, const char *ca, const struct secret *token)
{
	struct cli_config_deployer dep;
	enum coffer_err rc;

	if (api_url && !url_ok(api_url))
		return COFFER_ERR_INVALID;
	if (ca && (ca[0] != '/' || !json_plain((const unsigned char *)ca, strlen(ca))))
		return COFFER_ERR_INVALID;
	if (token && (secret_len(token) == 0 || !json_plain(secret_cbytes(token), secret_len(token))))
		return COFFER_ERR_INVALID;
	/* the deployer's fields (coffer login) are kept; a file that cannot be read has none */
	if (cli_config_read_deployer(&dep) != COFFER_OK)
		memset(&dep, 0, sizeof(dep));
	rc = write_doc(api_url, ca, token, &dep);
	sodium_memzero(&dep, sizeof(dep));
	return rc;
}

enum coffer_err cli_config_write_deployer(const struct cli_config_deployer *dep)
{
	char url[HTTP_CLIENT_URL_MAX] = "", ca[HTTP_CLIENT_CA_PATH_MAX] = "";
	struct secret *token = NULL;
	enum coffer_err rc;

	if (!dep || (dep->keeper_url[0] && !url_ok(dep->keeper_url)) ||
	    !json_plain((const unsigned char *)dep->keeper_public_key, strlen(dep->keeper_public_key)) ||
	    !json_plain((const unsigned char *)dep->deployer_id, strlen(dep->deployer_id)) ||
	    !json_plain((const unsigned char *)dep->deployer_org_id, strlen(dep->deployer_org_id)) ||
	    !json_plain((const unsigned char *)dep->deployer_app_id, strlen(dep->deployer_app_id)))
		return COFFER_ERR_INVALID;
	rc = cli_config_read(url, sizeof(url), ca, sizeof(ca), &token);
	if (!rc)
		rc = write_doc(url[0] ? url : NULL, ca[0] ? ca : NULL, token, dep);
	secret_free(token);
	return rc;
}

/* jansson keeps its own copy of a string: wipe it before it is freed. */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		sodium_memzero((char *)json_string_value(s), json_string_length(s));
}

/* The config file's fields: the api's (api_url, ca, token) and the deployer's (coffer login). */
static const char *const config_fields[] = { "api_url", "ca", "token", "keeper_url", "keeper_public_key",
					     "deployer_id", "deployer_org_id", "deployer_app_id", NULL };

/* The string field key of doc into out ("" when absent). */
static enum coffer_err copy_field(const json_t *doc, const char *key, char *out, size_t size)
{
	const char *s = NULL;
	enum coffer_err rc = json_get_string(doc, key, 0, &s, NULL, NULL);
	if (!rc)
		rc = str_copy(out, size, s ? s : "");
	return rc;
}

enum coffer_err cli_config_read_deployer(struct cli_config_deployer *out)
{
	char path[CLI_CONFIG_PATH_MAX];
	struct cli_config_deployer d;
	struct secret *raw = NULL;
	json_t *doc = NULL;
	enum coffer_err rc;

	memset(&d, 0, sizeof(d));
	rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = fs_read_private(path, CLI_CONFIG_MAX, &raw);
	if (rc == COFFER_ERR_NOT_FOUND) { /* no file, or no HOME: no deployer */
		*out = d;
		return COFFER_OK;
	}
	if (!rc)
		rc = json_parse_limited((const char *)secret_cbytes(raw), secret_len(raw), CLI_CONFIG_MAX, CONFIG_DEPTH,
					&doc, NULL);
	if (!rc && !json_is_object(doc))
		rc = COFFER_ERR_INVALID;
	if (!rc)
		rc = json_check_fields(doc, config_fields, NULL);
	if (!rc)
		rc = copy_field(doc, "keeper_url", d.keeper_url, sizeof(d.keeper_url));
	if (!rc)
		rc = copy_field(doc, "keeper_public_key", d.keeper_public_key, sizeof(d.keeper_public_key));
	if (!rc)
		rc = copy_field(doc, "deployer_id", d.deployer_id, sizeof(d.deployer_id));
	if (!rc)
		rc = copy_field(doc, "deployer_org_id", d.deployer_org_id, sizeof(d.deployer_org_id));
	if (!rc)
		rc = copy_field(doc, "deployer_app_id", d.deployer_app_id, sizeof(d.deployer_app_id));
	if (doc)
		wipe_json_string(json_object_get(doc, "token"));
	json_decref(doc);
	secret_free(raw);
	if (!rc)
		*out = d;
	return rc;
}

enum coffer_err cli_config_read(char *api_url, size_t api_url_size, char *ca, size_t ca_size, struct secret **token)
{
	const char *const *fields = config_fields;
	char path[CLI_CONFIG_PATH_MAX], url[HTTP_CLIENT_URL_MAX] = "", ca_path[HTTP_CLIENT_CA_PATH_MAX] = "";
	struct secret *raw = NULL, *tok = NULL;
	json_t *doc = NULL;
	const char *s = NULL;
	size_t len = 0;
	enum coffer_err rc;

	rc = cli_config_path(path, sizeof(path));
	if (!rc)
		rc = fs_read_private(path, CLI_CONFIG_MAX, &raw);
	if (rc == COFFER_ERR_NOT_FOUND) /* no file, or no HOME: no config */
		rc = COFFER_OK;
	if (!rc && raw)
		rc = json_parse_limited((const char *)secret_cbytes(raw), secret_len(raw), CLI_CONFIG_MAX,
					CONFIG_DEPTH, &doc, NULL);
	if (!rc && raw && !json_is_object(doc))
		rc = COFFER_ERR_INVALID;
	if (!rc && doc)
		rc = json_check_fields(doc, fields, NULL);
	if (!rc && doc)
		rc = json_get_string(doc, "api_url", 0, &s, NULL, NULL);
	if (!rc && s)
		rc = str_copy(url, sizeof(url), s);
	s = NULL;
	if (!rc && doc)
		rc = json_get_string(doc, "ca", 0, &s, NULL, NULL);
	if (!rc && s)
		rc = str_copy(ca_path, sizeof(ca_path), s);
	s = NULL;
	if (!rc && doc)
		rc = json_get_string(doc, "token", 0, &s, &len, NULL);
	if (!rc && s && len)
		rc = secret_from(s, len, &tok);
	if (!rc && api_url)
		rc = str_copy(api_url, api_url_size, url);
	if (!rc && ca)
		rc = str_copy(ca, ca_size, ca_path);
	if (rc)
		goto out;
	*token = tok;
	tok = NULL;
out:
	if (doc)
		wipe_json_string(json_object_get(doc, "token"));
	json_decref(doc);
	secret_free(tok);
	secret_free(raw);
	return rc;
}
