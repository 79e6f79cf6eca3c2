/* For unit tests: the temporary files udfb_mktemp left in a directory. */
#ifndef UDFB_TEST_TMPFILES_H
#define UDFB_TEST_TMPFILES_H

#include <dirent.h>
#include <string.h>

/* Files in dir whose name starts with ".tmp-" (udfb_mktemp's names). */
static inline int count_temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strncmp(e->d_name, ".tmp-", 5) == 0;
	if (d)
		closedir(d);
	return n;
}

#endif
