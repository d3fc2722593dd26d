/* What every kind of store shares (store.h). */
#include <stdlib.h>

#include "store.h"

void ha_store_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void ha_store_free(struct ha_store *s)
{
	if (s->ops && s->ops->destroy)
		s->ops->destroy(s);
	s->impl = NULL;
}

size_t ha_store_copy_order(struct ha_store *s, size_t n, unsigned order[32])
{
	unsigned failing = atomic_load(&s->failing);
	size_t m = 0;
	for (unsigned late = 0; late < 2; late++)
		for (size_t k = 0; k < n && k < 32; k++)
			if (((failing >> k) & 1u) == late)
				order[m++] = (unsigned)k;
	return m;
}

void ha_store_copy_failed(struct ha_store *s, size_t k)
{
	if (k < 32)
		atomic_fetch_or(&s->failing, 1u << k);
}
