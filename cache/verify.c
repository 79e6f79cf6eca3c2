/* `cache verify`: re-hash every blob, then check that every key names a
 * manifest whose config and layers are all present.  Problems are reported,
 * never repaired: the operator decides (gc removes what nothing reaches). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "fsutil.h"
#include "image.h"
#include "ocilayout.h"
#include "store.h"

static int verify_blobs(struct udfb_store *s, FILE *report, long *problems, long *count, struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(s->root, "blobs/sha256");
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_sys(err, errno, "open %s", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *path = udfb_path_join(dir, e->d_name);
		cleanup_free char *want = NULL;
		if (asprintf(&want, "sha256:%s", e->d_name) < 0)
			abort();
		char got[UDFB_DIGEST_LEN + 1];
		struct udfb_err e2 = UDFB_ERR_INIT;
		(*count)++;
		if (!udfb_digest_valid(want)) {
			fprintf(report, "blob %s: not named by a sha256 digest\n", e->d_name);
			(*problems)++;
		} else if (udfb_sha256_file(got, NULL, path, &e2) < 0) {
			fprintf(report, "blob %s: %s\n", want, e2.msg);
			(*problems)++;
		} else if (strcmp(got, want) != 0) {
			fprintf(report, "blob %s: corrupt, content hashes to %s\n", want, got);
			(*problems)++;
		}
		udfb_err_clear(&e2);
	}
	closedir(d);
	return 0;
}

static void check_desc(struct udfb_store *s, json_t *desc, const char *key, const char *what, FILE *report, long *problems)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	if (!d || !udfb_digest_valid(d)) {
		fprintf(report, "key %s: manifest has a %s without a valid digest\n", key, what);
		(*problems)++;
	} else if (!udfb_store_has_blob(s, d)) {
		fprintf(report, "key %s: %s %s is missing\n", key, what, d);
		(*problems)++;
	}
}

static void verify_key(struct udfb_store *s, const char *key, FILE *report, long *problems)
{
	char manifest[UDFB_DIGEST_LEN + 1];
	struct udfb_err e = UDFB_ERR_INIT;
	int found = udfb_store_key_get(s, key, manifest, &e);
	if (found <= 0) {
		fprintf(report, "key %s: %s\n", key, found < 0 ? e.msg : "unreadable, or its manifest is missing");
		(*problems)++;
		udfb_err_clear(&e);
		return;
	}
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (udfb_oci_read_blob(&text, &len, s->root, manifest, UDFB_MANIFEST_MAX_BYTES, &e) < 0) {
		fprintf(report, "key %s: %s\n", key, e.msg);
		(*problems)++;
		udfb_err_clear(&e);
		return;
	}
	json_t *m = json_loadb(text, len, 0, NULL);
	check_desc(s, json_object_get(m, "config"), key, "config", report, problems);
	size_t k;
	json_t *l;
	json_array_foreach(json_object_get(m, "layers"), k, l)
		check_desc(s, l, key, "layer", report, problems);
	json_decref(m);
}

static int verify_keys(struct udfb_store *s, FILE *report, long *problems, long *count, struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(s->root, "keys");
	DIR *d = opendir(dir);
	if (!d)
		return udfb_err_sys(err, errno, "open %s", dir);
	struct dirent *shard;
	while ((shard = readdir(d))) {
		if (strlen(shard->d_name) != 2 || shard->d_name[0] == '.')
			continue;
		cleanup_free char *sub = udfb_path_join(dir, shard->d_name);
		DIR *sd = opendir(sub);
		struct dirent *e;
		while (sd && (e = readdir(sd))) {
			if (e->d_name[0] == '.')
				continue;
			cleanup_free char *key = NULL;
			if (asprintf(&key, "sha256:%s%s", shard->d_name, e->d_name) < 0)
				abort();
			(*count)++;
			if (!udfb_digest_valid(key)) {
				fprintf(report, "key file %s/%s: not named by a key\n", shard->d_name, e->d_name);
				(*problems)++;
				continue;
			}
			verify_key(s, key, report, problems);
		}
		if (sd)
			closedir(sd);
	}
	closedir(d);
	return 0;
}

int udfb_store_verify(struct udfb_store *s, FILE *report, long *problems, long *blobs, long *keys,
		      struct udfb_err *err)
{
	*problems = *blobs = *keys = 0;
	if (verify_blobs(s, report, problems, blobs, err) < 0)
		return -1;
	return verify_keys(s, report, problems, keys, err);
}
