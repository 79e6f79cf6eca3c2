/* Package settings: see pkgopts.h. */
#include "pkgindex/pkgopts.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "fetch/netguard.h"
#include "pkgindex/pkgindex.h"

void udfb_pkg_opts_defaults(struct udfb_pkg_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->glibc_major = UDFB_PKG_DEFAULT_GLIBC_MAJOR;
	o->glibc_minor = UDFB_PKG_DEFAULT_GLIBC_MINOR;
	o->python = udfb_strdup(UDFB_PKG_DEFAULT_PYTHON);
	o->layer_budget = 16;
	o->max_unpacked = UDFB_PKG_DEFAULT_MAX_UNPACKED;
	o->max_unpack_ms = UDFB_PKG_DEFAULT_MAX_UNPACK_MS;
	udfb_netguard_new(&o->guard);
}

void udfb_pkg_opts_clear_index(struct udfb_pkg_opts *o)
{
	for (size_t k = 0; k < o->n_index; k++)
		free(o->index[k]);
	free(o->index);
	o->index = NULL;
	o->n_index = 0;
}

void udfb_pkg_opts_free(struct udfb_pkg_opts *o)
{
	udfb_pkg_opts_clear_index(o);
	free(o->python);
	udfb_netguard_free(o->guard);
	memset(o, 0, sizeof(*o));
}

/* An http(s) index opens its host in the package guard; a directory (or
 * file:// URL) needs nothing. */
int udfb_pkg_opts_add_index(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err)
{
	if (!*v)
		return udfb_err_set(err, UDFB_E_INVALID, "empty");
	if (o->n_index >= 16)
		return udfb_err_set(err, UDFB_E_INVALID, "at most 16 indexes");
	if (strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0) {
		CURLU *u = curl_url();
		char *host = NULL;
		int ok = curl_url_set(u, CURLUPART_URL, v, 0) == CURLUE_OK &&
			 curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
		int rc = ok ? udfb_netguard_allow(o->guard, host, err) : -1;
		curl_free(host);
		curl_url_cleanup(u);
		if (rc < 0) {
			char *shown = udfb_url_display(v);
			udfb_err_clear(err);
			udfb_err_set(err, UDFB_E_INVALID, "'%s' is not a usable URL", shown);
			free(shown);
			return -1;
		}
	} else if (strstr(v, "://") && strncmp(v, "file://", 7) != 0) {
		return udfb_err_set(err, UDFB_E_INVALID, "only http, https and directories are supported");
	}
	o->index = udfb_realloc(o->index, (o->n_index + 1) * sizeof(*o->index));
	o->index[o->n_index++] = udfb_strdup(v);
	return 0;
}

int udfb_pkg_opts_set_glibc(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err)
{
	int ma = 0, mi = 0, n = 0;
	if (sscanf(v, "%d.%d%n", &ma, &mi, &n) != 2 || v[n] || ma != 2 || mi < 5 || mi > 99)
		return udfb_err_set(err, UDFB_E_INVALID, "'%s' is not a glibc version like 2.36", v);
	o->glibc_major = ma;
	o->glibc_minor = mi;
	return 0;
}

int udfb_pkg_opts_set_python(struct udfb_pkg_opts *o, const char *v, struct udfb_err *err)
{
	int ma = 0, mi = 0, n = 0;
	if (sscanf(v, "%d.%d%n", &ma, &mi, &n) != 2 || ma != 3 || mi < 0 || mi > 99 ||
	    (v[n] && (v[n] != '.' || strspn(v + n + 1, "0123456789") != strlen(v + n + 1) || !v[n + 1])))
		return udfb_err_set(err, UDFB_E_INVALID, "'%s' is not a Python 3 version like 3.12", v);
	free(o->python);
	o->python = udfb_strdup(v);
	return 0;
}
