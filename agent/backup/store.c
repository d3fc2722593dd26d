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
