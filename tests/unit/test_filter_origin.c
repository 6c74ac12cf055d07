/* test_filter_origin.c: who may make weft load which file. Filters are
 * named ([a-z0-9_-], never a path); loading by `path:` needs
 * `allow_filter_paths: true` in a static config; a config whose origin is
 * WEFT_CONFIG_PUSHED (a control plane) never loads by path nor chooses the
 * filter directories, neither when loaded nor when a chain is built from
 * it (whatever its allow_filter_paths says). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "filter/filter.h"

#define HEAD                                                                                       \
    "listeners:\n"                                                                                 \
    "  - name: l\n"                                                                                \
    "    port: 10000\n"                                                                            \
    "    virtual_hosts: [{name: v, domains: ['*'], routes: [{match: {prefix: /}, cluster: "        \
    "c}]}]\n"                                                                                      \
    "    filters:\n"
#define TAIL "clusters: [{name: c, endpoints: [{address: 127.0.0.1, port: 1}]}]\n"

static weft_config *load_from(const char *yaml, weft_config_origin origin, weft_config_error *err) {
    memset(err, 0, sizeof(*err));
    return weft_config_load_buffer_from(yaml, strlen(yaml), "weft.yaml", origin, err);
}

static void expect_refused(const char *yaml, weft_config_origin origin, const char *msg) {
    weft_config_error err;
    weft_config *cfg = load_from(yaml, origin, &err);
    if (cfg) {
        weft_config_free(cfg);
        fail_msg("config loaded, expected: %s", msg);
    }
    assert_string_equal(err.msg, msg);
}

static void test_path_needs_allow_filter_paths(void **state) {
    (void)state;
    expect_refused(HEAD "      - {name: hello, path: ./hello.so}\n" TAIL, WEFT_CONFIG_STATIC,
                   "weft.yaml:6:29: filter \"hello\": loading by path needs allow_filter_paths: "
                   "true at the top level; or drop path and put hello.so in a filter_path "
                   "directory");
    weft_config_error err;
    weft_config *cfg = load_from("allow_filter_paths: true\n" HEAD
                                 "      - {name: hello, path: ./hello.so}\n" TAIL,
                                 WEFT_CONFIG_STATIC, &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->origin, WEFT_CONFIG_STATIC);
    assert_true(cfg->allow_filter_paths);
    assert_string_equal(cfg->listeners[0].filters[0].path, "./hello.so");
    weft_config_free(cfg);
    /* the plain loader is the static one */
    cfg = weft_config_load_buffer("{}", 2, "x.yaml", &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->origin, WEFT_CONFIG_STATIC);
    assert_false(cfg->allow_filter_paths);
    weft_config_free(cfg);
}

static void test_pushed_refuses_paths_at_load(void **state) {
    (void)state;
    expect_refused("allow_filter_paths: true\n" HEAD
                   "      - {name: hello, path: ./hello.so}\n" TAIL,
                   WEFT_CONFIG_PUSHED,
                   "weft.yaml:1:21: allow_filter_paths is a static-config option: a pushed "
                   "config cannot set it");
    expect_refused("filter_path: [/tmp]\n" HEAD "      - {name: hello}\n" TAIL, WEFT_CONFIG_PUSHED,
                   "weft.yaml:1:14: filter_path is a static-config option: a pushed config "
                   "cannot set it");
    expect_refused(HEAD "      - {name: hello, path: /tmp/hello.so}\n" TAIL, WEFT_CONFIG_PUSHED,
                   "weft.yaml:6:29: filter \"hello\": a pushed config cannot load a filter by path "
                   "(name it; it is found in the proxy's filter directories)");
    /* by name it loads, and says where it came from */
    weft_config_error err;
    weft_config *cfg = load_from(HEAD "      - {name: hello}\n" TAIL, WEFT_CONFIG_PUSHED, &err);
    assert_non_null(cfg);
    assert_int_equal(cfg->origin, WEFT_CONFIG_PUSHED);
    weft_config_free(cfg);
}

/* A pushed config object that carries a path anyway (built by other code
 * than the YAML loader, or flipped after loading) is refused by the chain
 * builder before any file is touched, whatever allow_filter_paths says. */
static void test_pushed_refuses_paths_at_chain_build(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load_from("allow_filter_paths: true\n" HEAD
                                 "      - {name: hello, path: /nonexistent/hello.so}\n" TAIL,
                                 WEFT_CONFIG_STATIC, &err);
    assert_non_null(cfg);
    cfg->origin = WEFT_CONFIG_PUSHED;
    weft_filter_chain chain;
    char msg[512] = "";
    assert_int_equal(weft_filter_chain_build(&chain, cfg, 0, "l", msg, sizeof(msg)), -1);
    assert_string_equal(msg, "weft.yaml:7:9: filter \"hello\": loading by path is not allowed in a "
                             "pushed config");
    weft_filter_chain_destroy(&chain);
    /* static, but allow_filter_paths off (a config built by code) */
    cfg->origin = WEFT_CONFIG_STATIC;
    cfg->allow_filter_paths = false;
    assert_int_equal(weft_filter_chain_build(&chain, cfg, 0, "l", msg, sizeof(msg)), -1);
    assert_string_equal(msg, "weft.yaml:7:9: filter \"hello\": loading by path is not allowed "
                             "without allow_filter_paths: true");
    weft_filter_chain_destroy(&chain);
    /* static and allowed: it gets as far as looking for the file */
    cfg->allow_filter_paths = true;
    assert_int_equal(weft_filter_chain_build(&chain, cfg, 0, "l", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "cannot find /nonexistent/hello.so"));
    weft_filter_chain_destroy(&chain);
    weft_config_free(cfg);
}

static void test_names_are_plain(void **state) {
    (void)state;
    static const char *const bad[] = {"../hello", "a/b", "Hello", "hello.so", "..", "a b", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[1024], want[256];
        snprintf(yaml, sizeof(yaml), HEAD "      - {name: \"%s\"}\n" TAIL, bad[i]);
        weft_config_error err;
        weft_config *cfg = load_from(yaml, WEFT_CONFIG_STATIC, &err);
        if (cfg) {
            weft_config_free(cfg);
            fail_msg("name \"%s\" accepted", bad[i]);
        }
        /* spaces and empty names fail the generic name check first */
        snprintf(want, sizeof(want), "%s",
                 strpbrk(bad[i], " ") || !*bad[i] ? "filter name" : "must be 1-48 of [a-z0-9_-]");
        if (!strstr(err.msg, want))
            fail_msg("name \"%s\": %s", bad[i], err.msg);
    }
    char yaml[1024];
    snprintf(yaml, sizeof(yaml), HEAD "      - {name: %s}\n" TAIL,
             "a123456789012345678901234567890123456789012345678"); /* 49 */
    weft_config_error err;
    assert_null(load_from(yaml, WEFT_CONFIG_STATIC, &err));
    weft_config *cfg =
        load_from(HEAD "      - {name: my-filter_2}\n" TAIL, WEFT_CONFIG_PUSHED, &err);
    assert_non_null(cfg);
    assert_string_equal(cfg->listeners[0].filters[0].name, "my-filter_2");
    weft_config_free(cfg);
}

static void test_dump_keeps_allow_filter_paths(void **state) {
    (void)state;
    weft_config_error err;
    weft_config *cfg = load_from("allow_filter_paths: true\n" HEAD
                                 "      - {name: hello, path: ./hello.so}\n" TAIL,
                                 WEFT_CONFIG_STATIC, &err);
    assert_non_null(cfg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(weft_config_dump(cfg, f), 0);
    fclose(f);
    weft_config_free(cfg);
    assert_non_null(strstr(buf, "allow_filter_paths: true\n"));
    cfg = load_from(buf, WEFT_CONFIG_STATIC, &err);
    if (!cfg)
        fail_msg("dump does not load again: %s\n%s", err.msg, buf);
    assert_true(cfg->allow_filter_paths);
    weft_config_free(cfg);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_needs_allow_filter_paths),
        cmocka_unit_test(test_pushed_refuses_paths_at_load),
        cmocka_unit_test(test_pushed_refuses_paths_at_chain_build),
        cmocka_unit_test(test_names_are_plain),
        cmocka_unit_test(test_dump_keeps_allow_filter_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
