/* OCI image-layout directories: see ocilayout.h. */
#include "image/ocilayout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/jsonout.h"

#define INDEX_MAX_BYTES (16u << 20)
#define REF_NAME "org.opencontainers.image.ref.name"

void udfb_image_free(struct udfb_image *im)
{
	if (!im)
		return;
	free(im->manifest);
	free(im->config);
	json_decref(im->manifest_json);
	json_decref(im->config_json);
	udfb_manifest_clear(&im->m);
	memset(im, 0, sizeof(*im));
}

char *udfb_oci_blob_path(const char *dir, const char *digest)
{
	return udfb_asprintf("%s/blobs/sha256/%s", dir, udfb_digest_hex(digest));
}

int udfb_oci_read_blob(char **out, size_t *len, const char *dir, const char *digest, size_t max, struct udfb_err *err)
{
	if (!udfb_digest_valid(digest))
		return udfb_err_set(err, UDFB_E_INVALID, "%s: bad digest '%.80s'", dir, digest);
	cleanup_free char *path = udfb_oci_blob_path(dir, digest);
	if (udfb_read_file(out, len, path, max, err) < 0)
		return udfb_err_wrap(err, "blob %s", digest);
	char got[UDFB_DIGEST_LEN + 1];
	udfb_sha256_digest(*out, *len, got);
	if (strcmp(got, digest) != 0) {
		free(*out);
		*out = NULL;
		return udfb_err_set(err, UDFB_E_INTERNAL, "%s: blob %s is corrupt (its content hashes to %s)", dir,
				    digest, got);
	}
	return 0;
}

static json_t *load_json(const char *what, const char *text, size_t len, struct udfb_err *err)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		udfb_err_set(err, UDFB_E_INVALID, "%s: not a JSON object%s%s", what, j ? "" : ": ", j ? "" : jerr.text);
		return NULL;
	}
	return j;
}

static int platform_matches(json_t *desc, const char *platform)
{
	json_t *p = json_object_get(desc, "platform");
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	if (!os || !arch)
		return 0;
	size_t n = strlen(os);
	return strncmp(platform, os, n) == 0 && platform[n] == '/' && strcmp(platform + n + 1, arch) == 0;
}

/* The descriptor in an index that a reference means: the one tagged tag;
 * else, inside an image index, the one for platform (or the only one);
 * else, at the top of a layout without a tag, the only one. */
static int descriptor_matches(json_t *d, const char *tag, const char *platform, size_t count)
{
	if (tag) {
		const char *name = json_string_value(json_object_get(json_object_get(d, "annotations"), REF_NAME));
		return name && strcmp(name, tag) == 0;
	}
	if (platform)
		return count == 1 || platform_matches(d, platform);
	return 1;
}

static json_t *pick_descriptor(json_t *index, const char *tag, const char *platform, const char *where,
			       struct udfb_err *err)
{
	json_t *ms = json_object_get(index, "manifests"), *found = NULL, *d;
	size_t k, matches = 0, count = json_array_size(ms);
	json_array_foreach(ms, k, d) {
		if (descriptor_matches(d, tag, platform, count)) {
			found = found ? found : d;
			matches++;
		}
	}
	if (!found) {
		udfb_err_set(err, UDFB_E_NOTFOUND, "%s: no image %s%s", where, tag ? "tagged " : "for ",
			     tag	? tag
			     : platform ? platform
					: "at all");
		return NULL;
	}
	if (matches > 1 && !tag && !platform) {
		udfb_err_set(err, UDFB_E_INVALID, "%s: holds several images; name one with :TAG", where);
		return NULL;
	}
	return found;
}

json_t *udfb_index_pick_platform(json_t *index, const char *platform, const char *where, struct udfb_err *err)
{
	return pick_descriptor(index, NULL, platform, where, err);
}

/* What a manifest named by its digest alone is: its own mediaType, else
 * an index when it lists manifests (image-spec allows both to omit it). */
static const char *media_type_of_doc(json_t *doc)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));
	if (mt)
		return mt;
	return json_is_array(json_object_get(doc, "manifests")) ? UDFB_MT_OCI_INDEX : UDFB_MT_OCI_MANIFEST;
}

/* Follow index -> manifest until a manifest; at most two hops.  desc
 * without a mediaType: a digest the caller named. */
static int resolve_manifest(struct udfb_image *out, const char *dir, json_t *desc, const char *platform,
			    struct udfb_err *err)
{
	for (int hop = 0; hop < 3; hop++) {
		const char *digest = json_string_value(json_object_get(desc, "digest"));
		const char *mt = json_string_value(json_object_get(desc, "mediaType"));
		int named = hop == 0 && !json_object_get(desc, "mediaType");
		if (!digest || (!mt && !named))
			return udfb_err_set(err, UDFB_E_INVALID, "%s: a descriptor lacks digest or mediaType", dir);
		free(out->manifest);
		json_decref(out->manifest_json);
		out->manifest_json = NULL;
		if (udfb_oci_read_blob(&out->manifest, &out->manifest_len, dir, digest, UDFB_MANIFEST_MAX_BYTES, err) <
		    0)
			return -1;
		if (!(out->manifest_json = load_json(digest, out->manifest, out->manifest_len, err)))
			return -1;
		memcpy(out->manifest_digest, digest, UDFB_DIGEST_LEN + 1);
		if (named)
			mt = media_type_of_doc(out->manifest_json);
		if (strcmp(mt, UDFB_MT_OCI_MANIFEST) == 0 || strcmp(mt, UDFB_MT_DOCKER_MANIFEST) == 0)
			return udfb_manifest_from_json(&out->m, out->manifest_json, out->manifest_digest, err);
		if (strcmp(mt, UDFB_MT_OCI_INDEX) != 0 && strcmp(mt, UDFB_MT_DOCKER_LIST) != 0)
			return udfb_err_set(err, UDFB_E_INVALID, "%s: unsupported manifest type '%.100s'", dir, mt);
		if (!(desc = pick_descriptor(out->manifest_json, NULL, platform, dir, err)))
			return -1;
	}
	return udfb_err_set(err, UDFB_E_INVALID, "%s: indexes nested too deeply", dir);
}

static int read_config(struct udfb_image *out, const char *dir, struct udfb_err *err)
{
	const char *digest = out->m.config.digest;
	if (udfb_oci_read_blob(&out->config, &out->config_len, dir, digest, UDFB_CONFIG_MAX_BYTES, err) < 0)
		return -1;
	if (!(out->config_json = load_json(digest, out->config, out->config_len, err)))
		return -1;
	memcpy(out->config_digest, digest, UDFB_DIGEST_LEN + 1);
	udfb_platform_of_config(&out->platform, out->config_json);
	return 0;
}

static json_t *load_index(const char *dir, struct udfb_err *err)
{
	cleanup_free char *index_path = udfb_path_join(dir, "index.json");
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (udfb_read_file(&text, &len, index_path, INDEX_MAX_BYTES, err) < 0) {
		udfb_err_wrap(err, "OCI layout %s", dir);
		return NULL;
	}
	return load_json(index_path, text, len, err);
}

/* The descriptor ref names: a digest (its blob says what it is), a tag
 * written since index.json was last derived (in the journal), else the
 * entry of index.json. */
static json_t *find_descriptor(const char *dir, const char *ref, struct udfb_err *err)
{
	if (ref && udfb_digest_valid(ref))
		return udfb_json_must(json_pack("{s:s}", "digest", ref));
	json_t *pending = ref ? udfb_oci_journal_descriptor(dir, ref) : NULL;
	if (pending)
		return pending;
	json_t *index = load_index(dir, err);
	json_t *desc = index ? pick_descriptor(index, ref, NULL, dir, err) : NULL;
	json_incref(desc);
	json_decref(index);
	return desc;
}

int udfb_oci_read_image(struct udfb_image *out, const char *dir, const char *ref, const char *platform,
			struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	json_t *desc = find_descriptor(dir, ref, err);
	int rc = desc ? resolve_manifest(out, dir, desc, platform, err) : -1;
	json_decref(desc);
	if (rc == 0)
		rc = read_config(out, dir, err);
	if (rc < 0)
		udfb_image_free(out);
	return rc;
}

int udfb_oci_lookup(const char *dir, const char *tag, char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	json_t *desc = find_descriptor(dir, tag, err);
	if (!desc && err->cat == UDFB_E_NOTFOUND && udfb_exists(dir)) {
		udfb_err_clear(err);
		return 0;
	}
	const char *d = json_string_value(json_object_get(desc, "digest"));
	int rc = !desc			     ? -1
		 : d && udfb_digest_valid(d) ? 1
					     : udfb_err_set(err, UDFB_E_INVALID, "%s: tag %s: bad digest", dir, tag);
	if (rc == 1)
		memcpy(digest, d, UDFB_DIGEST_LEN + 1);
	json_decref(desc);
	return rc;
}

int udfb_oci_init_files(const char *dir, struct udfb_wgroup *g, struct udfb_err *err)
{
	cleanup_free char *blobs = udfb_path_join(dir, "blobs/sha256");
	if (udfb_mkdir_p(blobs, 0755, err) < 0)
		return -1;
	cleanup_free char *layout = udfb_path_join(dir, "oci-layout");
	const char *lt = "{\"imageLayoutVersion\":\"1.0.0\"}";
	if (!udfb_exists(layout) && udfb_wgroup_add_bytes(g, layout, lt, strlen(lt), 1, err) < 0)
		return -1;
	cleanup_free char *index = udfb_path_join(dir, "index.json");
	const char *it = "{\"schemaVersion\":2,\"manifests\":[]}";
	if (!udfb_exists(index) && udfb_wgroup_add_bytes(g, index, it, strlen(it), 1, err) < 0)
		return -1;
	return 0;
}

int udfb_oci_init_blobs(const char *dir, struct udfb_err *err)
{
	cleanup_free char *blobs = udfb_path_join(dir, "blobs/sha256");
	return udfb_mkdir_p(blobs, 0755, err);
}

int udfb_oci_init(const char *dir, struct udfb_err *err)
{
	/* Both files' bytes synced together, then the directory once for both
	 * renames: two rounds of synchronous writes for a new layout. */
	struct udfb_wgroup g;
	udfb_wgroup_init(&g);
	int rc = udfb_oci_init_files(dir, &g, err);
	if (rc == 0 && g.n)
		rc = udfb_wgroup_commit(&g, err) < 0 ? -1 : udfb_fsync_dir(dir, err);
	udfb_wgroup_free(&g);
	return rc;
}

int udfb_oci_put_blob(const char *dir, const char *src, const char *digest, struct udfb_err *err)
{
	cleanup_free char *dst = udfb_oci_blob_path(dir, digest);
	return udfb_link_or_copy(src, dst, err);
}
