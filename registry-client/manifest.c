/* Manifests and small blobs over the distribution API: see registry.h.
 * Bytes are kept exactly as fetched and checked against their digest; a
 * tag is resolved to a digest once, and everything after uses the digest. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/log.h"
#include "image/ocilayout.h"
#include "registry-client/registry_internal.h"

static char *path_of(const char *repo, const char *kind, const char *ref)
{
	return udfb_asprintf("/v2/%s/%s/%s", repo, kind, ref);
}

/* "repo:tag" or "repo@sha256:…", for messages. */
static char *what_of(const char *repo, const char *ref)
{
	return udfb_asprintf("%s%c%s", repo, udfb_digest_valid(ref) ? '@' : ':', ref);
}

/* The header's digest when it is one; NULL otherwise. */
static const char *header_digest(const struct udfb_http_resp *h)
{
	return h->docker_digest && udfb_digest_valid(h->docker_digest) ? h->docker_digest : NULL;
}

int reg_manifest_head(struct udfb_registry *r, const char *repo, const char *ref, const char *scope,
		      char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	cleanup_free char *path = path_of(repo, "manifests", ref), *what = what_of(repo, ref);
	struct reg_call c = { .method = "HEAD", .path = path, .scope = scope, .accept = UDFB_REGISTRY_ACCEPT };
	struct udfb_http_resp h;
	int transient;
	if (reg_call(r, &c, &h, &transient, err) < 0)
		return -1;
	int rc = h.status == 404 ? 0 : h.status == 200 ? 1 : reg_status_error(r, what, &h, err);
	if (rc == 1 && !header_digest(&h))
		rc = udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: the registry did not name the manifest's digest",
				  r->host, what);
	if (rc == 1)
		memcpy(digest, h.docker_digest, UDFB_DIGEST_LEN + 1);
	udfb_http_resp_clear(&h);
	return rc;
}

int udfb_registry_manifest_head(struct udfb_registry *r, const char *repo, const char *ref,
				char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	cleanup_free char *scope = reg_scope(repo, "pull");
	return reg_manifest_head(r, repo, ref, scope, digest, err);
}

/* The media type: Content-Type without parameters, else the JSON's own. */
static char *media_type_of(const struct udfb_http_resp *h, const char *data, size_t len)
{
	if (h->content_type && strncmp(h->content_type, "application/vnd.", 16) == 0)
		return udfb_strndup(h->content_type, strcspn(h->content_type, "; "));
	json_t *j = json_loadb(data, len, 0, NULL);
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	char *out = udfb_strdup(mt ? mt : "");
	json_decref(j);
	return out;
}

static int check_digest(const char *data, size_t len, const char *want, const char *host, const char *what,
			char got[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	udfb_sha256_digest(data, len, got);
	if (want && strcmp(got, want) != 0)
		return udfb_err_set(err, UDFB_E_UNAVAILABLE, "%s/%s: content hashes to %s, not %s", host, what, got,
				    want);
	return 0;
}

int udfb_registry_manifest_get(struct udfb_registry *r, const char *repo, const char *ref, char **out, size_t *len,
			       char **media_type, char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err)
{
	cleanup_free char *path = path_of(repo, "manifests", ref), *what = what_of(repo, ref);
	cleanup_free char *scope = reg_scope(repo, "pull");
	struct udfb_buf b;
	udfb_buf_init(&b, UDFB_MANIFEST_MAX_BYTES);
	struct reg_call c = {
		.method = "GET", .path = path, .scope = scope, .accept = UDFB_REGISTRY_ACCEPT, .resp = &b
	};
	struct udfb_http_resp h;
	int transient, rc = reg_call(r, &c, &h, &transient, err);
	if (rc == 0 && h.too_big)
		rc = udfb_err_set(err, UDFB_E_EXHAUSTED, "%s/%s: manifest larger than %u bytes", r->host, what,
				  UDFB_MANIFEST_MAX_BYTES);
	else if (rc == 0 && h.status != 200)
		rc = reg_status_error(r, what, &h, err);
	const char *want = udfb_digest_valid(ref) ? ref : header_digest(&h);
	if (rc == 0)
		rc = check_digest(b.data ? b.data : "", b.len, want, r->host, what, digest, err);
	if (rc == 0) {
		*media_type = media_type_of(&h, b.data ? b.data : "", b.len);
		*out = udfb_buf_steal(&b, len);
	}
	udfb_buf_free(&b);
	udfb_http_resp_clear(&h);
	return rc;
}

int udfb_registry_blob_get(struct udfb_registry *r, const char *repo, const char *digest, size_t max, char **out,
			   size_t *len, struct udfb_err *err)
{
	cleanup_free char *path = path_of(repo, "blobs", digest), *what = what_of(repo, digest);
	cleanup_free char *scope = reg_scope(repo, "pull");
	struct udfb_buf b;
	udfb_buf_init(&b, max);
	struct reg_call c = { .method = "GET", .path = path, .scope = scope, .resp = &b, .follow = 1 };
	struct udfb_http_resp h;
	char got[UDFB_DIGEST_LEN + 1];
	int transient, rc = reg_call(r, &c, &h, &transient, err);
	if (rc == 0 && h.too_big)
		rc = udfb_err_set(err, UDFB_E_EXHAUSTED, "%s/%s: blob larger than %zu bytes", r->host, what, max);
	else if (rc == 0 && h.status != 200)
		rc = reg_status_error(r, what, &h, err);
	if (rc == 0)
		rc = check_digest(b.data ? b.data : "", b.len, digest, r->host, what, got, err);
	if (rc == 0)
		*out = udfb_buf_steal(&b, len);
	udfb_buf_free(&b);
	udfb_http_resp_clear(&h);
	return rc;
}

int udfb_registry_manifest_put(struct udfb_registry *r, const char *repo, const char *ref, const char *data, size_t len,
			       const char *media_type, const char *digest, struct udfb_err *err)
{
	cleanup_free char *scope = reg_scope(repo, "pull,push");
	return reg_manifest_put(r, repo, ref, scope, data, len, media_type, digest, err);
}

int reg_manifest_put(struct udfb_registry *r, const char *repo, const char *ref, const char *scope, const char *data,
		     size_t len, const char *media_type, const char *digest, struct udfb_err *err)
{
	cleanup_free char *path = path_of(repo, "manifests", ref), *what = what_of(repo, ref);
	/* distribution picks its manifest parser by Content-Type. */
	struct reg_call c = { .method = "PUT",
			      .path = path,
			      .scope = scope,
			      .content_type = media_type,
			      .body = { .kind = UDFB_BODY_MEM, .data = data, .size = (long long)len } };
	struct udfb_http_resp h;
	int transient, rc = reg_call(r, &c, &h, &transient, err);
	if (rc == 0 && h.status != 201 && h.status != 200)
		rc = reg_status_error(r, what, &h, err);
	else if (rc == 0 && !header_digest(&h))
		udfb_debug("registry %s: no Docker-Content-Digest after a manifest PUT", r->host);
	else if (rc == 0 && strcmp(h.docker_digest, digest) != 0)
		rc = udfb_err_set(err, UDFB_E_INTERNAL, "%s/%s: the registry stored the manifest as %s, not %s",
				  r->host, what, h.docker_digest, digest);
	udfb_http_resp_clear(&h);
	return rc;
}

static int is_index(const char *mt)
{
	return strcmp(mt, UDFB_MT_OCI_INDEX) == 0 || strcmp(mt, UDFB_MT_DOCKER_LIST) == 0;
}

static int load_manifest(struct udfb_image *out, struct udfb_registry *r, const char *repo, const char *ref, char **mt,
			 struct udfb_err *err)
{
	free(out->manifest);
	json_decref(out->manifest_json);
	out->manifest = NULL;
	out->manifest_json = NULL;
	if (udfb_registry_manifest_get(r, repo, ref, &out->manifest, &out->manifest_len, mt, out->manifest_digest,
				       err) < 0)
		return -1;
	out->manifest_json = json_loadb(out->manifest, out->manifest_len, 0, NULL);
	if (!json_is_object(out->manifest_json))
		return udfb_err_set(err, UDFB_E_INVALID, "%s/%s: manifest %s is not a JSON object", r->host, repo,
				    out->manifest_digest);
	return 0;
}

/* Tag or digest -> manifest, through at most two indexes. */
static int resolve(struct udfb_image *out, struct udfb_registry *r, const char *repo, const char *ref,
		   const char *platform, struct udfb_err *err)
{
	cleanup_free char *cur = udfb_strdup(ref);
	for (int hop = 0; hop < 3; hop++) {
		cleanup_free char *mt = NULL;
		if (load_manifest(out, r, repo, cur, &mt, err) < 0)
			return -1;
		if (strcmp(mt, UDFB_MT_OCI_MANIFEST) == 0 || strcmp(mt, UDFB_MT_DOCKER_MANIFEST) == 0)
			return udfb_manifest_from_json(&out->m, out->manifest_json, out->manifest_digest, err) < 0
				       ? udfb_err_wrap(err, "%s/%s", r->host, repo)
				       : 0;
		if (!is_index(mt))
			return udfb_err_set(err, UDFB_E_INVALID, "%s/%s: unsupported manifest type '%.100s'", r->host,
					    repo, mt);
		cleanup_free char *where = what_of(repo, cur);
		json_t *d = udfb_index_pick_platform(out->manifest_json, platform, where, err);
		const char *next = d ? json_string_value(json_object_get(d, "digest")) : NULL;
		if (!d)
			return udfb_err_wrap(err, "%s", r->host);
		if (!next || !udfb_digest_valid(next))
			return udfb_err_set(err, UDFB_E_INVALID, "%s/%s: an index entry has no valid digest", r->host,
					    where);
		free(cur);
		cur = udfb_strdup(next);
	}
	return udfb_err_set(err, UDFB_E_INVALID, "%s/%s: indexes nested too deeply", r->host, repo);
}

int udfb_registry_read_image(struct udfb_image *out, struct udfb_registry *r, const char *repo, const char *ref,
			     const char *platform, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	int rc = resolve(out, r, repo, ref, platform, err);
	const char *cfg = out->m.config.digest; /* checked by the parse */
	if (rc == 0)
		rc = udfb_registry_blob_get(r, repo, cfg, UDFB_CONFIG_MAX_BYTES, &out->config, &out->config_len, err);
	if (rc == 0)
		out->config_json = json_loadb(out->config, out->config_len, 0, NULL); /* json_is_object() is a macro */
	if (rc == 0 && !json_is_object(out->config_json))
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s/%s: config %s is not a JSON object", r->host, repo, cfg);
	if (rc == 0) {
		memcpy(out->config_digest, cfg, UDFB_DIGEST_LEN + 1);
		udfb_platform_of_config(&out->platform, out->config_json);
	}
	if (rc < 0)
		udfb_image_free(out);
	return rc;
}
