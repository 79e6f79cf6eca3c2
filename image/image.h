/* An image's manifest and config as fetched: the exact bytes (digests are
 * over them, so they are never re-serialised), their parsed JSON, and the
 * manifest as a struct (manifest.h) with the config's platform: read once
 * by an image store (store.h), then handed around. */
#ifndef UDFB_IMAGE_H
#define UDFB_IMAGE_H

#include <jansson.h>
#include <stddef.h>

#include "common/hash.h"
#include "image/manifest.h"

#define UDFB_MANIFEST_MAX_BYTES (4u << 20) /* distribution's own limit */
#define UDFB_CONFIG_MAX_BYTES (8u << 20)

#define UDFB_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define UDFB_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define UDFB_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define UDFB_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define UDFB_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define UDFB_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define UDFB_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

struct udfb_image {
	char manifest_digest[UDFB_DIGEST_LEN + 1];
	char *manifest;
	size_t manifest_len;
	json_t *manifest_json;
	char config_digest[UDFB_DIGEST_LEN + 1];
	char *config;
	size_t config_len;
	json_t *config_json;
	struct udfb_manifest m; /* manifest_json, parsed and checked */
	struct udfb_platform platform; /* the config's os/architecture/variant */
};

void udfb_image_free(struct udfb_image *im);

#endif
