/* Images to root file systems: see bundle.h. */
#include "scheduler/bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "image/image.h"
#include "common/clock.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "scheduler/unpack.h"

#define SKELETON "skeleton"
#define TMP_PREFIX ".tmp-"
/* mount(2) copies at most one page of options. */
#define MOUNT_DATA_MAX 4000

void udfb_bundle_image_free(struct udfb_bundle_image *im)
{
	if (!im)
		return;
	for (size_t k = 0; k < im->n_layers && im->blobs; k++)
		free(im->blobs[k]);
	free(im->blobs);
	free(im->layers);
	json_decref(im->config);
	memset(im, 0, sizeof(*im));
}

static int is_layer_type(const char *mt)
{
	static const char *const ok[] = { "application/vnd.oci.image.layer.v1.tar",
					  "application/vnd.oci.image.layer.v1.tar+gzip",
					  "application/vnd.oci.image.layer.v1.tar+zstd",
					  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
					  "application/vnd.docker.image.rootfs.diff.tar.gzip",
					  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
					  NULL };
	for (int k = 0; ok[k]; k++)
		if (strcmp(mt, ok[k]) == 0)
			return 1;
	return 0;
}

static int find_layer(struct udfb_bundle_image *im, size_t k, struct udfb_image_store *const *stores, size_t n,
		      struct udfb_err *err)
{
	for (size_t s = 0; s < n; s++)
		if ((im->blobs[k] = udfb_image_store_blob_path(stores[s], im->layers[k])))
			return 0;
	return udfb_err_set(err, UDFB_E_NOTFOUND,
			    "layer %s: not on this machine (a base kept in a registry? the local "
			    "scheduler starts images whose layers are in the store)",
			    im->layers[k]);
}

static int read_layers(struct udfb_bundle_image *im, const struct udfb_manifest *m,
		       struct udfb_image_store *const *stores, size_t n, struct udfb_err *err)
{
	im->n_layers = m->n_layers;
	im->layers = udfb_calloc(im->n_layers + 1, sizeof(*im->layers));
	im->blobs = udfb_calloc(im->n_layers + 1, sizeof(*im->blobs));
	for (size_t k = 0; k < m->n_layers; k++) {
		const char *mt = m->layers[k].media_type;
		if (!is_layer_type(mt))
			return udfb_err_set(err, UDFB_E_UNSUPPORTED, "manifest %s: layers[%zu]: media type '%.100s'",
					    im->manifest_digest, k, mt);
		memcpy(im->layers[k], m->layers[k].digest, UDFB_DIGEST_LEN + 1);
		if (find_layer(im, k, stores, n, err) < 0)
			return -1;
	}
	return 0;
}

/* Manifest and config from the first store holding the manifest. */
static int read_from(struct udfb_bundle_image *im, struct udfb_image_store *const *stores, size_t n,
		     struct udfb_err *err)
{
	size_t s = 0;
	for (; s + 1 < n && udfb_image_store_has_blob(stores[s], im->manifest_digest, err) != 1; s++)
		udfb_err_clear(err);
	struct udfb_image img;
	if (udfb_image_store_read(stores[s], im->manifest_digest, NULL, &img, err) < 0)
		return -1;
	int rc = read_layers(im, &img.m, stores, n, err);
	if (rc == 0) {
		json_t *cfg = json_object_get(img.config_json, "config");
		im->config = json_is_object(cfg) ? json_incref(cfg) : json_object();
	}
	udfb_image_free(&img);
	return rc;
}

int udfb_bundle_read_image(struct udfb_bundle_image *out, struct udfb_image_store *const *stores, size_t n,
			   const char *manifest_digest, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!manifest_digest || !udfb_digest_valid(manifest_digest))
		return udfb_err_set(err, UDFB_E_INVALID, "not pinned by a digest");
	memcpy(out->manifest_digest, manifest_digest, UDFB_DIGEST_LEN + 1);
	if (read_from(out, stores, n, err) < 0) {
		udfb_bundle_image_free(out);
		return -1;
	}
	return 0;
}

/* ---- the layer cache ---- */

static pthread_mutex_t unpack_mu = PTHREAD_MUTEX_INITIALIZER;

static int make_skeleton(const char *layers_dir, struct udfb_err *err)
{
	cleanup_free char *sk = udfb_path_join(layers_dir, SKELETON);
	static const char *const dirs[] = { "proc", "dev", "tmp", NULL };
	if (mkdir(sk, 0755) < 0 && errno != EEXIST)
		return udfb_err_sys(err, errno, "mkdir %s", sk);
	for (int k = 0; dirs[k]; k++) {
		cleanup_free char *p = udfb_path_join(sk, dirs[k]);
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return udfb_err_sys(err, errno, "mkdir %s", p);
	}
	return 0;
}

/* ".tmp-<pid>-..." whose process is gone: an unpack that died. */
static void sweep_tmp(const char *layers_dir)
{
	DIR *d = opendir(layers_dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) != 0)
			continue;
		long pid = strtol(e->d_name + strlen(TMP_PREFIX), NULL, 10);
		if (pid > 0 && (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue; /* ours, or its process still runs */
		cleanup_free char *p = udfb_path_join(layers_dir, e->d_name);
		udfb_rm_rf(p);
	}
	if (d)
		closedir(d);
}

int udfb_layers_init(const char *layers_dir, struct udfb_err *err)
{
	/* Layers keep their images' modes (a world-writable /tmp, say): only the
	 * service may reach them, or another host user could write into what
	 * every sandbox of that layer sees.  Mounts and runtimes run as root. */
	if (udfb_mkdir_p(layers_dir, 0700, err) < 0 || make_skeleton(layers_dir, err) < 0)
		return -1;
	if (chmod(layers_dir, 0700) < 0)
		return udfb_err_sys(err, errno, "chmod %s", layers_dir);
	if (strpbrk(layers_dir, ":,\\"))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: an overlay layer path may not hold ':', ',' or '\\'",
				    layers_dir);
	sweep_tmp(layers_dir);
	return 0;
}

static char *layer_dir(const char *layers_dir, const char *digest)
{
	return udfb_path_join(layers_dir, udfb_digest_hex(digest));
}

static int unpack_one(const char *layers_dir, const char *digest, const char *blob, struct udfb_err *err)
{
	cleanup_free char *final = layer_dir(layers_dir, digest);
	cleanup_free char *tmp =
		udfb_asprintf("%s/" TMP_PREFIX "%ld-%.12s-XXXXXX", layers_dir, (long)getpid(), udfb_digest_hex(digest));
	if (!mkdtemp(tmp))
		return udfb_err_sys(err, errno, "mkdtemp in %s", layers_dir);
	chmod(tmp, 0755);
	struct udfb_unpack_stats st;
	long long t0 = udfb_now_ms();
	if (udfb_layer_unpack(blob, digest, tmp, &st, err) < 0) {
		udfb_rm_rf(tmp);
		return -1;
	}
	if (rename(tmp, final) < 0) {
		int e = errno;
		udfb_rm_rf(tmp);
		if (e != EEXIST && e != ENOTEMPTY) /* another process unpacked it first */
			return udfb_err_sys(err, e, "rename to %s", final);
	}
	udfb_info("layer %s unpacked: %ld entries, %lld bytes, %ld whiteouts, %ld devices skipped, %lld ms", digest,
		  st.entries, st.bytes, st.whiteouts, st.skipped, udfb_now_ms() - t0);
	return 0;
}

int udfb_layers_ensure(const char *layers_dir, const struct udfb_bundle_image *im, struct udfb_err *err)
{
	int rc = 0;
	for (size_t k = 0; k < im->n_layers && rc == 0; k++) {
		cleanup_free char *dir = layer_dir(layers_dir, im->layers[k]);
		if (udfb_exists(dir))
			continue;
		/* One unpack at a time: two sandboxes of a new base wait for one unpack. */
		pthread_mutex_lock(&unpack_mu);
		if (!udfb_exists(dir))
			rc = unpack_one(layers_dir, im->layers[k], im->blobs[k], err);
		pthread_mutex_unlock(&unpack_mu);
	}
	return rc;
}

/* ---- mounts ---- */

static int mount_overlay(const char *target, const char *lowers, struct udfb_err *err)
{
	cleanup_free char *data = udfb_asprintf("lowerdir=%s", lowers);
	if (strlen(data) > MOUNT_DATA_MAX)
		return udfb_err_set(err, UDFB_E_UNSUPPORTED, "overlay of %s: too many layers for one mount", target);
	if (mount("overlay", target, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, data) < 0)
		return udfb_err_sys(err, errno, "mount overlay at %s", target);
	return 0;
}

int udfb_rootfs_mount(const char *target, const char *layers_dir, const struct udfb_bundle_image *im,
		      struct udfb_err *err)
{
	/* overlayfs lists the top layer first. */
	size_t cap = (im->n_layers + 1) * (strlen(layers_dir) + 72) + 16;
	cleanup_free char *lowers = udfb_malloc(cap);
	size_t off = 0;
	for (size_t k = im->n_layers; k-- > 0;)
		off += (size_t)snprintf(lowers + off, cap - off, "%s/%s:", layers_dir, udfb_digest_hex(im->layers[k]));
	snprintf(lowers + off, cap - off, "%s/" SKELETON, layers_dir);
	return mount_overlay(target, lowers, err);
}

int udfb_rootfs_umount(const char *target, struct udfb_err *err)
{
	if (umount2(target, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return udfb_err_sys(err, errno, "umount %s", target);
	return 0;
}

static int probe_layers(const char *base, struct udfb_err *err)
{
	cleanup_free char *a = udfb_path_join(base, "a"), *b = udfb_path_join(base, "b");
	cleanup_free char *ax = udfb_path_join(a, "x"), *ad = udfb_path_join(a, "d"), *bx = udfb_path_join(b, "x");
	cleanup_free char *bd = udfb_path_join(b, "d");
	if (mkdir(a, 0755) < 0 || mkdir(b, 0755) < 0 || mkdir(ad, 0755) < 0 || mkdir(bd, 0755) < 0)
		return udfb_err_sys(err, errno, "mkdir in %s", base);
	int fd = open(ax, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		return udfb_err_sys(err, errno, "create %s", ax);
	close(fd);
	if (mknod(bx, S_IFCHR, makedev(0, 0)) < 0)
		return udfb_err_sys(err, errno, "whiteout %s", bx);
	if (setxattr(bd, "trusted.overlay.opaque", "y", 1, 0) < 0)
		return udfb_err_sys(err, errno, "xattr trusted.overlay.opaque on %s", bd);
	return 0;
}

int udfb_overlay_probe(const char *dir, struct udfb_err *err)
{
	cleanup_free char *base = udfb_asprintf("%s/" TMP_PREFIX "%ld-probe-XXXXXX", dir, (long)getpid());
	if (!mkdtemp(base))
		return udfb_err_sys(err, errno, "mkdtemp in %s", dir);
	cleanup_free char *m = udfb_path_join(base, "m"), *lowers = NULL, *mx = udfb_path_join(m, "x");
	lowers = udfb_asprintf("%s/b:%s/a", base, base);
	int rc = mkdir(m, 0755) < 0 ? udfb_err_sys(err, errno, "mkdir %s", m) : 0;
	if (rc == 0)
		rc = probe_layers(base, err);
	if (rc == 0 && (rc = mount_overlay(m, lowers, err)) == 0) {
		if (udfb_exists(mx))
			rc = udfb_err_set(err, UDFB_E_UNSUPPORTED, "overlay at %s: whiteouts are not honoured", m);
		umount2(m, MNT_DETACH);
	}
	udfb_rm_rf(base);
	return rc;
}
