/*
 * The project file (src/cli/project.c), the coffer.toml a user's folder
 * holds. Properties: a file is taken or refused, never more; refused, the
 * message names the file and a line within the input; taken, the app fits
 * its limit, the command is a non-empty array of strings, count and grace
 * are unset (-1) or within their limits.
 */
#include "fuzz.h"
#include "project.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct project p;
	char why[PROJECT_WHY_SIZE];
	size_t lines = 1, line = 0;
	if (size > PROJECT_SIZE_MAX)
		return 0;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	enum coffer_err rc = project_parse("f", (const char *)data, size, &p, why);
	if (rc) {
		FUZZ_CHECK(rc == COFFER_ERR_INVALID || rc == COFFER_ERR_NOMEM);
		FUZZ_CHECK(rc == COFFER_ERR_NOMEM || (sscanf(why, "f:%zu: ", &line) == 1 && line >= 1 && line <= lines));
		FUZZ_CHECK(!p.command);
		return 0;
	}
	FUZZ_CHECK(strlen(p.app) < PROJECT_APP_MAX);
	FUZZ_CHECK(!p.command || (json_is_array(p.command) && json_array_size(p.command) > 0));
	for (size_t i = 0; p.command && i < json_array_size(p.command); i++)
		FUZZ_CHECK(json_is_string(json_array_get(p.command, i)));
	FUZZ_CHECK(p.count >= -1 && p.count <= 1000000);
	FUZZ_CHECK(p.grace_ms >= -1);
	project_release(&p);
	return 0;
}
