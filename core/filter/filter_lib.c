/* filter_lib.c: loading filter libraries and building chains. */
#include "filter/filter.h"
#include "router/router.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "common/shared_reg.h"
#include "filter/filter_setup.h"
#include "filter/config_timer.h"

static pthread_mutex_t libs_mu = PTHREAD_MUTEX_INITIALIZER;
static weft_filter_lib *libs;

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int try_dir(const char *dir, const char *name, char *out, size_t outlen) {
    if (!dir || !*dir)
        return -1;
    int n = snprintf(out, outlen, "%s/%s.so", dir, name);
    if (n < 0 || (size_t)n >= outlen || !file_exists(out))
        return -1;
    return 0;
}

int weft_filter_resolve(const weft_config *cfg, const weft_cfg_filter *f, char *out,
                        size_t outlen) {
    char tmp[PATH_MAX];
    if (f->path) {
        if (f->path[0] == '/')
            snprintf(tmp, sizeof(tmp), "%s", f->path);
        else
            snprintf(tmp, sizeof(tmp), "%s/%s", cfg->source_dir ? cfg->source_dir : ".", f->path);
        if (!realpath(tmp, out))
            return -1;
        return 0;
    }
    for (size_t i = 0; i < cfg->n_filter_paths; i++) {
        const char *d = cfg->filter_paths[i];
        char dir[PATH_MAX];
        if (d[0] == '/')
            snprintf(dir, sizeof(dir), "%s", d);
        else
            snprintf(dir, sizeof(dir), "%s/%s", cfg->source_dir ? cfg->source_dir : ".", d);
        if (try_dir(dir, f->name, tmp, sizeof(tmp)) == 0)
            return realpath(tmp, out) ? 0 : -1;
    }
    const char *env = getenv("WEFT_FILTER_PATH");
    if (env) {
        char *copy = strdup(env), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
            if (try_dir(d, f->name, tmp, sizeof(tmp)) == 0) {
                free(copy);
                return realpath(tmp, out) ? 0 : -1;
            }
        free(copy);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            static const char *rel[] = {"../filters", "../lib/weft/filters"};
            for (size_t i = 0; i < WEFT_ARRAY_LEN(rel); i++) {
                char dir[PATH_MAX];
                snprintf(dir, sizeof(dir), "%s/%s", exe, rel[i]);
                if (try_dir(dir, f->name, tmp, sizeof(tmp)) == 0)
                    return realpath(tmp, out) ? 0 : -1;
            }
        }
    }
    return -1;
}

void weft_filter_lib_ref(weft_filter_lib *lib) {
    if (lib)
        atomic_fetch_add_explicit(&lib->refs, 1, memory_order_relaxed);
}

void weft_filter_lib_unref(weft_filter_lib *lib) {
    if (!lib || atomic_fetch_sub_explicit(&lib->refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_lock(&libs_mu);
    for (weft_filter_lib **pp = &libs; *pp; pp = &(*pp)->next)
        if (*pp == lib) {
            *pp = lib->next;
            break;
        }
    pthread_mutex_unlock(&libs_mu);
    if (lib->retired)
        WEFT_INFO("filter library %s: old copy released (its last snapshot is gone)", lib->path);
    WEFT_DEBUG("filter library %s unloaded", lib->path);
    dlclose(lib->dl);
    close(lib->fd);
    free(lib->path);
    free(lib);
}

/* Refuses a file or directory that someone other than root and weft's
 * own user could change: writable by group or others, or owned by another
 * user. `what` names it in the message ("" for the file itself). */
static int check_owner_mode(const struct stat *st, const char *path, const char *what, char *err,
                            size_t errlen) {
    uid_t me = geteuid();
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s: refused: %s%swritable (mode %04o); allow writes by its owner only", path,
                 what, (st->st_mode & S_IWOTH) ? "world-" : "group-",
                 (unsigned)(st->st_mode & 07777));
        return -1;
    }
    if (st->st_uid != 0 && st->st_uid != me) {
        snprintf(err, errlen,
                 "%s: refused: %sowned by uid %u, neither root nor weft's user (uid %u)", path,
                 what, (unsigned)st->st_uid, (unsigned)me);
        return -1;
    }
    return 0;
}

/* Opens `path` for loading: the directory first (checked on its own fd),
 * then the file relative to that fd without following a symlink, and the
 * file checked on its fd. The caller identifies and copies through the
 * same fd, so what was checked is what is loaded. */
static int open_checked(const char *path, struct stat *st, char *err, size_t errlen) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = path;
    if (slash) {
        base = path + (slash - dir) + 1;
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat dst;
    if (dfd < 0 || fstat(dfd, &dst) != 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    char what[PATH_MAX + 32];
    snprintf(what, sizeof(what), "its directory %s is ", dir);
    if (check_owner_mode(&dst, path, what, err, errlen) != 0) {
        close(dfd);
        return -1;
    }
    int fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -1;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (check_owner_mode(st, path, "", err, errlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Copies the st_size bytes of the file behind `fd` into `dst`, then
 * checks the file did not change meanwhile (a writer in the middle of a
 * cp: the copy may be torn, so it is refused; the next reload reads it
 * again). 0 or -1 with err set. */
static int copy_checked(int fd, const struct stat *st, int dst, const char *path, char *err,
                        size_t errlen) {
    char buf[65536];
    off_t off = 0;
    while (off < st->st_size) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "%s: %s while copying", path,
                     n < 0 ? strerror(errno) : "file shrank");
            return -1;
        }
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(dst, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                snprintf(err, errlen, "%s: cannot make a private copy (%s)", path,
                         k < 0 ? strerror(errno) : "short write");
                return -1;
            }
            w += k;
        }
        off += n;
    }
    struct stat after;
    if (fstat(fd, &after) != 0 || after.st_size != st->st_size ||
        after.st_mtim.tv_sec != st->st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != st->st_mtim.tv_nsec) {
        snprintf(err, errlen, "%s: the file changed while it was being loaded; try again", path);
        return -1;
    }
    return 0;
}

/* The fallback when no memfd can be made (an old kernel, a seccomp
 * policy, memfds refused as code): a copy in a fresh private directory
 * (mkdtemp: mode 0700) under $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp.
 * The copy's path goes to `file` and its directory to `dir`: the caller
 * removes both once the copy is mapped (lib_get), so nothing is left on
 * disk and nobody but weft's user could ever reach it. */
static int dir_copy(int fd, const struct stat *st, const char *path, char *file, char *dir,
                    size_t len, char *err, size_t errlen) {
    const char *base = getenv("XDG_RUNTIME_DIR");
    if (!base || base[0] != '/' || access(base, W_OK | X_OK) != 0)
        base = getenv("TMPDIR");
    if (!base || base[0] != '/' || access(base, W_OK | X_OK) != 0)
        base = "/tmp";
    int n = snprintf(dir, len, "%s/weft-filter.XXXXXX", base);
    if (n < 0 || (size_t)n >= len || !mkdtemp(dir)) {
        snprintf(err, errlen, "%s: cannot make a private copy (mkdtemp in %s: %s)", path, base,
                 n < 0 || (size_t)n >= len ? "path too long" : strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    const char *slash = strrchr(path, '/');
    snprintf(file, len, "%s/%s", dir, slash ? slash + 1 : path);
    int cfd = open(file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
    if (cfd < 0) {
        snprintf(err, errlen, "%s: cannot make a private copy (%s: %s)", path, file,
                 strerror(errno));
        file[0] = '\0';
        return -1;
    }
    if (copy_checked(fd, st, cfd, path, err, errlen) != 0) {
        close(cfd);
        return -1;
    }
    (void)fchmod(cfd, 0500);
    return cfd;
}

/* Copies the file behind `fd` (of the size in st) into a sealed memfd, so
 * that the code weft maps can never change under it: a library rewritten
 * in place (cp over it) only changes the file, not this copy. When no
 * memfd can be made, or WEFT_FILTER_LOAD=copy (an ops and test switch),
 * the copy goes to a private directory instead (dir_copy; `file` and
 * `dir` then name what the caller removes after dlopen, else they are
 * empty). Returns the copy's fd or -1. */
static int private_copy(int fd, const struct stat *st, const char *path, char *file, char *dir,
                        size_t len, char *err, size_t errlen) {
    file[0] = dir[0] = '\0';
    const char *mode = getenv("WEFT_FILTER_LOAD");
    bool force_copy = mode && strcmp(mode, "copy") == 0;
    if (mode && !force_copy && strcmp(mode, "memfd") != 0)
        WEFT_WARN("WEFT_FILTER_LOAD=%s is not memfd or copy: ignored", mode);
    int mfd = -1;
    if (!force_copy) {
        const char *base = strrchr(path, '/');
        char name[64];
        snprintf(name, sizeof(name), "weft-filter:%s", base ? base + 1 : path);
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
        /* MFD_EXEC: kernels with vm.memfd_noexec refuse to map a memfd made
         * without it as code; older kernels do not know the flag (EINVAL). */
        mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
        if (mfd < 0 && errno == EINVAL)
            mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
            WEFT_WARN("%s: memfd_create: %s; loading from a copy in a private directory instead",
                      path, strerror(errno));
    }
    if (mfd < 0)
        return dir_copy(fd, st, path, file, dir, len, err, errlen);
    if (copy_checked(fd, st, mfd, path, err, errlen) != 0) {
        close(mfd);
        return -1;
    }
    /* Sealing is best effort (the copy is private to weft either way). */
    (void)fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    return mfd;
}

/* Removes what dir_copy left on disk (nothing after a memfd copy). */
static void copy_remove(const char *file, const char *dir) {
    if (file[0] && unlink(file) != 0)
        WEFT_WARN("cannot remove the private copy %s: %s", file, strerror(errno));
    if (dir[0] && rmdir(dir) != 0)
        WEFT_WARN("cannot remove the private directory %s: %s", dir, strerror(errno));
}

static bool same_file(const weft_filter_lib *l, const struct stat *st) {
    return l->dev == st->st_dev && l->ino == st->st_ino && l->size == st->st_size &&
           l->mtime.tv_sec == st->st_mtim.tv_sec && l->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Returns a referenced library for `path`: the loaded one when the file on
 * disk is the same (device, inode, size, mtime of the opened fd), else new
 * code, loaded from a private copy beside the old one. */
static weft_filter_lib *lib_get(const char *path, char *err, size_t errlen) {
    struct stat st;
    int fd = open_checked(path, &st, err, errlen);
    if (fd < 0)
        return NULL;
    bool reload = false;
    pthread_mutex_lock(&libs_mu);
    for (weft_filter_lib *l = libs; l; l = l->next) {
        if (strcmp(l->path, path) != 0)
            continue;
        if (!l->retired && same_file(l, &st)) {
            atomic_fetch_add(&l->refs, 1);
            pthread_mutex_unlock(&libs_mu);
            close(fd);
            return l;
        }
        reload |= !l->retired;
    }
    pthread_mutex_unlock(&libs_mu);

    char cfile[PATH_MAX], cdir[PATH_MAX];
    int mfd = private_copy(fd, &st, path, cfile, cdir, sizeof(cfile), err, errlen);
    close(fd);
    if (mfd < 0) {
        copy_remove(cfile, cdir);
        return NULL;
    }
    /* dlopen by /proc/self/fd of the copy: a name the loader has not seen
     * (it caches by name). The copy's fd stays open as long as the library
     * is loaded: a reused fd number would hand back another library. A
     * copy on disk is removed once mapped. */
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", mfd);
    void *dl = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    copy_remove(cfile, cdir);
    if (!dl) {
        const char *de = dlerror();
        const char *colon = de ? strstr(de, ": ") : NULL; /* drop the /proc name */
        snprintf(err, errlen, "%s: cannot load: %s", path, colon ? colon + 2 : de ? de : "?");
        close(mfd);
        return NULL;
    }
    weft_filter_entry_fn entry;
    *(void **)&entry = dlsym(dl, WEFT_FILTER_ENTRY_SYMBOL);
    const weft_filter_descriptor *d = NULL;
    if (!entry)
        snprintf(err, errlen, "%s: not a weft filter (no symbol %s)", path,
                 WEFT_FILTER_ENTRY_SYMBOL);
    else if (!(d = entry(weft_filter_host_api())) ||
             d->size < offsetof(weft_filter_descriptor, transport) + sizeof(void *)) {
        snprintf(err, errlen, "%s: the filter returned no valid descriptor", path);
        d = NULL;
    } else if (d->abi_major != WEFT_ABI_MAJOR || d->abi_minor > WEFT_ABI_MINOR) {
        snprintf(err, errlen, "%s: filter ABI %u.%u is not supported by this weft (ABI %d.%d)",
                 path, d->abi_major, d->abi_minor, WEFT_ABI_MAJOR, WEFT_ABI_MINOR);
        d = NULL;
    } else if (!d->name ||
               (d->kind == WEFT_FILTER_HTTP && (!d->http || d->http->size < 2 * sizeof(void *))) ||
               (d->kind == WEFT_FILTER_TRANSPORT && d->transport &&
                d->transport->size < 2 * sizeof(void *)) ||
               (d->kind == WEFT_FILTER_TRANSPORT && !d->transport) ||
               (d->kind != WEFT_FILTER_HTTP && d->kind != WEFT_FILTER_TRANSPORT)) {
        snprintf(err, errlen, "%s: the descriptor has no name, a bad kind or no hooks", path);
        d = NULL;
    }
    weft_filter_lib *lib = d ? calloc(1, sizeof(*lib)) : NULL;
    if (lib && !(lib->path = strdup(path))) {
        free(lib);
        lib = NULL;
    }
    if (!lib) {
        if (d)
            snprintf(err, errlen, "out of memory");
        dlclose(dl);
        close(mfd);
        return NULL;
    }
    lib->dev = st.st_dev;
    lib->ino = st.st_ino;
    lib->size = st.st_size;
    lib->mtime = st.st_mtim;
    lib->dl = dl;
    lib->fd = mfd;
    lib->desc = d;
    atomic_store(&lib->refs, 1);
    pthread_mutex_lock(&libs_mu);
    /* Older copies of this path stay loaded for the snapshots that use
     * them, but new snapshots get this one. */
    for (weft_filter_lib *l = libs; l; l = l->next)
        if (strcmp(l->path, path) == 0)
            l->retired = true;
    lib->next = libs;
    libs = lib;
    pthread_mutex_unlock(&libs_mu);
    if (reload)
        WEFT_INFO("filter %s reloaded: new code loaded from %s (ABI %u.%u); the old copy is "
                  "released when its last snapshot goes",
                  d->name, path, d->abi_major, d->abi_minor);
    else
        WEFT_INFO("filter %s loaded from %s (ABI %u.%u)", d->name, path, d->abi_major,
                  d->abi_minor);
    return lib;
}

static void inst_destroy(weft_filter_inst *fi) {
    weft_filter_async_config_gone(fi); /* config timers, before config_destroy */
    if (fi->config) {
        if (fi->http && fi->http->config_destroy)
            fi->http->config_destroy(fi->config);
        else if (fi->transport && fi->transport->config_destroy)
            fi->transport->config_destroy(fi->config);
    }
    /* After config_destroy (which may still use its blocks), before the
     * library goes (a block's destroy callback may be its code: the block
     * then holds its own reference on the library). */
    for (size_t i = 0; i < fi->n_shared; i++)
        weft_shared_release(fi->shared[i]);
    free(fi->shared);
    fi->shared = NULL;
    fi->n_shared = 0;
    weft_filter_lib_unref(fi->lib);
}

/* Builds a chain from a list of filter entries. cluster_name != NULL: a
 * cluster's transport_filters (transport filters with an upstream side
 * only; their stats carry cluster="<name>"). */
static int chain_build(weft_filter_chain *chain, const weft_config *cfg, const weft_cfg_filter *fs,
                       size_t nfs, const char *listener_name, const char *cluster_name,
                       bool tcp_listener, char *err, size_t errlen) {
    memset(chain, 0, sizeof(*chain));
    if (!nfs)
        return 0;
    chain->http = calloc(nfs, sizeof(*chain->http));
    chain->transport = calloc(nfs, sizeof(*chain->transport));
    if (!chain->http || !chain->transport) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nfs; i++) {
        const weft_cfg_filter *f = &fs[i];
        char path[PATH_MAX], lerr[512];
        /* Checked at load too; here for configs built another way (a
         * control plane client): a pushed config never picks a file. */
        if (f->path && (cfg->origin == WEFT_CONFIG_PUSHED || !cfg->allow_filter_paths)) {
            snprintf(err, errlen, "%s:%u:%u: filter \"%s\": loading by path is not allowed %s",
                     cfg->source, f->pos.line, f->pos.col, f->name,
                     cfg->origin == WEFT_CONFIG_PUSHED ? "in a pushed config"
                                                       : "without allow_filter_paths: true");
            return -1;
        }
        if (weft_filter_resolve(cfg, f, path, sizeof(path)) != 0) {
            if (f->path)
                snprintf(err, errlen, "%s:%u:%u: filter \"%s\": cannot find %s", cfg->source,
                         f->pos.line, f->pos.col, f->name, f->path);
            else
                snprintf(
                    err, errlen,
                    "%s:%u:%u: filter \"%s\": no %s.so in filter_path, $WEFT_FILTER_PATH or the "
                    "bundled filters directory",
                    cfg->source, f->pos.line, f->pos.col, f->name, f->name);
            return -1;
        }
        weft_filter_lib *lib = lib_get(path, lerr, sizeof(lerr));
        if (!lib) {
            snprintf(err, errlen, "%s:%u:%u: filter \"%s\": %s", cfg->source, f->pos.line,
                     f->pos.col, f->name, lerr);
            return -1;
        }
        weft_filter_inst *fi;
        if (tcp_listener && lib->desc->kind != WEFT_FILTER_TRANSPORT) {
            snprintf(err, errlen,
                     "%s:%u:%u: filter \"%s\": listener \"%s\" is a tcp_proxy: it takes "
                     "transport filters only (an HTTP filter has no HTTP to act on)",
                     cfg->source, f->pos.line, f->pos.col, f->name, listener_name);
            weft_filter_lib_unref(lib);
            return -1;
        }
        if (cluster_name &&
            (lib->desc->kind != WEFT_FILTER_TRANSPORT ||
             lib->desc->transport->size <
                 offsetof(weft_transport_filter_ops, upstream_connection_create) + sizeof(void *) ||
             !lib->desc->transport->upstream_connection_create)) {
            snprintf(err, errlen,
                     "%s:%u:%u: filter \"%s\": cluster \"%s\": transport_filters takes "
                     "transport filters with an upstream side (upstream_connection_create); "
                     "this one is %s",
                     cfg->source, f->pos.line, f->pos.col, f->name, cluster_name,
                     lib->desc->kind == WEFT_FILTER_TRANSPORT ? "downstream only"
                                                              : "an HTTP filter");
            weft_filter_lib_unref(lib);
            return -1;
        }
        /* The ops table is copied to this core's size: a filter built
         * against an older minor has a shorter table, and the hooks it
         * does not know are NULL here. */
        if (lib->desc->kind == WEFT_FILTER_HTTP) {
            fi = &chain->http[chain->n_http];
            fi->index = (uint32_t)chain->n_http++;
            weft_http_filter_ops *ops = &fi->http_ops;
            size_t sz = lib->desc->http->size;
            memcpy(ops, lib->desc->http, sz < sizeof(*ops) ? sz : sizeof(*ops));
            fi->http = ops;
        } else {
            fi = &chain->transport[chain->n_transport];
            fi->index = (uint32_t)chain->n_transport++;
            weft_transport_filter_ops *ops = &fi->transport_ops;
            size_t sz = lib->desc->transport->size;
            memcpy(ops, lib->desc->transport, sz < sizeof(*ops) ? sz : sizeof(*ops));
            fi->transport = ops;
        }
        fi->lib = lib;
        fi->lib = lib;
        snprintf(fi->name, sizeof(fi->name), "%s", f->name);
        weft_filter_setup setup = {
            .cfg = cfg,
            .filter = f,
            .inst = fi,
            .listener = listener_name,
            .cluster = cluster_name,
            .err = err,
            .errlen = errlen,
        };
        int (*create)(const weft_config_node *, weft_filter_setup *, void **) =
            fi->http ? fi->http->config_create : fi->transport->config_create;
        if (create) {
            weft_filter_async_creating(fi);
            int rc = create((const weft_config_node *)f->node, &setup, &fi->config);
            weft_filter_async_creating(NULL);
            if (rc != 0) {
                if (!setup.failed)
                    snprintf(err, errlen, "%s:%u:%u: filter \"%s\" refused its config", cfg->source,
                             f->pos.line, f->pos.col, f->name);
                fi->config = NULL;
                return -1;
            }
        }
        if (fi->http) {
            const weft_http_filter_ops *o = fi->http;
            chain->any_req_body |= o->on_request_body != NULL;
            chain->any_resp_body |= o->on_response_body != NULL;
            chain->any_req_trailers |= o->on_request_trailers != NULL;
            chain->any_resp_trailers |= o->on_response_trailers != NULL;
            chain->any_up_request |= o->on_upstream_request != NULL;
        }
    }
    if (weft_filter_chain_index(chain) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* The hook of phase ph in o, as a generic function pointer (NULL: none). */
static void (*phase_hook(const weft_http_filter_ops *o, int ph))(void) {
    switch (ph) {
    case WEFT_PH_STREAM_CREATE:
        return (void (*)(void))o->stream_create;
    case WEFT_PH_REQ_HEADERS:
        return (void (*)(void))o->on_request_headers;
    case WEFT_PH_REQ_BODY:
        return (void (*)(void))o->on_request_body;
    case WEFT_PH_REQ_TRAILERS:
        return (void (*)(void))o->on_request_trailers;
    case WEFT_PH_RESP_HEADERS:
        return (void (*)(void))o->on_response_headers;
    case WEFT_PH_RESP_BODY:
        return (void (*)(void))o->on_response_body;
    case WEFT_PH_RESP_TRAILERS:
        return (void (*)(void))o->on_response_trailers;
    case WEFT_PH_ATTEMPT:
        return (void (*)(void))o->on_upstream_attempt;
    case WEFT_PH_UP_REQUEST:
        return (void (*)(void))o->on_upstream_request;
    case WEFT_PH_COMPLETE:
        return (void (*)(void))o->on_stream_complete;
    case WEFT_PH_STREAM_DESTROY:
        return (void (*)(void))o->stream_destroy;
    default:
        return NULL;
    }
}

static bool phase_is_response(int ph) {
    return ph == WEFT_PH_RESP_HEADERS || ph == WEFT_PH_RESP_BODY || ph == WEFT_PH_RESP_TRAILERS;
}

int weft_filter_chain_index(weft_filter_chain *chain) {
    free(chain->phase_mem);
    chain->phase_mem = NULL;
    chain->no_ctx = NULL;
    memset(chain->phase, 0, sizeof(chain->phase));
    size_t n = chain->n_http;
    if (!n)
        return 0;
    /* One block: every phase's steps (at most n each), the n NULL
     * contexts, then every phase's from[] (n + 1 each). */
    size_t steps_bytes = WEFT_PH_COUNT * n * sizeof(weft_chain_step);
    size_t ctx_bytes = n * sizeof(void *);
    char *mem = calloc(1, steps_bytes + ctx_bytes + WEFT_PH_COUNT * (n + 1) * sizeof(uint32_t));
    if (!mem)
        return -1;
    chain->phase_mem = mem;
    chain->no_ctx = (void **)(void *)(mem + steps_bytes);
    weft_chain_step *steps = (weft_chain_step *)(void *)mem;
    uint32_t *from = (uint32_t *)(void *)(mem + steps_bytes + ctx_bytes);
    /* A filter built against the 1.0 header: its ops table ends at
     * on_stream_complete, its weft_attempt_info at `region`. */
    const size_t ops_1_0 = offsetof(weft_http_filter_ops, on_stream_complete) + sizeof(void *);
    for (int ph = 0; ph < WEFT_PH_COUNT; ph++) {
        weft_chain_phase *p = &chain->phase[ph];
        weft_chain_step *st = steps + (size_t)ph * n;
        uint32_t *fr = from + (size_t)ph * (n + 1);
        uint32_t k = 0;
        for (size_t pos = 0; pos < n; pos++) {
            size_t idx = phase_is_response(ph) ? n - 1 - pos : pos;
            const weft_filter_inst *fi = &chain->http[idx];
            fr[pos] = k;
            void (*fn)(void) = fi->http ? phase_hook(fi->http, ph) : NULL;
            if (!fn)
                continue;
            st[k].fn = fn;
            st[k].idx = (uint32_t)idx;
            st[k].pos = (uint32_t)pos;
            st[k].attempt_1_0 = fi->lib && fi->lib->desc->http->size <= ops_1_0;
            k++;
        }
        fr[n] = k;
        p->steps = st;
        p->n = k;
        p->from = fr;
    }
    return 0;
}

int weft_filter_chain_build(weft_filter_chain *chain, const weft_config *cfg, size_t li,
                            const char *listener_name, char *err, size_t errlen) {
    const weft_cfg_listener *l = &cfg->listeners[li];
    return chain_build(chain, cfg, l->filters, l->n_filters, listener_name, NULL, l->is_tcp, err,
                       errlen);
}

int weft_filter_chain_build_cluster(weft_filter_chain *chain, const weft_config *cfg, size_t ci,
                                    char *err, size_t errlen) {
    const weft_cfg_cluster *c = &cfg->clusters[ci];
    return chain_build(chain, cfg, c->transport_filters, c->n_transport_filters, NULL, c->name,
                       false, err, errlen);
}

void weft_filter_chain_destroy(weft_filter_chain *chain) {
    for (size_t i = 0; i < chain->n_http; i++)
        inst_destroy(&chain->http[i]);
    for (size_t i = 0; i < chain->n_transport; i++)
        inst_destroy(&chain->transport[i]);
    /* a chain that failed half-way: instances with a lib but not counted */
    free(chain->http);
    free(chain->transport);
    free(chain->phase_mem);
    memset(chain, 0, sizeof(*chain));
}

/* ---------- per-route filter configs (ABI 1.1) ---------- */

int weft_filter_route_configs_build(weft_filter_chain *chain, weft_router *router,
                                    const weft_config *cfg, size_t li, const char *listener_name,
                                    char *err, size_t errlen) {
    const weft_cfg_listener *l = &cfg->listeners[li];
    size_t n_routes = weft_router_n_routes(router);
    for (size_t ri = 0; ri < n_routes; ri++) {
        weft_route_entry *e = weft_router_route_at(router, ri);
        const weft_cfg_route *rc = e->cfg;
        for (size_t k = 0; k < rc->n_filter_cfgs; k++) {
            const weft_cfg_route_filter *rf = &rc->filter_cfgs[k];
            /* the listener's filter entry of that name (checked at load) */
            const weft_cfg_filter *cf = NULL;
            for (size_t j = 0; j < l->n_filters && !cf; j++)
                if (strcmp(l->filters[j].name, rf->name) == 0)
                    cf = &l->filters[j];
            size_t uses = 0;
            for (size_t i = 0; i < chain->n_http; i++) {
                weft_filter_inst *fi = &chain->http[i];
                if (strcmp(fi->name, rf->name) != 0)
                    continue;
                uses++;
                if (!fi->http->route_config_create) {
                    snprintf(err, errlen,
                             "%s:%u:%u: filter \"%s\": takes no per-route config (it has no "
                             "route_config_create hook), but route %s gives it one in "
                             "filter_config",
                             cfg->source, rf->pos.line, rf->pos.col, rf->name,
                             rc->name && *rc->name ? rc->name : "(unnamed)");
                    return -1;
                }
                if (!e->filter_cfg && !(e->filter_cfg = calloc(chain->n_http, sizeof(void *)))) {
                    snprintf(err, errlen, "out of memory");
                    return -1;
                }
                weft_cfg_filter at = cf ? *cf : (weft_cfg_filter){.name = fi->name};
                at.pos = rf->pos; /* errors without a node point at the entry */
                weft_filter_setup setup = {
                    .cfg = cfg,
                    .filter = &at,
                    .inst = fi, /* weft_shared_get: the instance holds the block */
                    .listener = listener_name,
                    .err = err,
                    .errlen = errlen,
                };
                void *out = NULL;
                int rc_ = fi->http->route_config_create((const weft_config_node *)rf->node, &setup,
                                                        fi->config, &out);
                if (rc_ != 0) {
                    if (!setup.failed)
                        snprintf(err, errlen,
                                 "%s:%u:%u: filter \"%s\": refused its per-route config",
                                 cfg->source, rf->pos.line, rf->pos.col, rf->name);
                    return -1; /* not stored: route_config_destroy is not called for it */
                }
                e->filter_cfg[i] = out;
            }
            if (!uses) {
                snprintf(err, errlen,
                         "%s:%u:%u: filter \"%s\": is a transport filter; filter_config is for "
                         "HTTP filters",
                         cfg->source, rf->pos.line, rf->pos.col, rf->name);
                return -1;
            }
        }
    }
    return 0;
}

void weft_filter_route_configs_destroy(weft_filter_chain *chain, weft_router *router) {
    size_t n_routes = weft_router_n_routes(router);
    for (size_t ri = 0; ri < n_routes; ri++) {
        weft_route_entry *e = weft_router_route_at(router, ri);
        if (!e->filter_cfg)
            continue;
        for (size_t i = 0; i < chain->n_http; i++) {
            const weft_filter_inst *fi = &chain->http[i];
            if (e->filter_cfg[i] && fi->http && fi->http->route_config_destroy)
                fi->http->route_config_destroy(fi->config, e->filter_cfg[i]);
        }
        free(e->filter_cfg);
        e->filter_cfg = NULL;
    }
}
