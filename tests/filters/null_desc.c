/* null_desc: exports the entry symbol, which returns NULL instead of a
 * descriptor. The loader must refuse it naming the file. */
#include <weft/filter.h>

WEFT_EXPORT const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host);
WEFT_EXPORT const weft_filter_descriptor *weft_filter_entry_v1(const weft_host_api *host) {
    return NULL;
}
