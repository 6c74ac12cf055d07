/* ft_config.h: the config accessor host functions (ft_config.c). */
#ifndef WEFT_FT_CONFIG_H
#define WEFT_FT_CONFIG_H

#include <weft/filter.h>

const weft_config_node *ft_cfg_get(const weft_config_node *map, const char *key);
bool ft_cfg_is_map(const weft_config_node *n);
bool ft_cfg_is_list(const weft_config_node *n);
bool ft_cfg_is_scalar(const weft_config_node *n);
size_t ft_cfg_len(const weft_config_node *n);
const weft_config_node *ft_cfg_at(const weft_config_node *list, size_t i);
const weft_config_node *ft_cfg_entry(const weft_config_node *map, size_t i, weft_str *key);
weft_result ft_cfg_string(const weft_config_node *n, weft_str *out);
weft_result ft_cfg_int(const weft_config_node *n, int64_t *out);
weft_result ft_cfg_bool(const weft_config_node *n, bool *out);
weft_result ft_cfg_duration_ms(const weft_config_node *n, uint64_t *out);
weft_result ft_cfg_size(const weft_config_node *n, uint64_t *out);
weft_result ft_cfg_percent(const weft_config_node *n, double *out);
int ft_cfg_fail(weft_filter_setup *setup, const weft_config_node *n, const char *msg);
const char *ft_cfg_dir(weft_filter_setup *setup);

#endif
