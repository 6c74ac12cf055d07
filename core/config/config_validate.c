/* config_validate.c: syntax checks of individual config values. */
#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "config/config_internal.h"

bool cfg_is_ip_literal(const char *s) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool cfg_is_hostname(const char *s) {
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

bool cfg_is_token(const char *s) {
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!(isalnum(*p) || (*p < 0x80 && strchr(extra, *p))))
            return false;
    return true;
}

bool cfg_is_header_value(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

bool cfg_is_path(const char *s) {
    if (s[0] != '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}

bool cfg_is_domain(const char *s) {
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

/* glibc's regcomp copies the subtree of every bounded repetition, so
 * "((a{255}){255}){255}" or "a++++...+" can take gigabytes. Before
 * compiling, estimate the expanded size, and refuse stacked repetition
 * operators (undefined in POSIX ERE) and back-references (exponential
 * matching). Returns NULL when acceptable, else the reason. */
#define REGEX_MAX_LEN 4096
#define REGEX_MAX_NODES 20000
#define REGEX_MAX_GROUPS 32

static const char *regex_complexity(const char *re) {
    struct {
        uint64_t total, last;
    } st[REGEX_MAX_GROUPS + 1];
    size_t depth = 0;
    bool after_rep = false;
    if (strlen(re) > REGEX_MAX_LEN)
        return "longer than 4096 characters";
    st[0].total = st[0].last = 0;
    for (const char *p = re; *p; p++) {
        uint64_t atom = 1;
        switch (*p) {
        case '(':
            if (depth == REGEX_MAX_GROUPS)
                return "more than 32 nested groups";
            depth++;
            st[depth].total = st[depth].last = 0;
            after_rep = false;
            continue;
        case ')':
            if (depth == 0)
                break; /* regcomp reports it */
            atom = st[depth].total + 1;
            depth--;
            break;
        case '|':
            st[depth].last = 0;
            after_rep = false;
            continue;
        case '\\':
            if (p[1] >= '1' && p[1] <= '9')
                return "back-references are not supported";
            if (p[1])
                p++;
            break;
        case '[': {
            const char *q = p + 1;
            if (*q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']') {
                if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
                    char close = q[1];
                    q += 2;
                    while (*q && !(q[0] == close && q[1] == ']'))
                        q++;
                    if (*q)
                        q += 2;
                    continue;
                }
                q++;
            }
            if (!*q)
                return NULL; /* unterminated: regcomp reports it */
            p = q;
            break;
        }
        case '*':
        case '+':
        case '?':
        case '{': {
            uint64_t times = 2;
            if (*p == '{') {
                const char *q = p + 1;
                uint64_t lo = 0, hi = 0;
                bool have_hi = false;
                if (*q < '0' || *q > '9')
                    break; /* not a bound: a literal or an error for regcomp */
                while (*q >= '0' && *q <= '9' && lo < 100000)
                    lo = lo * 10 + (uint64_t)(*q++ - '0');
                if (*q == ',') {
                    q++;
                    while (*q >= '0' && *q <= '9' && hi < 100000) {
                        hi = hi * 10 + (uint64_t)(*q++ - '0');
                        have_hi = true;
                    }
                }
                if (*q != '}')
                    break;
                times = (have_hi ? hi : lo) + 1;
                p = q;
            }
            if (after_rep)
                return "a repetition operator follows another repetition";
            after_rep = true;
            st[depth].total += st[depth].last * times;
            st[depth].last *= times + 1;
            if (st[depth].total > REGEX_MAX_NODES || st[depth].last > REGEX_MAX_NODES)
                return "too complex (repetitions expand too far)";
            continue;
        }
        default:
            break;
        }
        after_rep = false;
        st[depth].total += atom;
        st[depth].last = atom;
        if (st[depth].total > REGEX_MAX_NODES)
            return "too complex (repetitions expand too far)";
    }
    return NULL;
}

bool cfg_regex_ok(const char *re, bool icase, char *msg, size_t msglen) {
    const char *why = regex_complexity(re);
    if (why) {
        snprintf(msg, msglen, "%s", why);
        return false;
    }
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

void cfg_lower(char *s) {
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}
