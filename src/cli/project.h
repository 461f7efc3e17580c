/*
 * project.h — the project file, `coffer.toml`, as fly.toml is to flyctl:
 * it names the app of the folder it is in (and of the folders under it),
 * and what `coffer deploy` runs, so that `coffer deploy` and `coffer
 * secrets set K=V` work there with no flags.
 *
 *   # coffer.toml
 *   app = "web"
 *
 *   [deploy]
 *   command = ["sh", "-c", "exec ./server"]
 *   count = 2
 *   grace = "30s"
 *   files = ["/run/secrets/tls.pem=TLS_CERT:0400"]
 *
 * It is found in the current folder or the nearest one above it, or given
 * with -c/--config FILE. The flags and COFFER_APP come first; the file
 * fills in what they leave out. The file is a subset of TOML: comments,
 * one [deploy] table, keys app (a string), command (an array of strings,
 * which may span lines), count (an integer), grace (a duration string:
 * "30s", "500ms", "2m") and files (an array of the specs of deploy's
 * --file, PATH=SECRET[:MODE]); strings in "..." (escapes \" \\ \n \t \r) or
 * '...'. Anything else — another key or table, a key given twice, a value
 * of another type — is an error naming the file and the line, never
 * silently ignored. A file of another user (root aside), or one that
 * group or others may write, is refused (COFFER_ERR_FORBIDDEN), as git
 * refuses a repository another user owns: it would choose the app and the
 * command that `coffer deploy` signs with the user's deployer key.
 *
 * Ownership: a struct project owns its command and files (json arrays); release it
 * with project_release.
 */
#ifndef COFFER_CLI_PROJECT_H
#define COFFER_CLI_PROJECT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define PROJECT_FILE "coffer.toml"
#define PROJECT_PATH_MAX 4096
#define PROJECT_SIZE_MAX ((size_t)64 << 10) /* bytes of a project file */
#define PROJECT_APP_MAX 64                  /* bytes of the app's name, NUL included */
#define PROJECT_WHY_SIZE 256
/* What the CLI takes for a release's count and grace, here and from `deploy` (the api sets the real limits and names them). */
#define DEPLOY_COUNT_MAX 1000000
#define DEPLOY_GRACE_MAX_MS ((uint64_t)7 * 24 * 3600 * 1000)

struct project {
	char path[PROJECT_PATH_MAX]; /* the file read; "" when there is none */
	char app[PROJECT_APP_MAX];   /* "" when not given */
	json_t *command;             /* [deploy] command, NULL when not given */
	json_t *files;               /* [deploy] files (strings as --file takes), NULL when not given */
	int64_t count;               /* [deploy] count, -1 when not given */
	int64_t grace_ms;            /* [deploy] grace, -1 when not given */
};

/*
 * Parses the project file text[0..len) (path names it in errors) into p.
 * COFFER_ERR_INVALID with why ("coffer.toml:3: ...") on a mistake.
 */
COFFER_MUST_CHECK enum coffer_err project_parse(const char *path, const char *text, size_t len, struct project *p,
						char why[PROJECT_WHY_SIZE]);

/*
 * The project file: path when not NULL (COFFER_ERR_NOT_FOUND if it is not
 * there), else coffer.toml in the current folder or the nearest above it
 * (none: COFFER_OK with p->path ""). Errors are in why.
 */
COFFER_MUST_CHECK enum coffer_err project_load(const char *path, struct project *p, char why[PROJECT_WHY_SIZE]);

void project_release(struct project *p);

#endif
