/* PEP 508 environment markers, evaluated for the target runtime (not the
 * machine we run on): "python_version >= '3.8' and sys_platform == 'linux'". */
#ifndef UDFB_MARKER_H
#define UDFB_MARKER_H

#include <stddef.h>

#include "common/err.h"

/* The marker environment of a target.  udfb_pyenv_init fills a CPython on
 * Linux: python_version "3.12" and python_full_version "3.12.2" from
 * python_full ("3.12" alone gives "3.12.0"), platform_machine from machine
 * ("x86_64", "aarch64"), os_name "posix", sys_platform "linux",
 * platform_system "Linux", implementation_name "cpython",
 * platform_python_implementation "CPython", implementation_version =
 * python_full_version, platform_release and platform_version "". */
struct udfb_pyenv {
	char python_version[16];
	char python_full_version[32];
	char platform_machine[32];
	char platform_release[64];
	char platform_version[128];
};

void udfb_pyenv_init(struct udfb_pyenv *e, const char *python_full, const char *machine);

/* 1 when marker holds, 0 when not, -1 (UDFB_E_INVALID) when it does not
 * parse (longer than 4096 bytes, parentheses nested deeper than 32, a
 * backslash or control byte, two strings compared) or holds an undefined
 * comparison ('~=' between non-versions).  Like pip, a marker holds when it
 * holds for extra == "" or for extra == any of extras (already PEP 503
 * normalised; the marker's extra names are normalised before comparing).
 * Comparisons are PEP 440 version comparisons when the right side parses as
 * a specifier with the operator and the left as a version (as Python's
 * packaging does; packaging 24 raises when the left is not a version), else
 * plain string comparisons (==, !=, <, <=, >, >=, in, not in; === as
 * case-insensitive equality).  The legacy names os.name, sys.platform,
 * platform.version, platform.machine, platform.python_implementation and
 * python_implementation are accepted. */
int udfb_marker_eval(const char *marker, const struct udfb_pyenv *env, char *const *extras, size_t n_extras,
		     struct udfb_err *err);

#endif
