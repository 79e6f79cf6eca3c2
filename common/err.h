/* One error convention for the whole project (docs/errors.md).
 *
 * A fallible function returns int: 0 on success, -1 on failure, and fills its
 * last parameter, a struct udfb_err *, with a category and a one-line message
 * that names the object that failed.  Callers going up add context once with
 * udfb_err_wrap(); nobody rewords a lower message.  The category alone decides
 * the gRPC status and the CLI exit code, in one table in err.c.
 *
 * A failed system call keeps its errno (sys_errno) beside the text, so a
 * caller decides by category and errno (ENOENT: try the next source;
 * EADDRINUSE: take other ports), never by reading the message. */
#ifndef UDFB_ERR_H
#define UDFB_ERR_H

#include <stdarg.h>

enum udfb_errcat {
	UDFB_E_OK = 0,
	UDFB_E_INVALID, /* the caller's input is wrong: spec, request, requirement */
	UDFB_E_NOTFOUND, /* a named thing does not exist: image tag, store entry */
	UDFB_E_UNAVAILABLE, /* a peer or the network failed; retrying may help */
	UDFB_E_DEADLINE, /* ran out of time */
	UDFB_E_EXHAUSTED, /* a limit was reached: size, count */
	UDFB_E_UNSUPPORTED, /* valid, but this build cannot do it */
	UDFB_E_INTERNAL, /* a bug, a corrupt store, a failed syscall */
	UDFB_E_DENIED, /* the caller may not do this (its identity is known; another tenant's worker) */
	UDFB_E_EXISTS, /* it exists already: a worker with another script */
	UDFB_E_PRECONDITION, /* not in a state that allows it: a suspended worker */
};

struct udfb_err {
	enum udfb_errcat cat;
	char *msg; /* malloc'd, one line, NULL when cat == UDFB_E_OK */
	int sys_errno; /* the errno behind it (udfb_err_sys), else 0; kept by wrap and move */
};

#define UDFB_ERR_INIT              \
	{                          \
		UDFB_E_OK, NULL, 0 \
	}

/* Set *err (which must be clear) and return -1. */
int udfb_err_set(struct udfb_err *err, enum udfb_errcat cat, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Same, with ": strerror(errnum)" appended; the category is
 * udfb_errno_cat(errnum) and sys_errno keeps errnum. */
int udfb_err_sys(struct udfb_err *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* udfb_err_sys with the category the caller knows better (a helper program
 * that is not installed is UNSUPPORTED, not NOTFOUND); sys_errno keeps errnum. */
int udfb_err_sys_as(struct udfb_err *err, enum udfb_errcat cat, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The category of a failed system call: ENOENT is NOTFOUND, any other
 * errno INTERNAL (docs/errors.md). */
enum udfb_errcat udfb_errno_cat(int errnum);
/* Prefix context to an existing error: "<context>: <msg>"; returns -1. */
int udfb_err_wrap(struct udfb_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void udfb_err_clear(struct udfb_err *err);
/* Move src into dst (dst must be clear); src becomes clear. */
void udfb_err_move(struct udfb_err *dst, struct udfb_err *src);

const char *udfb_errcat_name(enum udfb_errcat cat);
int udfb_errcat_grpc_status(enum udfb_errcat cat);
int udfb_errcat_exit_code(enum udfb_errcat cat);

#endif
