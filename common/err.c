/* Error values: see err.h and docs/errors.md. */
#include "common/err.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

static char *vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	char *s = udfb_malloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	/* Messages are one line: a newline from user data must not split them. */
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return s;
}

int udfb_err_set(struct udfb_err *err, enum udfb_errcat cat, const char *fmt, ...)
{
	assert(err && err->msg == NULL && cat != UDFB_E_OK);
	va_list ap;
	va_start(ap, fmt);
	err->msg = vformat(fmt, ap);
	va_end(ap);
	err->cat = cat;
	err->sys_errno = 0;
	return -1;
}

enum udfb_errcat udfb_errno_cat(int errnum)
{
	return errnum == ENOENT ? UDFB_E_NOTFOUND : UDFB_E_INTERNAL;
}

static int vsys(struct udfb_err *err, enum udfb_errcat cat, int errnum, const char *fmt, va_list ap)
{
	char *what = vformat(fmt, ap);
	udfb_err_set(err, cat, "%s: %s", what, strerror(errnum));
	free(what);
	err->sys_errno = errnum;
	return -1;
}

int udfb_err_sys(struct udfb_err *err, int errnum, const char *fmt, ...)
{
	assert(err && err->msg == NULL);
	va_list ap;
	va_start(ap, fmt);
	vsys(err, udfb_errno_cat(errnum), errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int udfb_err_sys_as(struct udfb_err *err, enum udfb_errcat cat, int errnum, const char *fmt, ...)
{
	assert(err && err->msg == NULL && cat != UDFB_E_OK);
	va_list ap;
	va_start(ap, fmt);
	vsys(err, cat, errnum, fmt, ap);
	va_end(ap);
	return -1;
}

int udfb_err_wrap(struct udfb_err *err, const char *fmt, ...)
{
	assert(err && err->msg);
	va_list ap;
	va_start(ap, fmt);
	char *ctx = vformat(fmt, ap);
	va_end(ap);
	size_t n = strlen(ctx) + strlen(err->msg) + 3;
	char *s = udfb_malloc(n);
	snprintf(s, n, "%s: %s", ctx, err->msg);
	free(ctx);
	free(err->msg);
	err->msg = s;
	return -1;
}

void udfb_err_clear(struct udfb_err *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->cat = UDFB_E_OK;
	err->sys_errno = 0;
}

void udfb_err_move(struct udfb_err *dst, struct udfb_err *src)
{
	assert(dst->msg == NULL);
	*dst = *src;
	src->msg = NULL;
	src->cat = UDFB_E_OK;
	src->sys_errno = 0;
}

/* The one table from category to gRPC status code and CLI exit status. */
static const struct {
	const char *name;
	int grpc;
	int exit_code;
} cat_table[] = {
	[UDFB_E_OK] = { "ok", 0, 0 },
	[UDFB_E_INVALID] = { "invalid", 3 /* INVALID_ARGUMENT */, 2 },
	[UDFB_E_NOTFOUND] = { "not-found", 5 /* NOT_FOUND */, 1 },
	[UDFB_E_UNAVAILABLE] = { "unavailable", 14 /* UNAVAILABLE */, 1 },
	[UDFB_E_DEADLINE] = { "deadline", 4 /* DEADLINE_EXCEEDED */, 1 },
	[UDFB_E_EXHAUSTED] = { "exhausted", 8 /* RESOURCE_EXHAUSTED */, 1 },
	[UDFB_E_UNSUPPORTED] = { "unsupported", 12 /* UNIMPLEMENTED */, 1 },
	[UDFB_E_INTERNAL] = { "internal", 13 /* INTERNAL */, 1 },
	[UDFB_E_DENIED] = { "denied", 7 /* PERMISSION_DENIED */, 1 },
	[UDFB_E_EXISTS] = { "exists", 6 /* ALREADY_EXISTS */, 1 },
	[UDFB_E_PRECONDITION] = { "precondition", 9 /* FAILED_PRECONDITION */, 1 },
};

const char *udfb_errcat_name(enum udfb_errcat cat)
{
	return cat_table[cat].name;
}

int udfb_errcat_grpc_status(enum udfb_errcat cat)
{
	return cat_table[cat].grpc;
}

int udfb_errcat_exit_code(enum udfb_errcat cat)
{
	return cat_table[cat].exit_code;
}
