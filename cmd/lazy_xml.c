/* libxml2, loaded when the first package index page is parsed
 * (pkgindex/pkgindex_html.c): the functions it calls, and xmlFree, which
 * libxml2 exports as a variable holding its deallocator.  See lazylib.h. */
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "cmd/lazylib.h"

/* Each function as (return type, name, parameters, arguments). */
#define XML_FUNCS(X)                                                                                                 \
	X(xmlChar *, xmlGetProp, (const xmlNode *node, const xmlChar *name), (node, name))                           \
	X(xmlAttrPtr, xmlHasProp, (const xmlNode *node, const xmlChar *name), (node, name))                          \
	X(xmlChar *, xmlNodeGetContent, (const xmlNode *cur), (cur))                                                 \
	X(int, xmlStrcasecmp, (const xmlChar *a, const xmlChar *b), (a, b))                                          \
	X(htmlParserCtxtPtr, htmlNewParserCtxt, (void), ())                                                          \
	X(htmlDocPtr, htmlCtxtReadMemory,                                                                            \
	  (xmlParserCtxtPtr ctxt, const char *buffer, int size, const char *url, const char *encoding, int options), \
	  (ctxt, buffer, size, url, encoding, options))
#define XML_VOID_FUNCS(X)                           \
	X(void, xmlInitParser, (void), ())          \
	X(void, xmlFreeDoc, (xmlDocPtr cur), (cur)) \
	X(void, htmlFreeParserCtxt, (htmlParserCtxtPtr ctxt), (ctxt))

enum { XML_FUNCS(UDFB_LAZY_ENUM) XML_VOID_FUNCS(UDFB_LAZY_ENUM) UDFB_LAZY_xmlFree, N_SYMS };
static const char *const names[] = { XML_FUNCS(UDFB_LAZY_NAME) XML_VOID_FUNCS(UDFB_LAZY_NAME) "xmlFree", NULL };
static void *syms[N_SYMS];
static struct udfb_lazylib lazy_lib = { "libxml2.so.2", names, syms, PTHREAD_ONCE_INIT };

XML_FUNCS(UDFB_LAZY_FORWARD)
XML_VOID_FUNCS(UDFB_LAZY_FORWARD_VOID)

/* Memory that libxml2 handed out goes back through its own xmlFree
 * (xmlMemSetup may have replaced free). */
static void free_via_libxml2(void *p)
{
	xmlFreeFunc *real = udfb_lazylib_syms(&lazy_lib)[UDFB_LAZY_xmlFree];
	(*real)(p);
}

xmlFreeFunc xmlFree = free_via_libxml2;
