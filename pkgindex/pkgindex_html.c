/* PEP 503 HTML project pages, with PEP 592's data-yanked, PEP 503's
 * data-requires-python and PEP 658/714's data-core-metadata.  libxml2's
 * HTML parser reads the page (tag soup recovered, entities decoded, no
 * network); this walks its anchors.  As for JSON pages, an anchor that
 * cannot be used is left out. */
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "pkgindex/pkgindex_internal.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser(); /* once, before any thread parses */
}

static char *attr(xmlNode *n, const char *name)
{
	xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
	if (!v)
		return NULL;
	char *s = udfb_strdup((const char *)v);
	xmlFree(v);
	return s;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The anchor's text, trimmed: PEP 503 makes it the file name. */
static char *anchor_text(xmlNode *n)
{
	xmlChar *v = xmlNodeGetContent(n);
	if (!v)
		return NULL;
	const char *s = (const char *)v;
	size_t len = strlen(s);
	while (len && is_space(s[len - 1]))
		len--;
	while (len && is_space(*s))
		s++, len--;
	char *out = udfb_strndup(s, len);
	xmlFree(v);
	return out;
}

/* "true", or "<hashname>=<hashvalue>" (PEP 658). */
static void read_metadata(struct udfb_pkgfile *f, xmlNode *n)
{
	char *v = attr(n, "data-core-metadata");
	if (!v)
		v = attr(n, "data-dist-info-metadata");
	if (v && strcmp(v, "false") != 0) {
		f->has_metadata = 1;
		if (strncmp(v, "sha256=", 7) == 0 && udfb_sha256_hex_parse(f->metadata_sha256, v + 7) < 0)
			f->metadata_sha256[0] = '\0';
	}
	free(v);
}

/* 0 when the anchor is a usable file, -1 to leave it out. */
static int read_anchor(struct udfb_pkgfile *f, xmlNode *n, CURLU *base)
{
	char *href = attr(n, "href"), *frag = NULL;
	f->filename = anchor_text(n);
	f->url = href ? udfb_url_resolve(base, href, &frag) : NULL;
	free(href);
	int rc = f->filename && f->url && udfb_pkgfile_name_ok(f->filename) ? 0 : -1;
	/* The fragment is "#<hashname>=<hashvalue>"; only sha256 is used, and
	 * a sha256 we cannot read cannot be checked. */
	if (rc == 0 && frag && strncmp(frag, "sha256=", 7) == 0)
		rc = udfb_sha256_hex_parse(f->sha256, frag + 7);
	free(frag);
	if (rc < 0)
		return -1;
	f->requires_python = attr(n, "data-requires-python");
	if (f->requires_python && !*f->requires_python) {
		free(f->requires_python);
		f->requires_python = NULL;
	}
	f->yanked = xmlHasProp(n, (const xmlChar *)"data-yanked") != NULL; /* its value is the reason */
	read_metadata(f, n);
	return 0;
}

/* <base href> changes what later links resolve against. */
static void read_base(CURLU *base, xmlNode *n)
{
	char *href = attr(n, "href"), *frag = NULL;
	char *url = href ? udfb_url_resolve(base, href, &frag) : NULL;
	free(href);
	free(frag);
	if (url)
		curl_url_set(base, CURLUPART_URL, url, 0); /* on failure the old base stays */
	free(url);
}

static int is_element(xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->name && xmlStrcasecmp(n->name, (const xmlChar *)name) == 0;
}

/* Depth first without recursion: tag soup may nest deeply. */
static xmlNode *next_node(xmlNode *n)
{
	if (n->children && n->type == XML_ELEMENT_NODE)
		return n->children;
	while (n && !n->next)
		n = n->parent;
	return n ? n->next : NULL;
}

static int walk(struct udfb_pkgproject *out, xmlDoc *doc, CURLU *base, struct udfb_err *err)
{
	struct udfb_pkglist l = { out, 0 };
	for (xmlNode *n = doc->children; n; n = next_node(n)) {
		if (is_element(n, "base"))
			read_base(base, n);
		if (!is_element(n, "a"))
			continue;
		struct udfb_pkgfile *f = udfb_pkglist_push(&l);
		if (!f)
			return udfb_err_set(err, UDFB_E_EXHAUSTED, "more than %d files", UDFB_INDEX_MAX_FILES);
		if (read_anchor(f, n, base) < 0)
			udfb_pkglist_pop(&l);
	}
	return 0;
}

int udfb_pkgindex_parse_html(struct udfb_pkgproject *out, const char *page_url, const char *body, size_t len,
			     struct udfb_err *err)
{
	CURLU *base;
	if (udfb_pkgpage_begin(out, &base, page_url, len, err) < 0)
		return -1;
	pthread_once(&xml_once, xml_init);
	htmlParserCtxtPtr ctxt = htmlNewParserCtxt();
	if (!ctxt)
		abort();
	/* PEP 503 pages are UTF-8; libxml2 would otherwise guess Latin-1. */
	htmlDocPtr doc =
		htmlCtxtReadMemory(ctxt, body, (int)len, NULL, "UTF-8",
				   HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER);
	int rc = 0;
	/* Tag soup is recovered; a parser that stopped (nesting over its
	 * depth limit, say) would hide every link after that point. */
	if (ctxt->disableSAX)
		rc = udfb_err_set(err, UDFB_E_INVALID,
				  "HTML that libxml2 stopped reading (nested too deep, or over its limits)");
	else if (doc)
		rc = walk(out, doc, base, err);
	/* No document at all is an empty page (libxml2 returns none for
	 * empty input): a project without files, as the JSON would say. */
	xmlFreeDoc(doc);
	htmlFreeParserCtxt(ctxt);
	curl_url_cleanup(base);
	if (rc < 0)
		udfb_pkgproject_free(out);
	return rc;
}
