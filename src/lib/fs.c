#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "encode.h"
#include "banned.h"

enum coffer_err fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return COFFER_ERR_IO;
		p += w;
		len -= (size_t)w;
	}
	return COFFER_OK;
}

static enum coffer_err fsync_dir_of(const char *path)
{
	char copy[4096];
	if (str_copy(copy, sizeof(copy), path))
		return COFFER_ERR_TOO_LARGE;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return COFFER_ERR_IO;
	int r = fsync(fd);
	close(fd);
	return r ? COFFER_ERR_IO : COFFER_OK;
}

enum coffer_err fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int exclusive)
{
	char tmp[4096];
	unsigned char rnd[8];
	randombytes_buf(rnd, sizeof(rnd));
	if (fmt_into(tmp, sizeof(tmp), "%s.tmp-%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1], rnd[2],
		     rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]))
		return COFFER_ERR_TOO_LARGE;
	if (exclusive && access(path, F_OK) == 0)
		return COFFER_ERR_CONFLICT;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return COFFER_ERR_IO;
	enum coffer_err rc = fs_write_all(fd, data, len);
	if (!rc && fsync(fd))
		rc = COFFER_ERR_IO;
	if (close(fd) && !rc)
		rc = COFFER_ERR_IO;
	if (!rc && exclusive) {
		/* link(2) fails if path exists: no window in which two writers both win. */
		if (link(tmp, path))
			rc = errno == EEXIST ? COFFER_ERR_CONFLICT : COFFER_ERR_IO;
		unlink(tmp);
	} else if (!rc && rename(tmp, path)) {
		rc = COFFER_ERR_IO;
	}
	if (rc)
		unlink(tmp);
	else
		rc = fsync_dir_of(path);
	return rc;
}

enum coffer_err fs_read_file(const char *path, struct buf *b)
{
	buf_reset(b);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? COFFER_ERR_NOT_FOUND : COFFER_ERR_IO;
	enum coffer_err rc = COFFER_OK;
	char chunk[8192];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = COFFER_ERR_IO;
			break;
		}
		if (r == 0)
			break;
		rc = buf_add(b, chunk, (size_t)r);
		if (rc)
			break;
	}
	close(fd);
	return rc;
}

enum coffer_err fs_read_private(const char *path, size_t max, struct secret **out)
{
	struct secret *s = NULL;
	enum coffer_err rc = COFFER_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? COFFER_ERR_NOT_FOUND : COFFER_ERR_IO;
	struct stat st;
	if (fstat(fd, &st)) {
		rc = COFFER_ERR_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		rc = COFFER_ERR_FORBIDDEN;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = COFFER_ERR_TOO_LARGE;
		goto out;
	}
	rc = secret_new((size_t)st.st_size, &s);
	if (rc)
		goto out;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, secret_bytes(s) + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = COFFER_ERR_IO;
			goto out;
		}
		got += (size_t)r;
	}
	*out = s;
	s = NULL;
out:
	secret_free(s);
	close(fd);
	return rc;
}

/* 1 if s[0..len) is lower- or upper-case hex. */
static int all_hex(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	return 1;
}

enum coffer_err fs_read_hex_text(const char *path, size_t len, struct secret **out)
{
	struct secret *text = NULL;
	enum coffer_err rc = fs_read_private(path, FS_HEX_KEY_FILE_MAX, &text);
	if (rc)
		return rc;
	size_t n = secret_len(text);
	while (n && (secret_cbytes(text)[n - 1] == '\n' || secret_cbytes(text)[n - 1] == '\r'))
		n--;
	rc = secret_truncate(text, n);
	if (!rc && (n != HEX_LEN(len) || !all_hex(secret_cbytes(text), n)))
		rc = COFFER_ERR_INVALID;
	if (rc) {
		secret_free(text);
		return rc;
	}
	*out = text;
	return COFFER_OK;
}

enum coffer_err fs_read_hex_key(const char *path, size_t len, struct secret **out)
{
	struct secret *text = NULL, *key = NULL;
	enum coffer_err rc = fs_read_hex_text(path, len, &text);
	if (!rc)
		rc = secret_new(len, &key);
	if (!rc && hex_decode((const char *)secret_cbytes(text), secret_len(text), secret_bytes(key), len))
		rc = COFFER_ERR_INVALID;
	secret_free(text);
	if (rc) {
		secret_free(key);
		return rc;
	}
	*out = key;
	return COFFER_OK;
}

enum coffer_err fs_mkdir_p(const char *path, mode_t mode)
{
	char p[4096];
	struct stat st;
	if (str_copy(p, sizeof(p), path))
		return COFFER_ERR_TOO_LARGE;
	if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
		return COFFER_OK; /* there already (every boot's case): one call, not one mkdir per component */
	for (char *s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) && errno != EEXIST)
			return COFFER_ERR_IO;
		*s = c;
		if (!c)
			break;
	}
	if (stat(p, &st) || !S_ISDIR(st.st_mode))
		return COFFER_ERR_IO;
	return COFFER_OK;
}

enum coffer_err fs_disable_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };
	if (setrlimit(RLIMIT_CORE, &rl))
		return COFFER_ERR_IO;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		return COFFER_ERR_IO;
	return COFFER_OK;
}

const char *fs_target_why(const char *path, size_t len)
{
	size_t comps = 0;
	if (len == 0 || path[0] != '/')
		return "must be an absolute path";
	if (len > FS_TARGET_PATH_MAX)
		return "is longer than 255 bytes";
	for (size_t i = 1, start = 1; i <= len; i++) {
		if (i < len && path[i] != '/') {
			char c = path[i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			      c == '_' || c == '-'))
				return "may hold only letters, digits, '.', '_', '-' and '/'";
			continue;
		}
		size_t n = i - start;
		if (n == 0)
			return "has an empty component (\"//\" or a final '/')";
		if ((n == 1 && path[start] == '.') || (n == 2 && path[start] == '.' && path[start + 1] == '.'))
			return "has a \".\" or \"..\" component";
		comps++;
		start = i + 1;
	}
	if (comps < 2)
		return "must be in a folder other than \"/\"";
	return NULL;
}

int fs_target_mode_ok(unsigned mode)
{
	return (mode & ~FS_TARGET_MODE_MASK) == 0 && (mode & 0400u) != 0;
}
