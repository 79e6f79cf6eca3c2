/* Grouped syncs (common/fsutil.h): a group's files appear only at commit,
 * each with its bytes, in the order added; a kept path (named by content)
 * is never replaced; a group freed without a commit leaves no temporary
 * file; udfb_fsync_fds syncs every descriptor; udfb_mkdir_p makes a whole
 * path or finds it made. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "tmpfiles.h"
#include "common/fsutil.h"

static char *slurp(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	struct udfb_err err = UDFB_ERR_INIT;
	if (udfb_read_file(&text, &len, path, 1 << 20, &err) < 0)
		text = NULL;
	udfb_err_clear(&err);
	return text;
}

static void group(const char *dir)
{
	char *a = udfb_path_join(dir, "a"), *b = udfb_path_join(dir, "b"), *c = udfb_path_join(dir, "c");
	struct udfb_err err = UDFB_ERR_INIT;
	struct udfb_wgroup g;
	udfb_wgroup_init(&g);
	int rc = udfb_wgroup_add_bytes(&g, a, "alpha", 5, 0, &err);
	rc |= udfb_wgroup_add_bytes(&g, b, "beta", 4, 1, &err);
	CHECK(rc == 0 && g.n == 2, "two files added to a group");
	CHECK(!udfb_exists(a) && !udfb_exists(b) && count_temporaries(dir) == 2,
	      "before the commit neither is in place, both wait as temporary files");
	CHECK(udfb_wgroup_commit(&g, &err) == 0, "the group commits");
	udfb_wgroup_free(&g);
	char *ta = slurp(a), *tb = slurp(b);
	CHECK_STR(ta, "alpha", "the first file is in place with its bytes");
	CHECK_STR(tb, "beta", "the second too");
	CHECK(count_temporaries(dir) == 0, "no temporary file is left");
	free(ta);
	free(tb);

	/* keep: an existing path stays (its inode too); without keep it is replaced. */
	struct stat before, after;
	stat(b, &before);
	udfb_wgroup_init(&g);
	rc = udfb_wgroup_add_bytes(&g, b, "other", 5, 1, &err);
	rc |= udfb_wgroup_add_bytes(&g, a, "again", 5, 0, &err);
	rc |= rc == 0 ? udfb_wgroup_commit(&g, &err) : -1;
	udfb_wgroup_free(&g);
	stat(b, &after);
	tb = slurp(b);
	ta = slurp(a);
	CHECK(rc == 0 && before.st_ino == after.st_ino, "a kept path that exists is not replaced (same inode)");
	CHECK_STR(tb, "beta", "and keeps its bytes");
	CHECK_STR(ta, "again", "a path not kept is replaced");
	CHECK(count_temporaries(dir) == 0, "the kept file's temporary is removed");
	free(ta);
	free(tb);

	/* A finished temporary file taken over; a group freed uncommitted. */
	char *tmp = NULL;
	int fd;
	rc = udfb_mktemp(&tmp, &fd, dir, &err);
	rc |= write(fd, "gamma", 5) == 5 ? 0 : -1;
	close(fd);
	udfb_wgroup_init(&g);
	rc |= udfb_wgroup_add_tmp(&g, tmp, c, 1, &err);
	rc |= udfb_wgroup_commit(&g, &err);
	udfb_wgroup_free(&g);
	char *tc = slurp(c);
	CHECK(rc == 0 && !udfb_exists(tmp), "a finished temporary file goes in by commit");
	CHECK_STR(tc, "gamma", "with its bytes");
	free(tc);
	free(tmp);
	char *d = udfb_path_join(dir, "d");
	udfb_wgroup_init(&g);
	rc = udfb_wgroup_add_bytes(&g, d, "delta", 5, 0, &err);
	udfb_wgroup_free(&g);
	CHECK(rc == 0 && !udfb_exists(d) && count_temporaries(dir) == 0,
	      "a group freed without a commit puts nothing in place and leaves no temporary file");
	free(d);

	/* A missing temporary file is an error that leaves the group usable. */
	udfb_wgroup_init(&g);
	char *gone = udfb_path_join(dir, ".tmp-gone");
	rc = udfb_wgroup_add_tmp(&g, gone, c, 1, &err);
	CHECK(rc < 0 && err.msg && g.n == 0, "a missing temporary file is refused: %s", err.msg ? err.msg : "");
	udfb_err_clear(&err);
	CHECK(udfb_wgroup_commit(&g, &err) == 0, "and the group still commits");
	udfb_wgroup_free(&g);
	free(gone);
	free(a);
	free(b);
	free(c);
}

static void fds(const char *dir)
{
	struct udfb_err err = UDFB_ERR_INIT;
	int v[3];
	const char *what[3] = { "x", "y", "z" };
	int made = 0;
	for (int k = 0; k < 3; k++) {
		char *tmp = NULL;
		if (udfb_mktemp(&tmp, &v[k], dir, &err) == 0 && write(v[k], "x", 1) == 1)
			made++;
		unlink(tmp);
		free(tmp);
	}
	CHECK(made == 3 && udfb_fsync_fds(v, what, 3, &err) == 0, "udfb_fsync_fds syncs three files");
	for (int k = 0; k < 3; k++)
		close(v[k]);
	v[0] = -1;
	CHECK(udfb_fsync_fds(v, what, 1, &err) < 0 && err.msg && strstr(err.msg, "x"),
	      "a bad descriptor is an error naming it: %s", err.msg ? err.msg : "");
	udfb_err_clear(&err);
}

static void mkdirs(const char *dir)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char *deep = udfb_path_join(dir, "p/q/r");
	CHECK(udfb_mkdir_p(deep, 0755, &err) == 0 && udfb_exists(deep), "udfb_mkdir_p makes a whole path");
	CHECK(udfb_mkdir_p(deep, 0755, &err) == 0, "and finds it made");
	char *file = udfb_path_join(dir, "a/x");
	CHECK(udfb_mkdir_p(file, 0755, &err) < 0 && err.msg, "a file in the way is an error: %s",
	      err.msg ? err.msg : "");
	udfb_err_clear(&err);
	free(deep);
	free(file);
}

int main(void)
{
	char tmpl[] = "/tmp/udfb-fsutil-test.XXXXXX";
	if (!mkdtemp(tmpl))
		return 2;
	group(tmpl);
	fds(tmpl);
	mkdirs(tmpl);
	udfb_rm_rf(tmpl);
	return check_done();
}
