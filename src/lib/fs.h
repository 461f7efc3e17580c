/*
 * fs.h — file helpers: atomic writes with the mode set at creation, bounded
 * reads, and reads of private key files.
 */
#ifndef COFFER_FS_H
#define COFFER_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "secret.h"

/*
 * Writes data to path atomically: a temporary file beside it is created with
 * `mode` (O_EXCL, never chmod-ed afterwards), written, fsync-ed, renamed over
 * path, and the folder fsync-ed. COFFER_ERR_CONFLICT if `exclusive` and path
 * exists.
 */
COFFER_MUST_CHECK enum coffer_err fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
						  int exclusive);
/* Writes all of data to fd, retrying short writes and EINTR. */
COFFER_MUST_CHECK enum coffer_err fs_write_all(int fd, const void *data, size_t len);
/* Reads a whole file into b (which is reset first); at most b->max bytes. */
COFFER_MUST_CHECK enum coffer_err fs_read_file(const char *path, struct buf *b);
/*
 * Reads a key file straight into secure memory. Refuses (COFFER_ERR_FORBIDDEN)
 * a file that is not a regular file or that group or others may read or write.
 */
COFFER_MUST_CHECK enum coffer_err fs_read_private(const char *path, size_t max, struct secret **out);

/*
 * Key files of one line of hex, as `keeper init` writes them: read as
 * fs_read_private reads them (at most FS_HEX_KEY_FILE_MAX bytes, so len is
 * at most half of it), final newlines and CRs dropped; what is left must be
 * exactly HEX_LEN(len) hex digits, either case, else COFFER_ERR_INVALID.
 * fs_read_hex_key gives the len bytes they stand for, fs_read_hex_text the
 * hex itself (a credential that is shown as written). The text read is
 * wiped; *out is written only on success.
 */
#define FS_HEX_KEY_FILE_MAX 256
COFFER_MUST_CHECK enum coffer_err fs_read_hex_key(const char *path, size_t len, struct secret **out);
COFFER_MUST_CHECK enum coffer_err fs_read_hex_text(const char *path, size_t len, struct secret **out);
/* mkdir -p with the given mode for the folders it creates. */
COFFER_MUST_CHECK enum coffer_err fs_mkdir_p(const char *path, mode_t mode);
/*
 * Where a release may put a secret as a file (docs/RUNPATH.md "Secrets as
 * files"): an absolute path of at most FS_TARGET_PATH_MAX bytes, made of
 * [A-Za-z0-9._-] components, none empty, "." or "..", in a folder other
 * than "/". fs_target_why gives NULL for such a path, else why not (a
 * constant text to say after the path). A file's mode may have only the
 * bits of FS_TARGET_MODE_MASK and must let its owner read it.
 */
#define FS_TARGET_PATH_MAX 255
#define FS_TARGET_MODE_MASK 0640u
#define FS_TARGET_MODE_DEFAULT 0400u
const char *fs_target_why(const char *path, size_t len);
int fs_target_mode_ok(unsigned mode);

/* Turns off core dumps for this process (RLIMIT_CORE 0, PR_SET_DUMPABLE 0). */
COFFER_MUST_CHECK enum coffer_err fs_disable_core_dumps(void);

#endif
