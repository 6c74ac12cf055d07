/* config_validate.c: syntax checks of individual config values. */
#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

bool cfg_is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool cfg_is_hostname(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!(isalnum(ch) || ch == '-' || ch == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

bool cfg_is_token(const char *s)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!(isalnum(*p) || (*p < 0x80 && strchr(extra, *p))))
            return false;
    return true;
}

bool cfg_is_header_value(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

bool cfg_is_path(const char *s)
{
    if (s[0] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

bool cfg_is_domain(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    if (s[0] == '*' && s[1] == '.')
        return cfg_is_hostname(s + 2);
    size_t len = strlen(s);
    if (len > 2 && s[0] == '[' && s[len - 1] == ']') {
        char inner[64];
        unsigned char buf[sizeof(struct in6_addr)];
        if (len - 2 >= sizeof(inner))
            return false;
        memcpy(inner, s + 1, len - 2);
        inner[len - 2] = '\0';
        return inet_pton(AF_INET6, inner, buf) == 1;
    }
    return cfg_is_hostname(s);
}

bool cfg_regex_ok(const char *re, bool icase, char *msg, size_t msglen)
{
    regex_t rx;
    int flags = REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0);
    int rc = regcomp(&rx, re, flags);
    if (rc != 0) {
        regerror(rc, &rx, msg, msglen);
        return false;
    }
    regfree(&rx);
    return true;
}

void cfg_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}
