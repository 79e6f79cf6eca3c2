/* docker's config.json: see dockercfg.h.  The file and a helper's answer
 * hold secrets: they are wiped after use and never quoted in a message. */
#include "registry-client/dockercfg.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"
#include "common/cleanup.h"
#include "common/fsutil.h"

#define HUB_KEY "https://index.docker.io/v1/"

static int is_hub(const char *h)
{
	return strcasecmp(h, "docker.io") == 0 || strcasecmp(h, "index.docker.io") == 0 ||
	       strcasecmp(h, "registry-1.docker.io") == 0;
}

/* A config key as a host: "https://h:5000/v1/" -> "h:5000". */
static int key_matches(const char *key, const char *host)
{
	if (strcasecmp(key, host) == 0)
		return 1;
	const char *s = strstr(key, "://");
	s = s ? s + 3 : key;
	size_t n = strcspn(s, "/");
	char kh[256];
	if (n == 0 || n >= sizeof(kh))
		return 0;
	memcpy(kh, s, n);
	kh[n] = '\0';
	return is_hub(host) ? is_hub(kh) : strcasecmp(kh, host) == 0;
}

/* The entry of obj whose key names host: an exact key first. */
static json_t *find_host(json_t *obj, const char *host)
{
	json_t *v = json_object_get(obj, host);
	if (v)
		return v;
	const char *k;
	json_object_foreach(obj, k, v)
		if (key_matches(k, host))
			return v;
	return NULL;
}

static int decode_auth(struct udfb_cred *c, const char *b64, const char *path, struct udfb_err *err)
{
	size_t n = strlen(b64);
	cleanup_free unsigned char *raw = udfb_malloc(n + 1);
	int len = n % 4 == 0 ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) : -1;
	if (len < 0) {
		free(udfb_steal(raw));
		return udfb_err_set(err, UDFB_E_INVALID, "%s: an auths entry's \"auth\" is not base64", path);
	}
	for (size_t k = n; k > 0 && b64[k - 1] == '='; k--)
		len--; /* EVP_DecodeBlock counts the padding */
	raw[len] = '\0';
	char *colon = memchr(raw, ':', (size_t)len);
	int rc = 0;
	if (!colon || memchr(raw, '\0', (size_t)len))
		rc = udfb_err_set(err, UDFB_E_INVALID, "%s: an auths entry's \"auth\" is not user:password", path);
	else {
		c->username = udfb_strndup((char *)raw, (size_t)(colon - (char *)raw));
		c->password = udfb_strdup(colon + 1);
	}
	OPENSSL_cleanse(raw, n + 1);
	return rc;
}

static int read_auths(struct udfb_dockercfg_entry *out, json_t *entry, const char *path, struct udfb_err *err)
{
	const char *auth = json_string_value(json_object_get(entry, "auth"));
	const char *user = json_string_value(json_object_get(entry, "username"));
	const char *pass = json_string_value(json_object_get(entry, "password"));
	const char *idt = json_string_value(json_object_get(entry, "identitytoken"));
	if (auth && *auth) {
		if (decode_auth(&out->cred, auth, path, err) < 0)
			return -1;
	} else if (user && *user && pass) {
		out->cred.username = udfb_strdup(user);
		out->cred.password = udfb_strdup(pass);
	}
	if (idt && *idt)
		out->cred.identity_token = udfb_strdup(idt);
	out->has_cred = out->cred.password || out->cred.identity_token;
	if (out->has_cred)
		out->cred.source = udfb_strdup(path);
	return 0;
}

int udfb_dockercfg_parse(struct udfb_dockercfg_entry *out, const char *text, size_t len, const char *host,
			 const char *path, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	json_t *j = json_loadb(text, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return udfb_err_set(err, UDFB_E_INVALID, "%s: not a JSON object", path);
	}
	int n = 0;
	const char *h = json_string_value(find_host(json_object_get(j, "credHelpers"), host));
	const char *store = json_string_value(json_object_get(j, "credsStore"));
	if (h && *h)
		out->helpers[n++] = udfb_strdup(h);
	if (store && *store && !(h && strcmp(h, store) == 0))
		out->helpers[n++] = udfb_strdup(store);
	json_t *entry = find_host(json_object_get(j, "auths"), host);
	int rc = json_is_object(entry) ? read_auths(out, entry, path, err) : 0;
	json_decref(j);
	if (rc < 0)
		udfb_dockercfg_entry_clear(out);
	return rc;
}

void udfb_dockercfg_entry_clear(struct udfb_dockercfg_entry *e)
{
	free(e->helpers[0]);
	free(e->helpers[1]);
	udfb_cred_clear(&e->cred);
	memset(e, 0, sizeof(*e));
}

char *udfb_dockercfg_path(void)
{
	const char *dir = getenv("DOCKER_CONFIG");
	if (dir && *dir)
		return udfb_path_join(dir, "config.json");
	const char *home = getenv("HOME");
	return home && *home ? udfb_path_join(home, ".docker/config.json") : NULL;
}

static void take(struct udfb_cred *out, struct udfb_cred *from)
{
	*out = *from;
	memset(from, 0, sizeof(*from));
}

int udfb_dockercfg_lookup(struct udfb_cred *out, const char *path, const char *host, struct udfb_err *err)
{
	memset(out, 0, sizeof(*out));
	cleanup_free char *text = NULL;
	size_t len = 0;
	if (!udfb_exists(path))
		return 0;
	if (udfb_read_file(&text, &len, path, UDFB_DOCKERCFG_MAX_BYTES, err) < 0)
		return -1;
	struct udfb_dockercfg_entry e;
	int rc = udfb_dockercfg_parse(&e, text, len, host, path, err);
	OPENSSL_cleanse(text, len);
	for (int k = 0; rc == 0 && k < 2 && e.helpers[k]; k++) {
		rc = udfb_dockercfg_helper_get(out, e.helpers[k], is_hub(host) ? HUB_KEY : host, err);
		if (rc != 0) {
			udfb_dockercfg_entry_clear(&e);
			return rc;
		}
	}
	if (rc == 0 && e.has_cred) {
		take(out, &e.cred);
		rc = 1;
	}
	if (rc >= 0)
		udfb_dockercfg_entry_clear(&e);
	return rc;
}

static int source_lookup(const struct udfb_cred_source *s, const char *host, struct udfb_cred *out,
			 struct udfb_err *err)
{
	(void)s;
	cleanup_free char *path = udfb_dockercfg_path();
	if (!path) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	return udfb_dockercfg_lookup(out, path, host, err);
}

const struct udfb_cred_source udfb_dockercfg_source = { "docker config.json", source_lookup, NULL };
