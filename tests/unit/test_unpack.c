/* Layer unpacking (scheduler/unpack.c) and the overlay it feeds
 * (scheduler/bundle.c): whiteouts in overlayfs form, entries that try to
 * leave the root, setuid bits, device nodes, hard links, the digest check.
 * Needs root (ownership, whiteout devices, trusted xattrs); exits 77 without. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "scheduler/bundle.h"
#include "check.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "scheduler/unpack.h"

struct ent {
	const char *name;
	int type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 'h' for a hard link */
	int mode;
	const char *data; /* file content, link target */
};

static char *tmp_root;

static char *write_tar(const char *name, const struct ent *es, int gzip)
{
	char *path = udfb_path_join(tmp_root, name);
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	archive_write_open_filename(a, path);
	for (const struct ent *e = es; e->name; e++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->name);
		archive_entry_set_perm(ae, (mode_t)e->mode);
		archive_entry_set_mtime(ae, 1234567890, 0);
		if (e->type == 'h') {
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, e->data);
		} else {
			archive_entry_set_filetype(ae, (unsigned)e->type);
		}
		if (e->type == AE_IFLNK)
			archive_entry_set_symlink(ae, e->data);
		if (e->type == AE_IFCHR)
			archive_entry_set_rdev(ae, makedev(1, 3));
		if (e->type == AE_IFREG)
			archive_entry_set_size(ae, (la_int64_t)strlen(e->data ? e->data : ""));
		archive_write_header(a, ae);
		if (e->type == AE_IFREG && e->data)
			archive_write_data(a, e->data, strlen(e->data));
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

static char *fresh_dir(const char *name)
{
	char *d = udfb_path_join(tmp_root, name);
	mkdir(d, 0755);
	return d;
}

static int unpack(const char *tar, const char *dir, int check_digest, struct udfb_err *err)
{
	char digest[UDFB_DIGEST_LEN + 1];
	long long size;
	if (udfb_sha256_file(digest, &size, tar, err) < 0)
		return -1;
	return udfb_layer_unpack(tar, check_digest ? digest : NULL, dir, NULL, err);
}

static int exists_in(const char *dir, const char *rel)
{
	char *p = udfb_path_join(dir, rel);
	int r = udfb_exists(p);
	free(p);
	return r;
}

static void test_layer_forms(void)
{
	static const struct ent es[] = {
		{ "./", AE_IFDIR, 0755, NULL },
		{ "etc/", AE_IFDIR, 0755, NULL },
		{ "etc/passwd", AE_IFREG, 0644, "root:x:0:0\n" },
		{ "etc/.wh.shadow", AE_IFREG, 0644, "" },
		{ "opt/", AE_IFDIR, 0755, NULL },
		{ "opt/.wh..wh..opq", AE_IFREG, 0644, "" },
		{ "bin/su", AE_IFREG, 04755, "#!/bin/false\n" },
		{ "bin/sg", AE_IFREG, 02755, "x" },
		{ "dev/null", AE_IFCHR, 0666, NULL },
		{ "usr/bin/python3", AE_IFREG, 0755, "elf" },
		{ "usr/bin/python", 'h', 0755, "usr/bin/python3" },
		{ "lib", AE_IFLNK, 0777, "usr/lib" },
		{ "abs", AE_IFLNK, 0777, "/etc" },
		{ "/rooted/file", AE_IFREG, 0644, "ok" },
		{ NULL, 0, 0, NULL },
	};
	char *tar = write_tar("forms.tar.gz", es, 1);
	char *dir = fresh_dir("forms");
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = unpack(tar, dir, 1, &err);
	CHECK(rc == 0, "a layer unpacks (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	struct stat st;
	char *p = udfb_path_join(dir, "etc/shadow");
	CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
	      ".wh.shadow becomes the overlay whiteout: character device 0/0");
	free(p);
	CHECK(!exists_in(dir, "etc/.wh.shadow"), "the .wh. file itself is not written");
	p = udfb_path_join(dir, "opt");
	char v[4] = "";
	CHECK(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)) == 1 && v[0] == 'y',
	      ".wh..wh..opq becomes trusted.overlay.opaque=y on its directory");
	free(p);
	p = udfb_path_join(dir, "bin/su");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755, "setuid dropped (mode %o)", st.st_mode & 07777);
	free(p);
	p = udfb_path_join(dir, "bin/sg");
	CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755, "setgid dropped");
	CHECK(st.st_mtime == 1234567890, "mtime kept (Python's .pyc checks read it)");
	free(p);
	CHECK(!exists_in(dir, "dev/null"), "device nodes are skipped");
	char *a = udfb_path_join(dir, "usr/bin/python3"), *b = udfb_path_join(dir, "usr/bin/python");
	struct stat sa, sb;
	CHECK(stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino, "a hard link links within the layer");
	free(a);
	free(b);
	char target[64] = "";
	p = udfb_path_join(dir, "abs");
	CHECK(readlink(p, target, sizeof(target) - 1) > 0 && strcmp(target, "/etc") == 0,
	      "a symlink to an absolute path is kept as it is (read inside the sandbox only)");
	free(p);
	CHECK(exists_in(dir, "rooted/file"), "a leading / is read beneath the root");
	free(tar);
	free(dir);
}

static void expect_refused(const char *what, const struct ent *es, const char *needle, const char *outside)
{
	char *tar = write_tar("bad.tar", es, 0);
	char *dir = fresh_dir("bad");
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = unpack(tar, dir, 0, &err);
	CHECK(rc < 0 && err.msg && strstr(err.msg, needle), "%s: refused (%s)", what, err.msg ? err.msg : "accepted");
	if (outside)
		CHECK(!udfb_exists(outside), "%s: nothing written outside the root", what);
	udfb_err_clear(&err);
	udfb_rm_rf(dir);
	unlink(tar);
	free(tar);
	free(dir);
}

static void test_escapes(void)
{
	char *outside = udfb_path_join(tmp_root, "outside");
	mkdir(outside, 0755);
	char *victim = udfb_path_join(outside, "pwned");
	const struct ent dotdot[] = { { "../outside/pwned", AE_IFREG, 0644, "x" }, { NULL, 0, 0, NULL } };
	expect_refused("'..' in a name", dotdot, "leaves the root", victim);
	const struct ent inner[] = { { "a/../../outside/pwned", AE_IFREG, 0644, "x" }, { NULL, 0, 0, NULL } };
	expect_refused("'..' inside a name", inner, "leaves the root", victim);
	const struct ent via_link[] = { { "esc", AE_IFLNK, 0777, outside },
					{ "esc/pwned", AE_IFREG, 0644, "x" },
					{ NULL, 0, 0, NULL } };
	expect_refused("a file through a symlink", via_link, "symlink", victim);
	const struct ent rel_link[] = { { "esc", AE_IFLNK, 0777, "../outside" },
					{ "esc/pwned", AE_IFREG, 0644, "x" },
					{ NULL, 0, 0, NULL } };
	expect_refused("a file through a relative symlink", rel_link, "symlink", victim);
	const struct ent hard[] = { { "h", 'h', 0644, "../outside/pwned" }, { NULL, 0, 0, NULL } };
	expect_refused("a hard link out of the root", hard, "bad target", NULL);
	const struct ent wh[] = { { "x/.wh...", AE_IFREG, 0644, "" }, { NULL, 0, 0, NULL } };
	expect_refused("a whiteout of '..'", wh, "whiteout", NULL);
	free(victim);
	free(outside);
}

static void test_digest(void)
{
	const struct ent es[] = { { "f", AE_IFREG, 0644, "data" }, { NULL, 0, 0, NULL } };
	char *tar = write_tar("d.tar.gz", es, 1);
	char *dir = fresh_dir("d");
	struct udfb_err err = UDFB_ERR_INIT;
	const char *wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	int rc = udfb_layer_unpack(tar, wrong, dir, NULL, &err);
	CHECK(rc < 0 && err.cat == UDFB_E_INTERNAL && strstr(err.msg, "corrupt"),
	      "a blob that does not hash to its digest is refused");
	udfb_err_clear(&err);
	free(tar);
	free(dir);
}

/* Two layers through bundle.c, mounted as a sandbox's root. */
static void test_overlay(void)
{
	struct udfb_err err = UDFB_ERR_INIT;
	char *layers = udfb_path_join(tmp_root, "layers");
	if (udfb_layers_init(layers, &err) < 0 || udfb_overlay_probe(layers, &err) < 0) {
		printf("ok %d - overlay # SKIP %s\n", ++check_n, err.msg);
		udfb_err_clear(&err);
		free(layers);
		return;
	}
	const struct ent low[] = { { "etc/passwd", AE_IFREG, 0644, "p" },
				   { "etc/shadow", AE_IFREG, 0600, "s" },
				   { "opt/old", AE_IFREG, 0644, "o" },
				   { NULL, 0, 0, NULL } };
	const struct ent high[] = { { "etc/.wh.shadow", AE_IFREG, 0644, "" },
				    { "opt/.wh..wh..opq", AE_IFREG, 0644, "" },
				    { "opt/new", AE_IFREG, 0644, "n" },
				    { NULL, 0, 0, NULL } };
	struct udfb_bundle_image im = { .n_layers = 2 };
	im.layers = calloc(2, sizeof(*im.layers));
	im.blobs = calloc(2, sizeof(char *));
	im.blobs[0] = write_tar("low.tar.gz", low, 1);
	im.blobs[1] = write_tar("high.tar", high, 0);
	long long size;
	udfb_sha256_file(im.layers[0], &size, im.blobs[0], &err);
	udfb_sha256_file(im.layers[1], &size, im.blobs[1], &err);
	int rc = udfb_layers_ensure(layers, &im, &err);
	CHECK(rc == 0, "both layers unpack into the cache (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	char *root = fresh_dir("root");
	rc = udfb_rootfs_mount(root, layers, &im, &err);
	CHECK(rc == 0, "the overlay mounts (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	CHECK(exists_in(root, "etc/passwd") && !exists_in(root, "etc/shadow"), "a whiteout hides the lower file");
	CHECK(exists_in(root, "opt/new") && !exists_in(root, "opt/old"),
	      "an opaque directory hides the lower directory");
	CHECK(exists_in(root, "proc") && exists_in(root, "tmp"), "the skeleton brings the runtime's mount points");
	char *w = udfb_path_join(root, "etc/new");
	int fd = open(w, O_CREAT | O_WRONLY, 0644);
	CHECK(fd < 0 && errno == EROFS, "the root is read-only");
	if (fd >= 0)
		close(fd);
	free(w);
	CHECK(udfb_rootfs_umount(root, &err) == 0 && !exists_in(root, "etc"), "it unmounts");
	udfb_err_clear(&err);
	udfb_bundle_image_free(&im);
	free(root);
	free(layers);
}

/* A later entry replaces an earlier directory of the same name beneath a
 * directory the unpacker holds open: that handle stays usable. */
static void test_replace_dir(void)
{
	static const struct ent es[] = {
		{ "x/", AE_IFDIR, 0755, NULL },	   { "x/a/", AE_IFDIR, 0755, NULL },
		{ "x/b", AE_IFREG, 0644, "b" },	   { "x/a", AE_IFREG, 0644, "now a file" },
		{ "x/c", AE_IFREG, 0644, "c" },	   { "x/d/", AE_IFDIR, 0755, NULL },
		{ "x/.wh.d", AE_IFREG, 0644, "" }, { NULL, 0, 0, NULL },
	};
	char *tar = write_tar("replace.tar", es, 0);
	char *dir = fresh_dir("replace");
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = unpack(tar, dir, 1, &err);
	CHECK(rc == 0, "a file replaces an empty directory beside cached siblings (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	struct stat st;
	char *p = udfb_path_join(dir, "x/a");
	CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode), "x/a is the file now");
	free(p);
	CHECK(exists_in(dir, "x/c"), "the entry after it lands in the same directory");
	p = udfb_path_join(dir, "x/d");
	CHECK(lstat(p, &st) == 0 && S_ISCHR(st.st_mode), "a whiteout replaces a directory too");
	free(p);
	free(tar);
	free(dir);
}

/* The layer cache is the service's alone: layers keep their images' modes. */
static void test_layers_dir_private(void)
{
	char *layers = udfb_path_join(tmp_root, "private-layers");
	struct udfb_err err = UDFB_ERR_INIT;
	mkdir(layers, 0777);
	chmod(layers, 0777);
	CHECK(udfb_layers_init(layers, &err) == 0, "layers_dir set up (%s)", err.msg ? err.msg : "ok");
	udfb_err_clear(&err);
	struct stat st;
	CHECK(stat(layers, &st) == 0 && (st.st_mode & 07777) == 0700, "layers_dir is 0700 (was 0777): %o",
	      (unsigned)(st.st_mode & 07777));
	free(layers);
}

int main(void)
{
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root (ownership, whiteout devices, trusted xattrs)\n");
		return 77;
	}
	char tmpl[] = "/tmp/udfb-unpack.XXXXXX";
	tmp_root = mkdtemp(tmpl);
	test_layer_forms();
	test_escapes();
	test_digest();
	test_overlay();
	test_replace_dir();
	test_layers_dir_private();
	udfb_rm_rf(tmp_root);
	return check_done();
}
