/* no_entry: a shared object that is not a weft filter: it exports a
 * function, but not the entry symbol (weft_filter_entry_v1). The loader
 * must refuse it naming the file and the missing symbol. */
#include <weft/filter.h>

WEFT_EXPORT int weft_filter_entry_v0(void);
WEFT_EXPORT int weft_filter_entry_v0(void) {
    return WEFT_ABI_MAJOR;
}
