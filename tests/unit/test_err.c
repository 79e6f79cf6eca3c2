/* The error convention (common/err.h, docs/errors.md): a failed system call
 * keeps its errno beside the text, ENOENT is NOTFOUND, context added going
 * up keeps both, and the one table maps each category to its gRPC status
 * and exit code. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/err.h"
#include "common/fsutil.h"

static void sys_errors(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_err_sys(&err, ENOENT, "open %s", "/x/y") == -1 && err.cat == UDFB_E_NOTFOUND &&
		      err.sys_errno == ENOENT,
	      "ENOENT is NOTFOUND and keeps its errno (%s)", udfb_errcat_name(err.cat));
	CHECK_STR(err.msg, "open /x/y: No such file or directory", "the message names the object, then strerror");
	CHECK(udfb_err_wrap(&err, "layer %s", "sha256:ab") == -1 && err.cat == UDFB_E_NOTFOUND &&
		      err.sys_errno == ENOENT,
	      "wrap keeps the category and the errno");
	CHECK_STR(err.msg, "layer sha256:ab: open /x/y: No such file or directory", "wrap adds context in front");
	struct udfb_err up = UDFB_ERR_INIT;
	udfb_err_move(&up, &err);
	CHECK(up.sys_errno == ENOENT && up.cat == UDFB_E_NOTFOUND && !err.msg && !err.sys_errno && err.cat == UDFB_E_OK,
	      "move carries the errno over and leaves the source clear");
	udfb_err_clear(&up);
	CHECK(!up.msg && !up.sys_errno && up.cat == UDFB_E_OK, "clear resets the errno");

	CHECK(udfb_err_sys(&err, EACCES, "open %s", "/x") == -1 && err.cat == UDFB_E_INTERNAL &&
		      err.sys_errno == EACCES,
	      "another errno is INTERNAL and is kept");
	udfb_err_clear(&err);
	CHECK(udfb_err_sys(&err, EADDRINUSE, "bind") == -1 && err.sys_errno == EADDRINUSE,
	      "EADDRINUSE is kept: a caller takes other ports by errno, not by text");
	udfb_err_clear(&err);
	CHECK(udfb_err_sys_as(&err, UDFB_E_UNSUPPORTED, ENOENT, "runtime %s", "runsc") == -1 &&
		      err.cat == UDFB_E_UNSUPPORTED && err.sys_errno == ENOENT,
	      "sys_as: the caller's category, the errno kept");
	udfb_err_clear(&err);
	CHECK(udfb_err_set(&err, UDFB_E_INVALID, "spec.handler: bad") == -1 && err.sys_errno == 0,
	      "an error that is no system call's has no errno");
	udfb_err_clear(&err);
	CHECK(udfb_errno_cat(ENOENT) == UDFB_E_NOTFOUND && udfb_errno_cat(EIO) == UDFB_E_INTERNAL &&
		      udfb_errno_cat(ENOSPC) == UDFB_E_INTERNAL,
	      "udfb_errno_cat: ENOENT NOTFOUND, the rest INTERNAL");
}

/* Through a real system call: a file written into a directory that is not
 * there fails NOTFOUND with ENOENT; one in a path under a regular file,
 * ENOTDIR, INTERNAL. */
static void real_calls(void)
{
	char dir[] = "/tmp/udfb-test-err-XXXXXX";
	CHECK(mkdtemp(dir) != NULL, "a scratch directory");
	char *missing = udfb_path_join(dir, "no/such/file");
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_write_file_atomic(missing, "x", 1, &err) < 0 && err.cat == UDFB_E_NOTFOUND &&
		      err.sys_errno == ENOENT && strstr(err.msg, dir),
	      "write into a missing directory: NOTFOUND, ENOENT, the directory named (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	char *file = udfb_path_join(dir, "f");
	CHECK(udfb_write_file_atomic(file, "x", 1, &err) == 0, "a file written");
	char *under = udfb_path_join(file, "g");
	CHECK(udfb_write_file_atomic(under, "x", 1, &err) < 0 && err.cat == UDFB_E_INTERNAL && err.sys_errno == ENOTDIR,
	      "write under a regular file: INTERNAL, ENOTDIR (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	unlink(file);
	rmdir(dir);
	free(missing);
	free(file);
	free(under);
}

static void one_line(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	udfb_err_set(&err, UDFB_E_INVALID, "imports[0].tag: '%s'", "a\nb\rc");
	CHECK_STR(err.msg, "imports[0].tag: 'a b c'", "a newline from user data does not split the message");
	udfb_err_clear(&err);
}

static void table(void)
{
	static const struct {
		enum udfb_errcat cat;
		int grpc, exit_code;
	} want[] = {
		{ UDFB_E_INVALID, 3, 2 },      { UDFB_E_NOTFOUND, 5, 1 },  { UDFB_E_UNAVAILABLE, 14, 1 },
		{ UDFB_E_DEADLINE, 4, 1 },     { UDFB_E_EXHAUSTED, 8, 1 }, { UDFB_E_UNSUPPORTED, 12, 1 },
		{ UDFB_E_INTERNAL, 13, 1 },    { UDFB_E_DENIED, 7, 1 },	   { UDFB_E_EXISTS, 6, 1 },
		{ UDFB_E_PRECONDITION, 9, 1 },
	};
	int ok = 1;
	for (size_t k = 0; k < sizeof(want) / sizeof(*want); k++)
		ok &= udfb_errcat_grpc_status(want[k].cat) == want[k].grpc &&
		      udfb_errcat_exit_code(want[k].cat) == want[k].exit_code && udfb_errcat_name(want[k].cat) != NULL;
	CHECK(ok, "each category maps to the gRPC status and exit code of docs/errors.md");
}

int main(void)
{
	sys_errors();
	real_calls();
	one_line();
	table();
	return check_done();
}
