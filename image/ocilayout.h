/* OCI image-layout directories (image-spec image-layout.md): reading an
 * image by tag, adding blobs, tagging.  A tag is appended to the layout's
 * journal (DIR/.udfb-tags) in constant time; index.json is derived from it
 * by udfb_oci_sync, under a lock and replaced atomically, so concurrent
 * builds into one directory do not lose each other's tags and a reader
 * always finds a whole index.json (ocitags.c, docs/store.md). */
#ifndef UDFB_OCILAYOUT_H
#define UDFB_OCILAYOUT_H

#include "common/err.h"
#include "common/fsutil.h"
#include "image/image.h"

/* ref: a tag, a digest (read from the blobs alone, so the cache store's
 * blob directory reads too), or NULL: the layout must hold exactly one
 * manifest.  An index resolves to the entry for platform ("linux/amd64"). */
int udfb_oci_read_image(struct udfb_image *out, const char *dir, const char *ref, const char *platform,
			struct udfb_err *err);
/* 1 and the manifest digest tag names (journal first), 0 when none. */
int udfb_oci_lookup(const char *dir, const char *tag, char digest[UDFB_DIGEST_LEN + 1], struct udfb_err *err);
char *udfb_oci_blob_path(const char *dir, const char *digest);
/* The descriptor for platform ("os/arch") in an image index, or its only
 * entry; shared with the registry client.  NULL and *err when none. */
json_t *udfb_index_pick_platform(json_t *index, const char *platform, const char *where, struct udfb_err *err);
/* Makes DIR an OCI layout when it is not: blobs/sha256, oci-layout and an
 * empty index.json, each file's bytes fsync'd before its rename and DIR
 * fsync'd after. */
int udfb_oci_init(const char *dir, struct udfb_err *err);
/* The same without syncing anything: the missing files go into g (the
 * caller commits it and syncs DIR, with its own files). */
int udfb_oci_init_files(const char *dir, struct udfb_wgroup *g, struct udfb_err *err);
/* A destination: DIR/blobs/sha256 only.  A new layout's oci-layout and
 * index.json are written by its first derivation (udfb_oci_sync), so its
 * index.json is written once, with the tags, not empty first.  Until
 * then DIR is no layout at all (as before it existed); an existing
 * layout is left as it is. */
int udfb_oci_init_blobs(const char *dir, struct udfb_err *err);
/* Put the file src into the layout as the blob digest (a hard link when it can). */
int udfb_oci_put_blob(const char *dir, const char *src, const char *digest, struct udfb_err *err);
/* Tag: one append to the journal; the layout is remembered as needing a
 * sync.  A tag ending in a cache key this process already wrote costs nothing. */
int udfb_oci_tag(const char *dir, const char *digest, long long size, const char *media_type, const char *tag,
		 struct udfb_err *err);
/* Derive index.json from index.json and the journal, then empty the journal. */
int udfb_oci_sync(const char *dir, struct udfb_err *err);
/* Sync every layout this process tagged since its last sync: the end of a
 * CLI command (a batch). */
int udfb_oci_sync_all(struct udfb_err *err);
/* A thread that syncs quiet_ms after the last tag, and at most max_ms after
 * the first unsynced one; stop syncs what is left (the service). */
int udfb_oci_autosync_start(int quiet_ms, int max_ms, struct udfb_err *err);
int udfb_oci_autosync_stop(struct udfb_err *err);
/* The descriptor the journal holds for tag (its last record), or NULL. */
json_t *udfb_oci_journal_descriptor(const char *dir, const char *tag);

#define UDFB_OCI_TAG_RECORD_MAX 512
struct udfb_oci_tag_rec {
	char digest[UDFB_DIGEST_LEN + 1];
	long long size;
	char media_type[128];
	char tag[129];
};
/* One journal line without its newline; -1 when damaged (fuzzed). */
int udfb_oci_tag_record_parse(struct udfb_oci_tag_rec *out, const char *line, size_t len);
/* Read a blob, checking its size limit and its digest. */
int udfb_oci_read_blob(char **out, size_t *len, const char *dir, const char *digest, size_t max, struct udfb_err *err);

#endif
