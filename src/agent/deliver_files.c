/*
 * deliver_files.c — the delivery mode "file": each secret routed to it is
 * a file at its delivery's target, which the machine reads and nothing
 * else sees (docs/RUNPATH.md "Secrets as files").
 *
 * Where the bytes live: prepare mounts a tmpfs (memory, never a disk;
 * DELIVER_FILES_TMPFS_OPTS: small, nosuid, nodev, noexec, its root 0700
 * and owned by the machine's user) at spec->secrets_dir
 * (STATE/machines/<id>/secrets), makes one folder in it per target folder
 * ("0", "1", ...: 0500, the machine's user) and writes each file there
 * (created exclusively, owned by the machine's user, its mode).
 *
 * How the machine sees them at their targets: apply_in_child, in the
 * child before the privilege drop, gives the machine a mount namespace of
 * its own (unshare CLONE_NEWNS, "/" made a slave so nothing it mounts goes
 * back to the host) and binds each tmpfs folder over its target folder,
 * read-only. Only the machine and its children see /run/secrets/tls.pem;
 * the host's /run/secrets is an empty folder prepare made if it was
 * missing. The target folder is replaced in the machine's view: it shows
 * the machine's secret files and nothing else (hence a folder of its own,
 * /run/secrets, and no nesting: release_config_check). Binding needs the
 * agent to be root (CAP_SYS_ADMIN), which it is when machines run as
 * another user; an agent that is not root refuses the mode. The other
 * way — targets only under a folder named by $COFFER_SECRETS_DIR — would
 * need no namespace, but the path a program reads its certificate from
 * would be the agent's choice, not the deploy's.
 *
 * The end (cleanup, or deliver_files_sweep for a machine an earlier agent
 * started): every file is overwritten with zeros and unlinked, the tmpfs
 * unmounted and its folder removed. The machine's namespace ends with its
 * last process, taking its binds with it.
 */
#include "deliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "fs.h"

#include "banned.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

#define FILES_MAX 16                          /* as RELEASE_FILES_MAX */
#define FILES_BYTES_MAX ((size_t)1 << 20)     /* all the files' bytes: 16 values of 64 KiB */
#define FILES_TMPFS_SIZE "2m"                 /* the bytes and the inodes' pages, with room */
#define FILES_FOLDER_MODE 0500
#define FILES_PATH_SIZE (PATH_MAX)
#define FILES_OPTS_SIZE 96
#define ZERO_CHUNK 4096

struct files_state {
	char dir[FILES_PATH_SIZE];                        /* the tmpfs */
	size_t n_folders;
	char target[FILES_MAX][FS_TARGET_PATH_MAX + 1];   /* each target folder */
	char source[FILES_MAX][FILES_PATH_SIZE];          /* its folder on the tmpfs */
};

/* Overwrites the regular file `name` of folder fd with zeros and unlinks it. */
static void zero_unlink(int dfd, const char *name)
{
	static const unsigned char zeros[ZERO_CHUNK];
	struct stat st;
	int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			for (off_t done = 0; done < st.st_size;) {
				size_t n = (size_t)(st.st_size - done) < sizeof(zeros) ? (size_t)(st.st_size - done)
											: sizeof(zeros);
				ssize_t w = pwrite(fd, zeros, n, done);
				if (w <= 0)
					break;
				done += w;
			}
			(void)fdatasync(fd);
		}
		close(fd);
	}
	(void)unlinkat(dfd, name, 0);
}

/* Zeroes and removes what folder fd holds, one level of folders deep. */
static void empty_folder(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *e;
	if (!d) {
		close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (e->d_type == DT_DIR && depth == 0) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				empty_folder(sub, 1);
			(void)unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		} else {
			zero_unlink(dirfd(d), e->d_name);
		}
	}
	closedir(d);
}

/* 1 if path is the root of a tmpfs. */
static int is_tmpfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)TMPFS_MAGIC;
}

void deliver_files_sweep(const char *dir)
{
	if (!dir || !is_tmpfs(dir))
		return; /* never mounted here, or gone: nothing of ours to remove */
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		empty_folder(fd, 0);
	(void)umount2(dir, MNT_DETACH);
	(void)rmdir(dir);
}

/* The folder of target (its first len bytes) in st, added when new; its index in *k. */
static enum coffer_err folder_of(struct files_state *st, const char *target, size_t *k)
{
	size_t len = (size_t)(strrchr(target, '/') - target);
	for (size_t i = 0; i < st->n_folders; i++) {
		if (strlen(st->target[i]) == len && memcmp(st->target[i], target, len) == 0) {
			*k = i;
			return COFFER_OK;
		}
	}
	if (st->n_folders == FILES_MAX)
		return COFFER_ERR_TOO_LARGE;
	memcpy(st->target[st->n_folders], target, len);
	st->target[st->n_folders][len] = '\0';
	if (fmt_into(st->source[st->n_folders], FILES_PATH_SIZE, "%s/%zu", st->dir, st->n_folders))
		return COFFER_ERR_INVALID;
	*k = st->n_folders++;
	return COFFER_OK;
}

static enum coffer_err fail(struct machine_error *err, const char *what, const char *subject, int e,
			    enum coffer_err rc)
{
	machine_error_set(err, what, subject, e);
	return rc;
}

/* Every item's target and mode, and what they add up to, before anything is made. */
static enum coffer_err items_check(const struct deliver_item *items, size_t n, struct machine_error *err)
{
	size_t bytes = 0;
	if (n > FILES_MAX)
		return fail(err, "more secret files than 16", NULL, 0, COFFER_ERR_TOO_LARGE);
	for (size_t i = 0; i < n; i++) {
		const char *t = items[i].target;
		unsigned perm = items[i].perm ? items[i].perm : FS_TARGET_MODE_DEFAULT;
		if (!t || fs_target_why(t, strlen(t)))
			return fail(err, "a bad target for the file of secret", items[i].name, 0, COFFER_ERR_INVALID);
		if (!fs_target_mode_ok(perm))
			return fail(err, "a bad mode for the file of secret", items[i].name, 0, COFFER_ERR_INVALID);
		for (size_t j = 0; j < i; j++)
			if (strcmp(items[j].target, t) == 0)
				return fail(err, "two secret files at", t, 0, COFFER_ERR_INVALID);
		if ((bytes += secret_len(items[i].value)) > FILES_BYTES_MAX)
			return fail(err, "the secret files are too large", NULL, 0, COFFER_ERR_TOO_LARGE);
	}
	return COFFER_OK;
}

/* Writes one file: created exclusively in folder dfd, owned by uid:gid, mode perm. */
static enum coffer_err write_file(int dfd, const char *name, const struct secret *v, uid_t uid, gid_t gid,
				  unsigned perm)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	enum coffer_err rc = COFFER_OK;
	if (fd < 0)
		return COFFER_ERR_IO;
	/* the folder is the machine user's alone and 0500; the mode is set whatever the agent's umask */
	if (fchown(fd, uid, gid) || fchmod(fd, (mode_t)perm))
		rc = COFFER_ERR_IO;
	if (!rc)
		rc = fs_write_all(fd, secret_cbytes(v), secret_len(v));
	if (close(fd) && !rc)
		rc = COFFER_ERR_IO;
	return rc;
}

static enum coffer_err files_prepare(const struct deliver_ctx *ctx, const struct deliver_item *items, size_t n,
				     struct deliver_prep *out, struct machine_error *err)
{
	const char *dir = ctx->spec->secrets_dir;
	struct files_state *st = NULL;
	char opts[FILES_OPTS_SIZE], folder[FILES_PATH_SIZE];
	int mounted = 0, dfd = -1;
	enum coffer_err rc = items_check(items, n, err);

	if (rc)
		return rc;
	if (!dir || dir[0] != '/')
		return fail(err, "no folder for the secret files", NULL, 0, COFFER_ERR_INVALID);
	if (geteuid() != 0 || !ctx->drop)
		return fail(err, "secrets as files need an agent that runs as root (it mounts them)", NULL, 0,
			    COFFER_ERR_FORBIDDEN);
	st = calloc(1, sizeof(*st));
	if (!st)
		return COFFER_ERR_NOMEM;
	if (str_copy(st->dir, sizeof(st->dir), dir) ||
	    fmt_into(opts, sizeof(opts), "size=%s,mode=0700,uid=%u,gid=%u", FILES_TMPFS_SIZE, (unsigned)ctx->uid,
		     (unsigned)ctx->gid)) {
		rc = fail(err, "the folder of the secret files is too long", NULL, 0, COFFER_ERR_INVALID);
		goto out;
	}
	deliver_files_sweep(dir); /* what a machine of an earlier start may have left */
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = fail(err, "cannot make the folder of the secret files", NULL, errno, COFFER_ERR_IO);
		goto out;
	}
	if (mount("coffer-secrets", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) != 0) {
		rc = fail(err, "cannot mount a tmpfs for the secret files", NULL, errno, COFFER_ERR_IO);
		goto out;
	}
	mounted = 1;
	if (!is_tmpfs(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		rc = fail(err, "the folder of the secret files is not a tmpfs", NULL, 0, COFFER_ERR_IO);
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		size_t k;
		int sub;
		char name[FS_TARGET_PATH_MAX + 1];
		rc = folder_of(st, items[i].target, &k);
		if (rc) {
			rc = fail(err, "too many folders of secret files", NULL, 0, rc);
			break;
		}
		if (fmt_into(name, sizeof(name), "%zu", k) ||
		    (mkdirat(dfd, name, FILES_FOLDER_MODE) != 0 && errno != EEXIST) ||
		    fchownat(dfd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = fail(err, "cannot make a folder for the secret files", NULL, errno, COFFER_ERR_IO);
			break;
		}
		/* the mount point the namespace binds over, on the host: an empty folder if it was missing */
		if (str_copy(folder, sizeof(folder), st->target[k]) || fs_mkdir_p(folder, 0755)) {
			rc = fail(err, "cannot make the folder of", items[i].target, errno, COFFER_ERR_IO);
			break;
		}
		sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		rc = sub < 0 ? COFFER_ERR_IO
			     : write_file(sub, strrchr(items[i].target, '/') + 1, items[i].value, ctx->uid, ctx->gid,
					  items[i].perm ? items[i].perm : FS_TARGET_MODE_DEFAULT);
		if (sub >= 0)
			close(sub);
		if (rc)
			rc = fail(err, "cannot write the file of secret", items[i].name, errno, rc);
	}
out:
	if (dfd >= 0)
		close(dfd);
	if (rc) {
		if (mounted)
			deliver_files_sweep(dir);
		free(st);
		return rc;
	}
	*out = (struct deliver_prep){ .state = st };
	return COFFER_OK;
}

/* In the child (async-signal-safe calls only): its own mount namespace, each folder bound read-only. */
static int files_apply_in_child(const struct deliver_prep *prep)
{
	const struct files_state *st = prep->state;
	if (unshare(CLONE_NEWNS) != 0)
		return errno;
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
		return errno;
	for (size_t i = 0; i < st->n_folders; i++) {
		if (mount(st->source[i], st->target[i], NULL, MS_BIND, NULL) != 0)
			return errno;
		if (mount(NULL, st->target[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) != 0)
			return errno;
	}
	/* the machine sees its files at their targets only */
	(void)umount2(st->dir, MNT_DETACH);
	return 0;
}

static void files_cleanup(void *state)
{
	struct files_state *st = state;
	if (!st)
		return;
	deliver_files_sweep(st->dir);
	free(st);
}

const struct deliver_mode deliver_files = {
	.name = "file",
	.prepare = files_prepare,
	.apply_in_child = files_apply_in_child,
	.cleanup = files_cleanup,
};
