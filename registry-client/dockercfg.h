/* Registry credentials from docker's client configuration, read the way
 * docker, podman and skopeo read it: $DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json; for a host, credHelpers[host], then credsStore
 * (both run `docker-credential-<name> get` with the host on stdin), then
 * auths[host] (`auth`: base64 "user:pass", or `username`/`password`, or
 * `identitytoken`).  A missing file means no credentials, not an error. */
#ifndef UDFB_DOCKERCFG_H
#define UDFB_DOCKERCFG_H

#include <stddef.h>

#include "registry-client/auth.h"
#include "common/err.h"

#define UDFB_DOCKERCFG_MAX_BYTES (4u << 20)

/* Looks up the file at lookup time, so a rotated config is seen. */
extern const struct udfb_cred_source udfb_dockercfg_source;

/* $DOCKER_CONFIG/config.json or $HOME/.docker/config.json; NULL when
 * neither variable is set.  Free it. */
char *udfb_dockercfg_path(void);

/* What config.json says about host.  helpers[] gets the credential helpers
 * to ask, in order (credHelpers[host], then credsStore; malloc'd, NULL when
 * none); *cred the auths entry when there is one (1), else 0; -1 when the
 * text is not a usable config. */
struct udfb_dockercfg_entry {
	char *helpers[2];
	int has_cred;
	struct udfb_cred cred;
};

int udfb_dockercfg_parse(struct udfb_dockercfg_entry *out, const char *text, size_t len, const char *host,
			 const char *path, struct udfb_err *err);
void udfb_dockercfg_entry_clear(struct udfb_dockercfg_entry *e);
/* Run docker-credential-<helper> get for server: 1 and *out when it has
 * credentials, 0 when it says it has none. */
int udfb_dockercfg_helper_get(struct udfb_cred *out, const char *helper, const char *server, struct udfb_err *err);
/* The whole lookup for host in the file at path. */
int udfb_dockercfg_lookup(struct udfb_cred *out, const char *path, const char *host, struct udfb_err *err);

#endif
