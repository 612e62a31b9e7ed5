/*
 * powerfs: an in-memory FUSE filesystem that forgets, on a simulated power cut, everything a real disk under strict
 * POSIX rules would be allowed to forget. Written for the switch's power-loss test.
 *
 * Two states are kept for everything:
 *   - a file's bytes and size: current, and durable (made durable by fsync/fdatasync of the file, or, for the bytes of
 *     one write, by writing through a descriptor opened O_SYNC or O_DSYNC);
 *   - a directory's entries (name -> node): current, and durable (made durable only by fsync of the directory itself;
 *     fsync of a file never commits its name, creating a directory never commits its entry in the parent).
 * A cut replaces every current state by its durable one, starting from the root, and frees whatever is no longer
 * reachable: a file created and fsynced in a directory that was never fsynced is gone, as on a strict filesystem.
 *
 * Control: the virtual file /.powercut (hidden from listings). Writing "cut" to it cuts the power; reading it gives
 * "cuts=N dropped_entries=M dropped_blocks=K open_handles=H": what the last cut threw away (a test asserts it threw
 * something away), and how many files and directories are open now (a test cuts once a killed process's are closed).
 *
 * Run single-threaded (-s): no locking. Build: gcc -O2 powerfs.c $(pkg-config --cflags --libs fuse3) -o powerfs
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <fuse.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK_BYTES (64 * 1024)
#define CONTROL_NAME ".powercut"
#define MAX_NAME_BYTES 255

struct node;

struct entry {
    char *name;
    struct node *node;
};

struct entries {
    struct entry *items;
    int count, capacity;
};

struct node {
    int is_dir;
    mode_t mode;
    struct timespec mtime;
    /* file: current and durable bytes, in blocks (NULL block = zeros) */
    size_t size, durable_size;
    unsigned char **blocks, **durable_blocks;
    unsigned char *dirty; /* per block: current differs from durable */
    size_t block_capacity;
    /* directory: current and durable entries */
    struct entries current, durable;
    int open_handles;
    int marked;
    struct node *next_all;
};

struct handle {
    struct node *node;
    int write_through; /* opened O_SYNC or O_DSYNC: every write is durable when it returns */
    int control;
};

static struct node *root;
static struct node *all_nodes;
static int garbage_possible;
static long cuts, last_dropped_entries, last_dropped_blocks, open_handle_count;

static void *xcalloc(size_t count, size_t bytes)
{
    void *p = calloc(count, bytes);
    if (p == NULL) {
        fprintf(stderr, "powerfs: out of memory\n");
        abort();
    }
    return p;
}

static struct node *new_node(int is_dir, mode_t mode)
{
    struct node *n = xcalloc(1, sizeof *n);
    n->is_dir = is_dir;
    n->mode = mode;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->next_all = all_nodes;
    all_nodes = n;
    return n;
}

static void entries_free(struct entries *e)
{
    for (int i = 0; i < e->count; i++) free(e->items[i].name);
    free(e->items);
    memset(e, 0, sizeof *e);
}

static void entries_copy(struct entries *to, const struct entries *from)
{
    entries_free(to);
    to->items = xcalloc(from->count > 0 ? from->count : 1, sizeof(struct entry));
    to->capacity = from->count > 0 ? from->count : 1;
    for (int i = 0; i < from->count; i++) {
        to->items[i].name = strdup(from->items[i].name);
        to->items[i].node = from->items[i].node;
    }
    to->count = from->count;
}

static int entries_find(const struct entries *e, const char *name)
{
    for (int i = 0; i < e->count; i++)
        if (strcmp(e->items[i].name, name) == 0) return i;
    return -1;
}

static void entries_add(struct entries *e, const char *name, struct node *node)
{
    if (e->count == e->capacity) {
        int capacity = e->capacity ? e->capacity * 2 : 8;
        struct entry *items = xcalloc(capacity, sizeof *items);
        if (e->count) memcpy(items, e->items, e->count * sizeof *items);
        free(e->items);
        e->items = items;
        e->capacity = capacity;
    }
    e->items[e->count].name = strdup(name);
    e->items[e->count].node = node;
    e->count++;
}

static void entries_remove(struct entries *e, int index)
{
    free(e->items[index].name);
    e->items[index] = e->items[e->count - 1];
    e->count--;
}

static void free_blocks(unsigned char **blocks, size_t from, size_t capacity)
{
    for (size_t b = from; b < capacity; b++) {
        free(blocks[b]);
        blocks[b] = NULL;
    }
}

static void free_node(struct node *n)
{
    if (n->blocks) free_blocks(n->blocks, 0, n->block_capacity);
    if (n->durable_blocks) free_blocks(n->durable_blocks, 0, n->block_capacity);
    free(n->blocks);
    free(n->durable_blocks);
    free(n->dirty);
    entries_free(&n->current);
    entries_free(&n->durable);
    free(n);
}

static void ensure_blocks(struct node *n, size_t bytes)
{
    size_t needed = (bytes + BLOCK_BYTES - 1) / BLOCK_BYTES;
    if (needed <= n->block_capacity) return;
    size_t capacity = n->block_capacity ? n->block_capacity : 16;
    while (capacity < needed) capacity *= 2;
    unsigned char **blocks = xcalloc(capacity, sizeof *blocks);
    unsigned char **durable = xcalloc(capacity, sizeof *durable);
    unsigned char *dirty = xcalloc(capacity, 1);
    if (n->block_capacity) {
        memcpy(blocks, n->blocks, n->block_capacity * sizeof *blocks);
        memcpy(durable, n->durable_blocks, n->block_capacity * sizeof *durable);
        memcpy(dirty, n->dirty, n->block_capacity);
    }
    free(n->blocks);
    free(n->durable_blocks);
    free(n->dirty);
    n->blocks = blocks;
    n->durable_blocks = durable;
    n->dirty = dirty;
    n->block_capacity = capacity;
}

/* Copies between buf and bytes [offset, offset+count) of a block array: into the blocks (allocating them) when
 * `into_blocks`, else out of them (a missing block reads as zeros). */
static void copy_bytes(unsigned char **blocks, char *buf, size_t count, off_t offset, int into_blocks)
{
    size_t done = 0;
    while (done < count) {
        size_t at = (size_t)offset + done;
        size_t b = at / BLOCK_BYTES, within = at % BLOCK_BYTES;
        size_t chunk = BLOCK_BYTES - within;
        if (chunk > count - done) chunk = count - done;
        if (into_blocks) {
            if (blocks[b] == NULL) blocks[b] = xcalloc(1, BLOCK_BYTES);
            memcpy(blocks[b] + within, buf + done, chunk);
        } else if (blocks[b]) {
            memcpy(buf + done, blocks[b] + within, chunk);
        } else {
            memset(buf + done, 0, chunk);
        }
        done += chunk;
    }
}

/* Zeroes a block array from byte `size` to the end of its block, and frees every later block. */
static void cut_blocks(unsigned char **blocks, size_t size, size_t capacity)
{
    size_t b = size / BLOCK_BYTES, within = size % BLOCK_BYTES;
    if (within && b < capacity && blocks[b]) memset(blocks[b] + within, 0, BLOCK_BYTES - within);
    free_blocks(blocks, within ? b + 1 : b, capacity);
}

/* fsync/fdatasync of a file: its current bytes and size become durable. */
static void sync_file(struct node *n)
{
    for (size_t b = 0; b < n->block_capacity; b++) {
        if (!n->dirty[b]) continue;
        if (n->blocks[b] == NULL) {
            free(n->durable_blocks[b]);
            n->durable_blocks[b] = NULL;
        } else {
            if (n->durable_blocks[b] == NULL) n->durable_blocks[b] = xcalloc(1, BLOCK_BYTES);
            memcpy(n->durable_blocks[b], n->blocks[b], BLOCK_BYTES);
        }
        n->dirty[b] = 0;
    }
    n->durable_size = n->size;
}

static void mark(struct node *n)
{
    if (n->marked) return;
    n->marked = 1;
    if (!n->is_dir) return;
    for (int i = 0; i < n->current.count; i++) mark(n->current.items[i].node);
    for (int i = 0; i < n->durable.count; i++) mark(n->durable.items[i].node);
}

/* Frees every node no current or durable entry reaches and no open handle holds. */
static void collect_garbage(void)
{
    for (struct node *n = all_nodes; n; n = n->next_all) n->marked = 0;
    mark(root);
    for (struct node *n = all_nodes; n; n = n->next_all)
        if (n->open_handles > 0) mark(n);
    struct node **link = &all_nodes;
    while (*link) {
        struct node *n = *link;
        if (n->marked) {
            link = &n->next_all;
        } else {
            *link = n->next_all;
            free_node(n);
        }
    }
    garbage_possible = 0;
}

/* The power cut: every directory reachable through durable entries gets its durable entries back, every file its
 * durable bytes; what was only current is counted and dropped. */
static void restore(struct node *n)
{
    if (n->marked) return;
    n->marked = 1;
    if (n->is_dir) {
        for (int i = 0; i < n->current.count; i++) {
            int d = entries_find(&n->durable, n->current.items[i].name);
            if (d < 0 || n->durable.items[d].node != n->current.items[i].node) last_dropped_entries++;
        }
        for (int i = 0; i < n->durable.count; i++)
            if (entries_find(&n->current, n->durable.items[i].name) < 0) last_dropped_entries++;
        entries_copy(&n->current, &n->durable);
        for (int i = 0; i < n->current.count; i++) restore(n->current.items[i].node);
        return;
    }
    for (size_t b = 0; b < n->block_capacity; b++) {
        if (!n->dirty[b]) continue;
        last_dropped_blocks++;
        free(n->blocks[b]);
        n->blocks[b] = NULL;
        if (n->durable_blocks[b]) {
            n->blocks[b] = xcalloc(1, BLOCK_BYTES);
            memcpy(n->blocks[b], n->durable_blocks[b], BLOCK_BYTES);
        }
        n->dirty[b] = 0;
    }
    if (n->size != n->durable_size) last_dropped_blocks += n->size > n->durable_size;
    n->size = n->durable_size;
}

static void power_cut(void)
{
    last_dropped_entries = 0;
    last_dropped_blocks = 0;
    for (struct node *n = all_nodes; n; n = n->next_all) n->marked = 0;
    restore(root);
    cuts++;
    collect_garbage();
}

/* Walks `path` through current entries; returns NULL (errno-style code in *error) if a component is missing. */
static struct node *lookup(const char *path, int *error)
{
    struct node *n = root;
    char name[MAX_NAME_BYTES + 1];
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *end = strchr(p, '/');
        size_t length = end ? (size_t)(end - p) : strlen(p);
        if (length > MAX_NAME_BYTES) { *error = -ENAMETOOLONG; return NULL; }
        if (!n->is_dir) { *error = -ENOTDIR; return NULL; }
        memcpy(name, p, length);
        name[length] = 0;
        int i = entries_find(&n->current, name);
        if (i < 0) { *error = -ENOENT; return NULL; }
        n = n->current.items[i].node;
        p += length;
    }
    return n;
}

/* The parent directory of `path` and the last component's name. */
static struct node *lookup_parent(const char *path, char *name, int *error)
{
    const char *slash = strrchr(path, '/');
    const char *last = slash ? slash + 1 : path;
    if (strlen(last) > MAX_NAME_BYTES) { *error = -ENAMETOOLONG; return NULL; }
    strcpy(name, last);
    char *parent_path = strndup(path, (size_t)(last - path));
    struct node *parent = lookup(parent_path, error);
    free(parent_path);
    if (parent && !parent->is_dir) { *error = -ENOTDIR; return NULL; }
    return parent;
}

static int is_control(const char *path) { return path && strcmp(path, "/" CONTROL_NAME) == 0; }

static void touch(struct node *n) { clock_gettime(CLOCK_REALTIME, &n->mtime); }

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    memset(st, 0, sizeof *st);
    st->st_uid = getuid();
    st->st_gid = getgid();
    struct handle *h = fi && fi->fh ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h ? h->control : is_control(path)) {
        st->st_mode = S_IFREG | 0644;
        st->st_nlink = 1;
        return 0;
    }
    int error = 0;
    struct node *n = h ? h->node : lookup(path, &error);
    if (!n) return error;
    st->st_mode = n->mode;
    st->st_nlink = n->is_dir ? 2 : 1;
    st->st_size = (off_t)n->size;
    st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
    st->st_blksize = 4096;
    st->st_mtim = st->st_ctim = st->st_atim = n->mtime;
    return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
    enum fuse_readdir_flags flags)
{
    (void)offset; (void)flags;
    int error = 0;
    struct node *n = fi && fi->fh ? ((struct handle *)(uintptr_t)fi->fh)->node : lookup(path, &error);
    if (!n) return error;
    if (!n->is_dir) return -ENOTDIR;
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    for (int i = 0; i < n->current.count; i++) fill(buf, n->current.items[i].name, NULL, 0, 0);
    return 0;
}

static int make(const char *path, mode_t mode, int is_dir, struct node **made)
{
    char name[MAX_NAME_BYTES + 1];
    int error = 0;
    if (is_control(path)) return -EEXIST;
    struct node *parent = lookup_parent(path, name, &error);
    if (!parent) return error;
    if (entries_find(&parent->current, name) >= 0) return -EEXIST;
    struct node *n = new_node(is_dir, (mode & 07777) | (is_dir ? S_IFDIR : S_IFREG));
    entries_add(&parent->current, name, n);
    touch(parent);
    *made = n;
    return 0;
}

static int op_mkdir(const char *path, mode_t mode)
{
    struct node *n;
    return make(path, mode, 1, &n);
}

static int open_handle(struct node *n, struct fuse_file_info *fi, int control)
{
    struct handle *h = xcalloc(1, sizeof *h);
    h->node = n;
    h->control = control;
    h->write_through = (fi->flags & (O_SYNC | O_DSYNC)) != 0;
    if (n) n->open_handles++;
    if (n) open_handle_count++;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->direct_io = 1; /* no page cache: what a read sees is this filesystem's state, also right after a cut */
    return 0;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    if (is_control(path)) return open_handle(NULL, fi, 1);
    struct node *n;
    int result = make(path, mode, 0, &n);
    if (result == -EEXIST && !(fi->flags & O_EXCL)) {
        int error = 0;
        n = lookup(path, &error);
        if (!n) return error;
        result = 0;
    }
    if (result) return result;
    return open_handle(n, fi, 0);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
    if (is_control(path)) return open_handle(NULL, fi, 1);
    int error = 0;
    struct node *n = lookup(path, &error);
    if (!n) return error;
    if (n->is_dir) return -EISDIR;
    return open_handle(n, fi, 0);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    if (h->node) h->node->open_handles--;
    if (h->node) open_handle_count--;
    free(h);
    if (garbage_possible) collect_garbage();
    return 0;
}

static int op_read(const char *path, char *buf, size_t count, off_t offset, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    if (h->control) {
        char text[128];
        int length = snprintf(text, sizeof text, "cuts=%ld dropped_entries=%ld dropped_blocks=%ld open_handles=%ld\n",
            cuts, last_dropped_entries, last_dropped_blocks, open_handle_count);
        if (offset >= length) return 0;
        if ((size_t)(length - offset) < count) count = (size_t)(length - offset);
        memcpy(buf, text + offset, count);
        return (int)count;
    }
    struct node *n = h->node;
    if ((size_t)offset >= n->size) return 0;
    if (count > n->size - (size_t)offset) count = n->size - (size_t)offset;
    copy_bytes(n->blocks, buf, count, offset, 0);
    return (int)count;
}

static int op_write(const char *path, const char *buf, size_t count, off_t offset, struct fuse_file_info *fi)
{
    (void)path;
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    if (h->control) {
        if (count >= 3 && memcmp(buf, "cut", 3) == 0) power_cut();
        else return -EINVAL;
        return (int)count;
    }
    struct node *n = h->node;
    if (count == 0) return 0;
    size_t end = (size_t)offset + count;
    ensure_blocks(n, end);
    copy_bytes(n->blocks, (char *)buf, count, offset, 1);
    if (end > n->size) n->size = end;
    if (h->write_through) {
        /* O_SYNC/O_DSYNC: these bytes and the size that reaches them are durable; other dirty bytes are not. */
        copy_bytes(n->durable_blocks, (char *)buf, count, offset, 1);
        if (end > n->durable_size) n->durable_size = end;
        /* a block stays dirty if it held other unsynced bytes; one fully equal to its durable copy is clean */
        for (size_t b = (size_t)offset / BLOCK_BYTES; b <= (end - 1) / BLOCK_BYTES; b++)
            if (!n->dirty[b]) continue;
            else if (memcmp(n->blocks[b], n->durable_blocks[b], BLOCK_BYTES) == 0) n->dirty[b] = 0;
    } else {
        for (size_t b = (size_t)offset / BLOCK_BYTES; b <= (end - 1) / BLOCK_BYTES; b++) n->dirty[b] = 1;
    }
    touch(n);
    return (int)count;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    if (is_control(path) && !(fi && fi->fh)) return 0;
    int error = 0;
    struct handle *h = fi && fi->fh ? (struct handle *)(uintptr_t)fi->fh : NULL;
    if (h && h->control) return 0;
    struct node *n = h ? h->node : lookup(path, &error);
    if (!n) return error;
    if (n->is_dir) return -EISDIR;
    ensure_blocks(n, (size_t)size);
    if ((size_t)size < n->size) {
        size_t first = (size_t)size / BLOCK_BYTES;
        for (size_t b = first; b < n->block_capacity; b++) if (n->blocks[b] || n->durable_blocks[b]) n->dirty[b] = 1;
        cut_blocks(n->blocks, (size_t)size, n->block_capacity);
    }
    n->size = (size_t)size;
    touch(n);
    return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path; (void)datasync; /* fdatasync keeps the size too: the data could not be read back without it */
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    if (h->node) sync_file(h->node);
    return 0;
}

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
    int error = 0;
    struct node *n = lookup(path, &error);
    if (!n) return error;
    if (!n->is_dir) return -ENOTDIR;
    n->open_handles++;
    open_handle_count++;
    struct handle *h = xcalloc(1, sizeof *h);
    h->node = n;
    fi->fh = (uint64_t)(uintptr_t)h;
    return 0;
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
    return op_release(path, fi);
}

/* fsync of a directory: its entries, as they are now, become durable (the nodes they name, not their contents). */
static int op_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path; (void)datasync;
    struct node *n = ((struct handle *)(uintptr_t)fi->fh)->node;
    entries_copy(&n->durable, &n->current);
    garbage_possible = 1;
    return 0;
}

/* unlink (want_dir 0) or rmdir (want_dir 1): the name leaves the current entries only; the durable ones keep it. */
static int remove_entry(const char *path, int want_dir)
{
    char name[MAX_NAME_BYTES + 1];
    int error = 0;
    struct node *parent = lookup_parent(path, name, &error);
    if (!parent) return error;
    int i = entries_find(&parent->current, name);
    if (i < 0) return -ENOENT;
    struct node *n = parent->current.items[i].node;
    if (n->is_dir != want_dir) return want_dir ? -ENOTDIR : -EISDIR;
    if (want_dir && n->current.count) return -ENOTEMPTY;
    entries_remove(&parent->current, i);
    touch(parent);
    garbage_possible = 1;
    return 0;
}

static int op_unlink(const char *path) { return remove_entry(path, 0); }

static int op_rmdir(const char *path) { return remove_entry(path, 1); }

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    char from_name[MAX_NAME_BYTES + 1], to_name[MAX_NAME_BYTES + 1];
    int error = 0;
    if (flags & RENAME_EXCHANGE) return -EINVAL;
    struct node *from_parent = lookup_parent(from, from_name, &error);
    if (!from_parent) return error;
    struct node *to_parent = lookup_parent(to, to_name, &error);
    if (!to_parent) return error;
    int i = entries_find(&from_parent->current, from_name);
    if (i < 0) return -ENOENT;
    struct node *n = from_parent->current.items[i].node;
    int j = entries_find(&to_parent->current, to_name);
    if (j >= 0) {
        if (flags & RENAME_NOREPLACE) return -EEXIST;
        struct node *target = to_parent->current.items[j].node;
        if (target == n) return 0;
        if (target->is_dir && (!n->is_dir || target->current.count)) return target->is_dir && n->is_dir ? -ENOTEMPTY : -EISDIR;
        if (!target->is_dir && n->is_dir) return -ENOTDIR;
        entries_remove(&to_parent->current, j);
    }
    i = entries_find(&from_parent->current, from_name);
    entries_remove(&from_parent->current, i);
    entries_add(&to_parent->current, to_name, n);
    touch(from_parent);
    touch(to_parent);
    garbage_possible = 1;
    return 0;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int error = 0;
    if (is_control(path)) return 0;
    struct node *n = fi && fi->fh ? ((struct handle *)(uintptr_t)fi->fh)->node : lookup(path, &error);
    if (!n) return error;
    n->mode = (n->mode & S_IFMT) | (mode & 07777);
    return 0;
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)path; (void)uid; (void)gid; (void)fi;
    return 0;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)path; (void)tv; (void)fi;
    return 0;
}

static int op_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    memset(st, 0, sizeof *st);
    st->f_bsize = st->f_frsize = 4096;
    st->f_blocks = st->f_bfree = st->f_bavail = 1UL << 24; /* 64 GiB */
    st->f_files = st->f_ffree = 1UL << 20;
    st->f_namemax = MAX_NAME_BYTES;
    return 0;
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path; (void)fi;
    return 0; /* close(2) makes nothing durable */
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    /* The kernel must ask every time: after a cut, names and sizes it cached would be lies. */
    cfg->entry_timeout = 0;
    cfg->attr_timeout = 0;
    cfg->negative_timeout = 0;
    cfg->hard_remove = 1; /* unlink of an open file: no hidden rename */
    cfg->nullpath_ok = 1;
    cfg->direct_io = 1;
    return NULL;
}

static const struct fuse_operations operations = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .mkdir = op_mkdir,
    .create = op_create,
    .open = op_open,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .truncate = op_truncate,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .statfs = op_statfs,
    .flush = op_flush,
};

int main(int argc, char *argv[])
{
    root = new_node(1, S_IFDIR | 0755);
    return fuse_main(argc, argv, &operations, NULL);
}
