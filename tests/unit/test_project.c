/*
 * The project file (src/cli/project.c): what it takes, and each mistake
 * refused with the file and line named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "project.h"

static enum coffer_err parse(const char *text, struct project *p, char *why)
{
	return project_parse("coffer.toml", text, strlen(text), p, why);
}

static void test_full_file(void **state)
{
	(void)state;
	struct project p;
	char why[PROJECT_WHY_SIZE];
	assert_int_equal(parse("# the project\n"
			       "app = \"web\"   # its name\n"
			       "\n"
			       "[deploy]\n"
			       "command = [\"sh\", '-c',   # split over lines\n"
			       "  \"echo \\\"up\\\"; exec sleep 3600\",\n"
			       "]\n"
			       "count = 3\r\n"
			       "grace = \"1m30s\"\n"
			       "files = [\"/run/secrets/tls.pem=TLS_CERT\", '/run/secrets/k=KEY:0440']",
			       &p, why),
			 COFFER_OK);
	assert_string_equal(p.app, "web");
	assert_int_equal(json_array_size(p.command), 3);
	assert_string_equal(json_string_value(json_array_get(p.command, 0)), "sh");
	assert_string_equal(json_string_value(json_array_get(p.command, 1)), "-c");
	assert_string_equal(json_string_value(json_array_get(p.command, 2)), "echo \"up\"; exec sleep 3600");
	assert_int_equal(p.count, 3);
	assert_int_equal(p.grace_ms, 90000);
	assert_int_equal(json_array_size(p.files), 2);
	assert_string_equal(json_string_value(json_array_get(p.files, 1)), "/run/secrets/k=KEY:0440");
	project_release(&p);
}

static void test_only_app(void **state)
{
	(void)state;
	struct project p;
	char why[PROJECT_WHY_SIZE];
	assert_int_equal(parse("app = 'api-2'\n", &p, why), COFFER_OK);
	assert_string_equal(p.app, "api-2");
	assert_null(p.command);
	assert_null(p.files);
	assert_int_equal(p.count, -1);
	assert_int_equal(p.grace_ms, -1);
	project_release(&p);
	assert_int_equal(parse("", &p, why), COFFER_OK);
	assert_string_equal(p.app, "");
}

static void refused(const char *text, const char *why_want)
{
	struct project p;
	char why[PROJECT_WHY_SIZE];
	assert_int_equal(parse(text, &p, why), COFFER_ERR_INVALID);
	assert_string_equal(why, why_want);
	assert_null(p.command);
}

static void test_mistakes_name_the_line(void **state)
{
	(void)state;
	refused("app = \"web\"\nname = \"x\"\n", "coffer.toml:2: unknown key 'name' (known: app, and the table [deploy])");
	refused("[deploy]\napp = \"web\"\n", "coffer.toml:2: unknown key 'app' in [deploy] (known: command, count, files, grace)");
	refused("[deploy]\nfiles = \"/run/secrets/x=X\"\n",
		"coffer.toml:2: files must be an array of strings, such as [\"/run/secrets/tls.pem=TLS_CERT:0400\"]");
	refused("[deploy]\nfiles = [\"/a/x=X\"]\nfiles = [\"/a/y=Y\"]\n", "coffer.toml:3: files is given twice");
	refused("[deploy]\nfiles = []\n", "coffer.toml:2: files is empty");
	refused("[build]\n", "coffer.toml:1: unknown table [build] (known: [deploy])");
	refused("[deploy]\n[deploy]\n", "coffer.toml:2: the table [deploy] is given twice");
	refused("app = \"a\"\napp = \"b\"\n", "coffer.toml:2: app is given twice");
	refused("app = web\n", "coffer.toml:1: expected a string in \"...\" or '...'");
	refused("app = \"web\n", "coffer.toml:1: a string runs past the end of its line");
	refused("app = \"web\" x\n", "coffer.toml:1: unexpected text after the value");
	refused("app \"web\"\n", "coffer.toml:1: expected '=' after the key 'app'");
	refused("app = \"\"\n", "coffer.toml:1: app must be an app's name (1 to 63 characters)");
	refused("app = \"w\\qb\"\n", "coffer.toml:1: an unknown escape in a string (\\\" \\\\ \\n \\t \\r are known)");
	refused("\n[deploy]\ncommand = \"./server\"\n",
		"coffer.toml:3: command must be an array of strings, such as [\"sh\", \"-c\", \"exec ./server\"]");
	refused("[deploy]\ncommand = []\n", "coffer.toml:2: command is empty");
	refused("[deploy]\ncommand = [\"a\"\n\"b\"]\n", "coffer.toml:3: expected ',' or ']' in command");
	refused("[deploy]\ncommand = [\"a\",\n", "coffer.toml:3: expected a string in \"...\" or '...'");
	refused("[deploy]\ncount = -1\n", "coffer.toml:2: count must be a whole number from 0 to 1000000");
	refused("[deploy]\ncount = 2x\n", "coffer.toml:2: count must be a whole number from 0 to 1000000");
	refused("[deploy]\ngrace = \"30\"\n", "coffer.toml:2: grace must be a duration such as \"30s\", \"500ms\" or \"2m\"");
	refused("[deploy]\ngrace = 30\n", "coffer.toml:2: expected a string in \"...\" or '...'");
	refused("= \"x\"\n", "coffer.toml:1: expected a key (letters, digits, '_' or '-')");
}

static void test_load_finds_the_nearest_file(void **state)
{
	(void)state;
	char top[] = "/tmp/coffer-project.XXXXXX", sub[64], path[96], why[PROJECT_WHY_SIZE], old[4096];
	struct project p;
	FILE *f;
	assert_non_null(mkdtemp(top));
	snprintf(sub, sizeof(sub), "%s/a/b", top);
	snprintf(path, sizeof(path), "%s/a", top);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/coffer.toml", top);
	assert_non_null(f = fopen(path, "w"));
	fputs("app = \"top\"\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0644), 0); /* whatever the umask: only the owner writes it */
	assert_non_null(getcwd(old, sizeof(old)));
	assert_int_equal(chdir(sub), 0);
	assert_int_equal(project_load(NULL, &p, why), COFFER_OK);
	assert_string_equal(p.app, "top");
	assert_string_equal(p.path, path);
	project_release(&p);
	/* -c names another file; a missing one is an error */
	assert_int_equal(project_load("/nonexistent/coffer.toml", &p, why), COFFER_ERR_NOT_FOUND);
	assert_string_equal(why, "cannot read the project file /nonexistent/coffer.toml: no such file");
	/* a file others may write is refused (another user's, the same) */
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(project_load(NULL, &p, why), COFFER_ERR_FORBIDDEN);
	assert_non_null(strstr(why, "others may write it: refusing to take an app or a command from it"));
	assert_int_equal(chmod(path, 0644), 0);
	/* a broken file is reported with its path */
	assert_non_null(f = fopen(path, "w"));
	fputs("app = 1\n", f);
	fclose(f);
	assert_int_equal(project_load(NULL, &p, why), COFFER_ERR_INVALID);
	assert_non_null(strstr(why, "/coffer.toml:1: expected a string"));
	assert_int_equal(chdir(old), 0);
	unlink(path);
	snprintf(path, sizeof(path), "rm -rf %s", top);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_only_app),
		cmocka_unit_test(test_mistakes_name_the_line),
		cmocka_unit_test(test_load_finds_the_nearest_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
