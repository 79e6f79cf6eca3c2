/* Image reference parsing: see ref.h.  Repository names follow the
 * distribution spec's grammar so that a bad name fails here, with the
 * reference named, rather than as a 400 from a registry. */
#include "registry-client/ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/hash.h"

int udfb_ref_tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > 128)
		return 0;
	for (size_t k = 0; k < n; k++) {
		char c = t[k];
		int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
		if (!word && (k == 0 || (c != '.' && c != '-')))
			return 0;
	}
	return 1;
}

static int is_alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* path-component = [a-z0-9]+ (separator [a-z0-9]+)*, separator = [_.] | __ | -+ */
static int repo_valid(const char *r)
{
	if (!*r || strlen(r) > 255)
		return 0;
	const char *c = r;
	for (;;) {
		if (!is_alnum_lower(*c))
			return 0;
		while (is_alnum_lower(*c))
			c++;
		if (*c == '\0')
			return 1;
		if (*c == '/') {
			c++;
			continue;
		}
		if (c[0] == '_' && c[1] == '_')
			c += 2;
		else if (*c == '.' || *c == '_')
			c++;
		else if (*c == '-')
			while (*c == '-')
				c++;
		else
			return 0;
	}
}

static int host_valid(const char *h)
{
	if (!*h || strlen(h) > 255)
		return 0;
	for (const char *c = h; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
		      *c == '-' || *c == ':' || *c == '[' || *c == ']'))
			return 0;
	return 1;
}

static int parse_oci(struct udfb_ref *out, const char *s, const char *orig, struct udfb_err *err)
{
	/* A trailing @sha256:<hex> pins the image (what a build reports); a
	 * directory ending so is not one anybody names. */
	const char *at = strrchr(s, '@');
	cleanup_free char *head = NULL;
	if (at && udfb_digest_valid(at + 1)) {
		out->digest = udfb_strdup(at + 1);
		s = head = udfb_strndup(s, (size_t)(at - s));
	}
	const char *colon = strrchr(s, ':');
	/* The last ':' starts a tag only when what follows is a valid tag
	 * (a directory may itself hold colons). */
	if (colon && !strchr(colon, '/') && udfb_ref_tag_valid(colon + 1)) {
		out->dir = udfb_strndup(s, (size_t)(colon - s));
		out->tag = udfb_strdup(colon + 1);
	} else {
		out->dir = udfb_strdup(s);
	}
	if (!out->dir[0])
		return udfb_err_set(err, UDFB_E_INVALID, "image reference '%s': no directory after 'oci:'", orig);
	return 0;
}

static int parse_docker(struct udfb_ref *out, const char *s, const char *orig, struct udfb_err *err)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return udfb_err_set(err, UDFB_E_INVALID, "image reference '%s': expected docker://HOST/REPO", orig);
	out->host = udfb_strndup(s, (size_t)(slash - s));
	const char *rest = slash + 1;
	const char *at = strchr(rest, '@');
	size_t repo_end = at ? (size_t)(at - rest) : strlen(rest);
	if (at) {
		out->digest = udfb_strdup(at + 1);
		if (!udfb_digest_valid(out->digest))
			return udfb_err_set(err, UDFB_E_INVALID,
					    "image reference '%s': the digest must be sha256:<64 hex>", orig);
	}
	const char *colon = memrchr(rest, ':', repo_end);
	if (colon && !memchr(colon, '/', repo_end - (size_t)(colon - rest))) {
		out->tag = udfb_strndup(colon + 1, repo_end - (size_t)(colon - rest) - 1);
		repo_end = (size_t)(colon - rest);
		if (!udfb_ref_tag_valid(out->tag))
			return udfb_err_set(err, UDFB_E_INVALID, "image reference '%s': bad tag", orig);
	}
	out->repo = udfb_strndup(rest, repo_end);
	if (!host_valid(out->host))
		return udfb_err_set(err, UDFB_E_INVALID, "image reference '%s': bad registry host", orig);
	if (!repo_valid(out->repo))
		return udfb_err_set(
			err, UDFB_E_INVALID,
			"image reference '%s': bad repository name (lower-case letters, digits and separators)", orig);
	return 0;
}

int udfb_ref_parse(struct udfb_ref *out, const char *s, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	int rc;
	if (strncmp(s, "oci:", 4) == 0) {
		out->kind = UDFB_REF_OCI;
		rc = parse_oci(out, s + 4, s, err);
	} else if (strncmp(s, "docker://", 9) == 0) {
		out->kind = UDFB_REF_DOCKER;
		rc = parse_docker(out, s + 9, s, err);
	} else {
		rc = udfb_err_set(err, UDFB_E_INVALID,
				  "image reference '%s': expected oci:DIR[:TAG] or docker://HOST/REPO[:TAG|@DIGEST]",
				  s);
	}
	if (rc < 0)
		udfb_ref_free(out);
	return rc;
}

void udfb_ref_free(struct udfb_ref *r)
{
	if (!r)
		return;
	free(r->dir);
	free(r->host);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	memset(r, 0, sizeof(*r));
}

char *udfb_ref_name(const struct udfb_ref *r)
{
	if (r->kind == UDFB_REF_OCI)
		return udfb_asprintf("oci:%s", r->dir);
	return udfb_asprintf("docker://%s/%s", r->host, r->repo);
}
