/*
 * endpoints.c — a list of base URLs and its current one (endpoints.h).
 */
#include "endpoints.h"

#include <pthread.h>
#include <string.h>

#include "buf.h"
#include "banned.h"

static int blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* One item of a list: [p, p + n) with its blanks and trailing '/' trimmed. */
static enum coffer_err add_url(struct endpoints *out, const char *p, size_t n)
{
	while (n && blank(*p)) {
		p++;
		n--;
	}
	while (n && blank(p[n - 1]))
		n--;
	while (n && p[n - 1] == '/')
		n--;
	if (n == 0)
		return COFFER_ERR_INVALID;
	if (out->n >= ENDPOINTS_MAX || n >= HTTP_CLIENT_URL_MAX)
		return COFFER_ERR_TOO_LARGE;
	if (!(n > 7 && strncmp(p, "http://", 7) == 0) && !(n > 8 && strncmp(p, "https://", 8) == 0))
		return COFFER_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f)
			return COFFER_ERR_INVALID;
	memcpy(out->url[out->n], p, n);
	out->url[out->n][n] = '\0';
	out->n++;
	return COFFER_OK;
}

enum coffer_err endpoints_parse(const char *list, struct endpoints *out)
{
	enum coffer_err rc = COFFER_OK;
	if (!list || !out)
		return COFFER_ERR_INVALID;
	out->n = 0;
	for (const char *p = list; !rc;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		rc = add_url(out, p, n);
		if (!comma)
			break;
		p = comma + 1;
	}
	if (rc)
		out->n = 0;
	return rc;
}

/* ---- the current URL of each list, process-wide ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char list[HTTP_CLIENT_URL_MAX];
	size_t current;
} lists[ENDPOINTS_LISTS_MAX];
static size_t n_lists;

/* The entry of list, or -1; under mu. */
static long find(const char *list)
{
	for (size_t i = 0; i < n_lists; i++)
		if (strcmp(lists[i].list, list) == 0)
			return (long)i;
	return -1;
}

size_t endpoints_current(const char *list, size_t n)
{
	size_t cur = 0;
	if (!list || n == 0)
		return 0;
	pthread_mutex_lock(&mu);
	long i = find(list);
	if (i >= 0)
		cur = lists[i].current;
	pthread_mutex_unlock(&mu);
	return cur < n ? cur : 0;
}

void endpoints_set_current(const char *list, size_t cur)
{
	if (!list || strlen(list) >= HTTP_CLIENT_URL_MAX)
		return;
	pthread_mutex_lock(&mu);
	long i = find(list);
	if (i < 0 && n_lists < ENDPOINTS_LISTS_MAX && str_copy(lists[n_lists].list, HTTP_CLIENT_URL_MAX, list) == 0)
		i = (long)n_lists++;
	if (i >= 0)
		lists[i].current = cur;
	pthread_mutex_unlock(&mu);
}

int endpoints_try_next(enum endpoints_outcome o, int resendable)
{
	switch (o) {
	case ENDPOINTS_NOT_SENT:
		return 1;
	case ENDPOINTS_NO_ANSWER:
	case ENDPOINTS_ANSWERED_UNAVAILABLE:
		return resendable;
	case ENDPOINTS_ANSWERED:
	default:
		return 0;
	}
}
