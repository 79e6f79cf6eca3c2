/* A Databend script run as-is (script_mode = run): the image and the key.
 *
 * A script the parser refuses for its shape (a newer Databend's template)
 * is run as the script says, the way Databend's own control plane does:
 * pip installs its packages, its downloader fetches its imports, and it
 * execs its server.  The image is the runtime base and one small layer:
 *   /udfb/run/script.sh         the script without its URLs' query strings
 *                               (a presigned URL's signature is a secret:
 *                               never in an image)
 *   /udfb/run/start.sh          the command: makes /tmp/app (/app links
 *                               there: the root file system is read-only),
 *                               points pip at the configured index, puts
 *                               the query strings back from the sandbox's
 *                               UDFB_RUN_QUERIES (resign.py, into /tmp) and
 *                               runs that script with bash
 *   /udfb/run/sitecustomize.py  hooks databend_udf's UDFServer behind the
 *   /udfb/run/udfb_guard.py     x-authorization check (the stub's text is
 *                               left alone; templates/databend/run_site.py)
 *   /udfb/run/pip.whl           when the base has no pip: Debian's
 *                               python3-pip-whl wheel, imported from the
 *                               zip (pip then installs into /tmp)
 *   /udfb/run/bin/python        `python` for a base that only has python3
 *   /etc/hosts                  the index's and import hosts' names, as the
 *                               service resolved them (the sandbox has no DNS)
 * The key covers what decides the sandbox except URLs' signatures: the
 * script with every URL's query string left out, the base, the index, the
 * tenant.  The same UDF re-signed has the same key and reuses the running
 * sandbox; the image is the same for the same key, and a restart gets the
 * signatures of the call that restarts it. */
#ifndef UDFB_RUN_H
#define UDFB_RUN_H

#include <jansson.h>
#include <stddef.h>

#include "builder/build.h"
#include "common/err.h"
#include "common/hash.h"

struct udfb_run_in {
	const char *script;
	size_t len;
	const char *index_url; /* PIP_INDEX_URL (http or https); NULL: pip's own default */
	const char *pip_wheel; /* a pip wheel to add (the base has none); NULL: none */
	/* /etc/hosts of the sandbox: the index's and import hosts' names with
	 * the addresses the service resolved (its egress opens only those; it
	 * has no DNS).  NULL: the base's. */
	const char *hosts;
};

/* The script with the query string of every http(s) URL left out (a
 * presigned URL's signature changes at every query). */
char *udfb_run_unsigned(const char *script, size_t len, size_t *out_len);
/* The same, and *queries the left-out parts in order, one string per URL
 * ("" for a URL without one): what UDFB_RUN_QUERIES gives the sandbox. */
char *udfb_run_split(const char *script, size_t len, size_t *out_len, json_t **queries);
/* The URLs of the script's imports: "url" of each object of a line that is
 * a JSON array of objects with "location" and "url" (Databend writes its
 * imports.json so).  NULL-terminated; *n of them.  Secrets: never logged. */
char **udfb_run_import_urls(const char *script, size_t len, size_t *n);
void udfb_run_urls_free(char **urls);
/* Host and port of an http(s) URL ("host:port", 80/443 by default). */
int udfb_run_host_port(const char *url, char **host, int *port, struct udfb_err *err);
void udfb_run_key(char key[UDFB_DIGEST_LEN + 1], const struct udfb_run_in *in, const char *tenant, const char *scope,
		  const char *base_digest, const struct udfb_build_opts *o);
/* The host's pip wheel (/usr/share/python-wheels/pip-*.whl, Debian's
 * python3-pip-whl), the newest by name; NULL when there is none. */
char *udfb_run_host_pip(void);
int udfb_build_run(struct udfb_build_result *out, const char *key, const struct udfb_run_in *in,
		   const struct udfb_build_opts *o, struct udfb_err *err);

#endif
