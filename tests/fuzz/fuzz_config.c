/* fuzz_config.c: arbitrary bytes into the YAML config loader. A failed
 * load must leave a "fuzz.yaml:..." message; a successful one must dump to
 * YAML that loads again and dumps to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const weft_config *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    if (weft_config_dump(cfg, f) != 0) {
        fprintf(stderr, "weft_config_dump failed\n");
        abort();
    }
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 64 * 1024)
        return 0;
    weft_config_error err;
    weft_config *cfg = weft_config_load_buffer((const char *)data, size, "fuzz.yaml", &err);
    if (!cfg) {
        if (strncmp(err.msg, "fuzz.yaml:", 10) != 0) {
            fprintf(stderr, "error without position: %s\n", err.msg);
            abort();
        }
        return 0;
    }
    char *text = dump(cfg);
    weft_config *again = weft_config_load_buffer(text, strlen(text), "fuzz.yaml", &err);
    if (!again) {
        fprintf(stderr, "dump does not load back: %s\n--- dump ---\n%s", err.msg, text);
        abort();
    }
    char *text2 = dump(again);
    if (strcmp(text, text2) != 0) {
        fprintf(stderr, "dump of the reloaded config differs\n--- first ---\n%s--- second ---\n%s",
                text, text2);
        abort();
    }
    free(text2);
    free(text);
    weft_config_free(again);
    weft_config_free(cfg);
    return 0;
}
