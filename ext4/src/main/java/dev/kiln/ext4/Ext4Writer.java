package dev.kiln.ext4;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * Writes an ext4 file system image from a stream of entries, without root, mount or mkfs.
 *
 * <p>File content is streamed straight into data blocks as it arrives (all-zero blocks become
 * holes); the writer keeps only the tree of inodes and their extents in memory. Directories,
 * extent tree blocks, xattr blocks, inode tables, bitmaps, group descriptors, the journal and
 * the superblocks are laid out by {@link #close()}.
 *
 * <p>Entry semantics follow tar extraction and OCI layer application: missing parents are
 * created and fixed up when their own entry arrives; a later entry for a path replaces the
 * earlier one and frees its blocks; {@link #remove} deletes recursively.
 *
 * <p>Output is deterministic: the same calls with the same options give the same bytes. The
 * UUID and hash seed, unless set, are derived from a digest of the entries.
 */
public final class Ext4Writer implements Closeable {
    /**
     * EXT2_ROOT_INO: the root directory's inode.
     */
    public static final int ROOT_INO = 2;
    /**
     * EXT2_RESIZE_INO: the inode reserving blocks for online growth.
     */
    public static final int RESIZE_INO = 7;
    /**
     * EXT2_JOURNAL_INO: the journal's inode.
     */
    public static final int JOURNAL_INO = 8;
    /**
     * EXT2_GOOD_OLD_FIRST_INO: the first inode for files; lost+found takes it.
     */
    public static final int FIRST_INO = 11;
    private static final int LINK_MAX = 65000;
    private static final int FAST_SYMLINK_MAX = 59;
    private static final int CHUNK_BYTES = 1 << 20;
    /**
     * A host file's content ({@link #file(String, Metadata, FileChannel, long)}) is copied by the
     * kernel from this size up; smaller ones are read and written as a stream's are.
     */
    private static final long TRANSFER_MIN = 64 << 10;
    /** inline_data keeps files of up to this many bytes in the inode's i_block. */
    private static final int INLINE_MAX = 60;

    private final FileChannel out;
    private final BlockOutput output;
    private final Ext4Options opts;
    private final Layout layout;
    private final BlockAllocator alloc;
    private final int bs;
    private final boolean csum;
    private final Node root;
    private final MessageDigest digest;
    /** Bytes for {@link #digest} not yet given to it ({@link #feedDigest}). */
    private final byte[] digestPending = new byte[16 << 10];
    private int digestPendingLength;
    private final byte[] chunk;
    private final byte[] zeroBlock;
    /** {@link #zeroBlock} as a buffer, to compare buffered content with (read only: never moved). */
    private final java.nio.ByteBuffer zeroView;
    /** Where a host file's content is read for its CRC and zero blocks ({@link #transferContent}); made at first use. */
    private java.nio.ByteBuffer window;
    /** {@link #chunk} as a buffer, for {@link #placeBlocks}. */
    private final java.nio.ByteBuffer chunkView;
    private final long journalStart;
    private final int journalBlocks;
    private final long resizeDind;
    private boolean overflow;
    private long overflowBlocks;
    private boolean closed;
    private Summary summary;

    /**
     * Counts taken at close; {@code holesSkipped} is the bytes of files given as data regions
     * that lay in holes and so were never read.
     */
    public record Summary(long blocksCount, long freeBlocks, long inodesCount, long freeInodes,
            int blockSize, byte[] uuid, long files, long directories, long symlinks, long devices,
            long others, long holesSkipped) {}

    /** Granule of {@link #written}: 64 KiB, a multiple of every device's direct-I/O alignment. */
    private static final int WRITTEN_CHUNK = 64 << 10;
    /** The 64 KiB chunks of the image any write touched; the rest are holes (zeros). */
    private final java.util.BitSet written = new java.util.BitSet();
    private final Path imagePath;

    private Ext4Writer(FileChannel out, Path path, Ext4Options opts) {
        this.imagePath = path;
        this.out = out;
        this.opts = opts;
        this.bs = opts.blockSize;
        this.csum = opts.metadataCsum;
        this.layout = new Layout(opts.blockSize, opts.sizeBytes, opts.inodeRatio, opts.inodeCount, 256, 16, true);
        this.alloc = new BlockAllocator(layout.fixed, layout.blocksCount);
        this.chunk = new byte[Math.max(CHUNK_BYTES, bs)];
        this.zeroBlock = new byte[bs];
        this.zeroView = java.nio.ByteBuffer.wrap(zeroBlock);
        this.chunkView = java.nio.ByteBuffer.wrap(chunk);
        try {
            this.digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        // The resize inode's double-indirect block, then the journal, come first after the
        // group tables, as mke2fs places them on a small file system.
        this.resizeDind = layout.reservedGdtBlocks > 0 ? alloc.allocateOne() : 0;
        int jb = 0;
        long js = 0;
        if (opts.journal) {
            jb = (int) (opts.journalBlocks >= 0 ? opts.journalBlocks : Layout.defaultJournalBlocks(layout.blocksCount));
            if (jb > 0) {
                if (jb < 1024) {
                    throw new IllegalArgumentException("journal must have at least 1024 blocks: " + jb);
                }
                long goal = 0;
                if (layout.groupCount > layout.flexSize) {
                    int g = layout.groupOf((layout.blocksCount - layout.firstDataBlock) / 2) & ~(layout.flexSize - 1);
                    goal = layout.groupFirstBlock(g);
                }
                js = alloc.allocateContiguous(goal, jb);
                if (js < 0) {
                    js = alloc.allocateContiguous(0, jb);
                }
                if (js < 0) {
                    throw new CapacityExceededException("image too small for a journal of " + jb
                            + " blocks", jb, 0, alloc.freeCount(), 0);
                }
            }
        }
        this.journalBlocks = jb;
        this.journalStart = js;
        Instant t = opts.timestamp;
        this.root = node(Inode.S_IFDIR, Metadata.of(0755, t));
        this.root.refs(1);
        this.output = new BlockOutput(out, opts.directIo ? path : null, opts.sync);
    }

    /**
     * Creates (or truncates) {@code path} and returns a writer for it.
     *
     * @param path the image file to create (replaced if it exists)
     * @param opts geometry and features
     * @return a writer; {@link #close()} writes the metadata and finishes the image
     * @throws IOException when the file cannot be created
     */
    public static Ext4Writer create(Path path, Ext4Options opts) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.READ);
        try {
            return new Ext4Writer(ch, path, opts);
        } catch (RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /**
     * Returns a writer for a new image in the existing file {@code path}, which it truncates;
     * unlike {@link #create}, never creates the file. For a caller that made the file itself (a
     * private temporary file) and must not bring it back once something else removed it, such
     * as an interrupted process's clean-up.
     *
     * @param path the existing file to write the image into
     * @param opts geometry and features
     * @return a writer; {@link #close()} writes the metadata and finishes the image
     * @throws java.nio.file.NoSuchFileException when the file does not exist (any more)
     * @throws IOException when the file cannot be opened
     */
    public static Ext4Writer overwrite(Path path, Ext4Options opts) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.READ);
        try {
            return new Ext4Writer(ch, path, opts);
        } catch (RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    // ---------------------------------------------------------------- tree

    /**
     * An entry of the tree: 56 bytes, since the tree is the writer's memory on big inputs (a
     * million files). The usual metadata (mode, an owner, one time for all four) is in fields,
     * a file's single extent too, the name in the parent's {@link Children}; an object graph of
     * a Metadata, an Instant, a String key, a map node and an extent array took ~300 bytes.
     * Fields that never need 32 bits share an int (Lucene packs its per-term data the same way).
     */
    static final class Node {
        /** Bits 0-15: the file type and permission bits (st_mode); 16-31: the owner's index. */
        private int modeOwner;
        /** The time of all four (access, change, modification, creation), when {@link #full} is null. */
        int seconds;
        int nanos;
        /**
         * The whole metadata, where the fields cannot hold it: differing times, a time outside
         * 32 bits, xattrs, an owner past the 65,536th distinct one.
         */
        Metadata full;
        long size;
        /** One extent at logical block 0: its physical block. Devices: major and minor. */
        private long physical0;
        /** Bits 0-15: that extent's length (at most 32,768 blocks); 16-31: the links to the node (at most 65,000). */
        private int lengthRefs;
        /**
         * A directory's {@link Children}; a symlink's target or a file's inline_data content
         * (byte[]); a file's extents when there are several or the first is not at block 0
         * (long[]: the count, then logical, physical, length for each).
         */
        private Object payload;
        /** The inode number (unsigned), 0 until assigned. */
        private int ino;

        Node(int type) {
            modeOwner = type;
            if (type == Inode.S_IFDIR) {
                payload = new Children<Node>();
            }
        }

        int owner() {
            return modeOwner >>> 16;
        }

        void owner(int index) {
            modeOwner = (modeOwner & 0xFFFF) | (index << 16);
        }

        int refs() {
            return lengthRefs >>> 16;
        }

        void refs(int n) {
            lengthRefs = (lengthRefs & 0xFFFF) | (n << 16);
        }

        private int length0() {
            return lengthRefs & 0xFFFF;
        }

        private void length0(long n) {
            lengthRefs = (lengthRefs & ~0xFFFF) | (int) n;
        }

        int type() {
            return modeOwner & Inode.S_IFMT;
        }

        int perm() {
            return modeOwner & 07777;
        }

        void perm(int perm) {
            modeOwner = (modeOwner & ~07777) | (perm & 07777);
        }

        @SuppressWarnings("unchecked")
        Children<Node> children() {
            return (Children<Node>) payload;
        }

        byte[] data() {
            return payload instanceof byte[] b ? b : null;
        }

        void data(byte[] b) {
            payload = b;
        }

        long ino() {
            return Integer.toUnsignedLong(ino);
        }

        void ino(long n) {
            ino = (int) n;
        }

        boolean hasXattrs() {
            return full != null && !full.xattrs().isEmpty();
        }

        boolean isDir() {
            return type() == Inode.S_IFDIR;
        }

        boolean isDevice() {
            int t = type();
            return t == Inode.S_IFCHR || t == Inode.S_IFBLK;
        }

        int major() {
            return isDevice() ? (int) (physical0 >>> 32) : 0;
        }

        int minor() {
            return isDevice() ? (int) physical0 : 0;
        }

        void device(int major, int minor) {
            physical0 = ((long) major << 32) | Integer.toUnsignedLong(minor);
        }

        int extentCount() {
            if (payload instanceof long[] more) {
                return (int) more[0];
            }
            return length0() > 0 ? 1 : 0;
        }

        long logical(int i) {
            return payload instanceof long[] more ? more[1 + i * 3] : 0;
        }

        long physical(int i) {
            return payload instanceof long[] more ? more[2 + i * 3] : physical0;
        }

        long length(int i) {
            return payload instanceof long[] more ? more[3 + i * 3] : length0();
        }

        void addExtent(long logical, long physical, long len) {
            int count = extentCount();
            if (count > 0) {
                int last = count - 1;
                long n = length(last);
                if (continues(logical(last), physical(last), n, logical, physical, len)) {
                    if (payload instanceof long[] more) {
                        more[3 + last * 3] = n + len;
                    } else {
                        length0(n + len);
                    }
                    return;
                }
            }
            if (count == 0 && logical == 0 && !(payload instanceof long[])) {
                physical0 = physical;
                length0(len);
                return;
            }
            long[] more;
            if (payload instanceof long[] m) {
                more = m;
            } else if (payload == null) {
                more = new long[1 + 3 * Math.max(2, count + 1)];
                if (count == 1) {
                    more[0] = 1;
                    more[2] = physical0;
                    more[3] = length0();
                    physical0 = 0;
                    length0(0);
                }
                payload = more;
            } else {
                throw new IllegalStateException("extents on a node that holds " + payload.getClass().getSimpleName());
            }
            int at = 1 + (int) more[0] * 3;
            if (at + 3 > more.length) {
                more = Arrays.copyOf(more, 1 + (more.length - 1) * 2);
                payload = more;
            }
            more[at] = logical;
            more[at + 1] = physical;
            more[at + 2] = len;
            more[0]++;
        }

        /** Whether a run starting at {@code logical}/{@code physical} extends the extent before it. */
        static boolean continues(long lastLogical, long lastPhysical, long lastLen, long logical, long physical,
                long len) {
            return lastLogical + lastLen == logical && lastPhysical + lastLen == physical
                    && lastLen + len <= Layout.MAX_EXTENT_LEN;
        }

        void clearExtents() {
            if (payload instanceof long[]) {
                payload = null;
            }
            if (!isDevice()) {
                physical0 = 0;
                length0(0);
            }
        }

        long dataBlocks() {
            long n = 0;
            for (int i = 0, c = extentCount(); i < c; i++) {
                n += length(i);
            }
            return n;
        }
    }

    /** lost+found, made with at least this many blocks as mke2fs makes it, when it is empty. */
    private Node lostFound;
    private int lostFoundBlocks;

    /** The distinct owners (uid, gid) of the tree's entries; each node holds an index here. */
    private long[] owners = new long[4];
    private int ownerCount;
    private final HashMap<Long, Integer> ownerIndex = new HashMap<>();
    private long lastOwnerKey;
    private int lastOwner = -1;

    private int owner(long uid, long gid) {
        long key = (uid << 32) | gid;
        if (lastOwner >= 0 && key == lastOwnerKey) {
            return lastOwner;
        }
        Integer i = ownerIndex.get(key);
        if (i == null) {
            if (ownerCount == owners.length) {
                owners = Arrays.copyOf(owners, owners.length * 2);
            }
            owners[ownerCount] = key;
            i = ownerCount++;
            ownerIndex.put(key, i);
        }
        lastOwnerKey = key;
        lastOwner = i;
        return i;
    }

    private Node node(int type, Metadata md) {
        Node n = new Node(type);
        setMd(n, md);
        return n;
    }

    private Metadata md(Node n) {
        if (n.full != null) {
            return n.full;
        }
        long key = owners[n.owner()];
        Instant t = Instant.ofEpochSecond(n.seconds, n.nanos);
        return new Metadata(n.perm(), key >>> 32, key & 0xFFFFFFFFL, t, t, t, t, Map.of());
    }

    private void setMd(Node n, Metadata m) {
        n.perm(m.mode());
        int owner = owner(m.uid(), m.gid());
        n.owner(owner <= 0xFFFF ? owner : 0);
        Instant t = m.mtime();
        long sec = t.getEpochSecond();
        n.seconds = (int) sec;
        n.nanos = t.getNano();
        n.full = m.xattrs().isEmpty() && sec == (int) sec && owner <= 0xFFFF && t.equals(m.atime()) && t.equals(m.ctime())
                && t.equals(m.crtime()) ? null : m;
    }

    private static List<String> split(String path) {
        if (path == null || path.isEmpty()) {
            throw new EntryException(String.valueOf(path), "empty path");
        }
        List<String> parts = new ArrayList<>(8);
        // Components found with indexOf: String.split made an array, a list and a sublist more
        // for every entry (a fifth of what a tree of hard links allocated).
        for (int from = 0, to; from <= path.length(); from = to + 1) {
            to = path.indexOf('/', from);
            if (to < 0) {
                to = path.length();
            }
            if (to == from || (to == from + 1 && path.charAt(from) == '.')) {
                continue;
            }
            String p = path.substring(from, to);
            if (p.equals("..")) {
                if (parts.isEmpty()) {
                    throw new EntryException(path, "path escapes the image root with '..'");
                }
                parts.remove(parts.size() - 1);
                continue;
            }
            if (p.indexOf('\0') >= 0) {
                throw new EntryException(path, "path contains a NUL byte");
            }
            if (p.length() > 85 && Names.encode(p).length > 255) { // ≤ 85 chars is ≤ 255 bytes
                throw new EntryException(path, "name longer than 255 bytes");
            }
            parts.add(p);
        }
        return parts;
    }

    private static final int MAX_SYMLINKS = 40;

    private Node parentOf(String path, List<String> parts) {
        return walkToParent(path, parts, true);
    }

    /**
     * Walks to the directory that holds the last component. Symlinks on the way are followed as
     * tar extraction follows them (a usrmerged base has /bin -> usr/bin), resolved inside the
     * image root; missing directories are created when {@code create}, else null is returned.
     */
    private Node walkToParent(String path, List<String> parts, boolean create) {
        // The usual case: every parent exists and none is a symlink.
        Node dir = root;
        int last = parts.size() - 1;
        for (int i = 0; i < last && dir != null; i++) {
            Node child = dir.children().get(parts.get(i));
            dir = child != null && child.isDir() ? child : null;
        }
        if (dir != null) {
            return dir;
        }
        return walkToParentSlow(path, parts, create);
    }

    private Node walkToParentSlow(String path, List<String> parts, boolean create) {
        List<Node> stack = new ArrayList<>();
        stack.add(root);
        List<String> todo = new ArrayList<>(parts.subList(0, parts.size() - 1));
        int links = 0;
        int i = 0;
        while (i < todo.size()) {
            String name = todo.get(i);
            Node dir = stack.get(stack.size() - 1);
            if (name.isEmpty() || name.equals(".")) {
                i++;
                continue;
            }
            if (name.equals("..")) {
                if (stack.size() > 1) {
                    stack.remove(stack.size() - 1);
                }
                i++;
                continue;
            }
            Node child = dir.children().get(name);
            if (child == null) {
                if (!create) {
                    return null;
                }
                child = node(Inode.S_IFDIR, Metadata.of(0755, opts.timestamp));
                child.refs(1);
                dir.children().put(name, child);
            } else if (child.type() == Inode.S_IFLNK) {
                if (++links > MAX_SYMLINKS) {
                    throw new EntryException(path, "too many levels of symbolic links");
                }
                String target = Names.decode(child.data());
                List<String> rest = new ArrayList<>(List.of(target.split("/")));
                rest.addAll(todo.subList(i + 1, todo.size()));
                todo = rest;
                i = 0;
                if (target.startsWith("/")) {
                    stack.subList(1, stack.size()).clear();
                }
                continue;
            } else if (!child.isDir()) {
                if (!create) {
                    return null;
                }
                throw new EntryException(path, "parent '" + name + "' is not a directory");
            }
            stack.add(child);
            i++;
        }
        return stack.get(stack.size() - 1);
    }

    private Node lookup(String path) {
        List<String> parts = split(path);
        if (parts.isEmpty()) {
            return root;
        }
        Node dir = walkToParent(path, parts, false);
        return dir == null ? null : dir.children().get(parts.get(parts.size() - 1));
    }

    private volatile long progressBytes;
    /** Bytes of holes in files given as data regions: never read. */
    private long holesSkipped;
    private volatile long progressEntries;

    /**
     * Bytes of file content consumed so far (for progress displays; safe to read from any
     * thread).
     *
     * @return bytes of file content written so far
     */
    public long contentBytes() {
        return progressBytes;
    }

    /**
     * Entries applied so far (for progress displays; safe to read from any thread).
     *
     * @return the number of entries in the tree
     */
    public long entries() {
        return progressEntries;
    }

    /**
     * A SHA-256 of the entries applied so far (paths, metadata, content): the same entries give
     * the same value, different images almost surely differ. For values that must be
     * reproducible yet unique to an image, such as a password's salt.
     *
     * @return a SHA-256 over the tree's content and metadata
     */
    public byte[] contentDigest() {
        try {
            flushDigest();
            return ((MessageDigest) digest.clone()).digest();
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException("SHA-256 cannot be cloned here", e);
        }
    }

    /**
     * Whether an entry exists at {@code path}.
     *
     * @param path an absolute path
     * @return whether the tree has it
     */
    public boolean exists(String path) {
        return lookup(path) != null;
    }

    /**
     * Whether {@code path} is a directory in the image.
     *
     * @param path an absolute path
     * @return whether it is a directory
     */
    public boolean isDirectory(String path) {
        Node n = lookup(path);
        return n != null && n.isDir();
    }

    /**
     * The metadata of the entry at {@code path}, or null when there is none.
     *
     * @param path an absolute path
     * @return its metadata, or null when absent
     */
    public Metadata metadata(String path) {
        Node n = lookup(path);
        return n == null ? null : md(n);
    }

    /**
     * Whether {@code path} is a regular file in the image.
     *
     * @param path an absolute path
     * @return whether it is a regular file
     */
    public boolean isFile(String path) {
        Node n = lookup(path);
        return n != null && n.type() == Inode.S_IFREG;
    }

    /**
     * The content written so far for the regular file at {@code path} (for edits such as adding
     * a user to /etc/passwd); at most {@code limit} bytes, so a huge file is refused.
     *
     * @param path an absolute path of a regular file
     * @param limit the most bytes to return
     * @return its first bytes
     * @throws IOException on a read error
     */
    public byte[] read(String path, int limit) throws IOException {
        ensureOpen();
        Node n = lookup(path);
        if (n == null || n.type() != Inode.S_IFREG) {
            throw new EntryException(path, "not a regular file in the image");
        }
        if (n.size > limit) {
            throw new EntryException(path, "is " + n.size + " bytes, more than the " + limit + " that can be edited");
        }
        byte[] data = new byte[(int) n.size];
        if (n.data() != null) {
            System.arraycopy(n.data(), 0, data, 0, n.data().length);
            return data;
        }
        for (int i = 0; i < n.extentCount(); i++) {
            long logical = n.logical(i);
            long physical = n.physical(i);
            long len = n.length(i);
            long from = logical * bs;
            int count = (int) Math.min(len * bs, n.size - from);
            if (count <= 0) {
                continue;
            }
            output.drain();
            ByteBuffer buf = ByteBuffer.wrap(data, (int) from, count);
            long pos = physical * bs;
            while (buf.hasRemaining()) {
                int r = out.read(buf, pos);
                if (r < 0) {
                    break;
                }
                pos += r;
            }
        }
        return data;
    }

    /**
     * The names in directory {@code path}, sorted; empty when it is not a directory.
     *
     * @param path an absolute path of a directory
     * @return the names in it
     */
    public List<String> list(String path) {
        Node n = lookup(path);
        if (n == null || !n.isDir()) {
            return List.of();
        }
        return n.children().sortedNames();
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("writer is closed");
        }
    }

    /** Attaches {@code node} at {@code path}, replacing whatever was there. */
    private void put(String path, Node node) {
        ensureOpen();
        List<String> parts = split(path);
        if (parts.isEmpty()) {
            throw new EntryException(path, "only a directory can be the root");
        }
        place(path, parentOf(path, parts), parts.get(parts.size() - 1), node);
    }

    /** Puts {@code node} as {@code name} in {@code parent}, the directory {@code path} resolved to. */
    private void place(String path, Node parent, String name, Node node) {
        Node old = parent.children().get(name);
        if (old != node && node.refs() >= LINK_MAX) {
            // i_links_count has 16 bits; a wrapped count would free the inode while names remain.
            throw new EntryException(path, "more than " + LINK_MAX + " links to one file, ext4's limit");
        }
        if (old != null && old != node) {
            if (old.isDir() && !old.children().isEmpty()) {
                throw new EntryException(path, "cannot replace a non-empty directory with a "
                        + kind(node.type()) + "; remove it first");
            }
            parent.children().remove(name);
            unref(old);
        }
        if (old != node) {
            parent.children().put(name, node);
            node.refs(node.refs() + 1);
        }
        record(path, node);
    }

    private void unref(Node n) {
        int refs = n.refs();
        n.refs(Math.max(0, refs - 1));
        if (refs > 1) {
            return;
        }
        for (int i = 0; i < n.extentCount(); i++) {
            alloc.free(n.physical(i), n.length(i));
        }
        n.clearExtents();
        if (n.isDir()) {
            for (Node c : n.children()) {
                unref(c);
            }
            n.children().clear();
        }
    }

    private Metadata clamp(Metadata md) {
        Instant c = opts.clampTimes;
        if (c == null) {
            return md;
        }
        return new Metadata(md.mode(), md.uid(), md.gid(), min(md.atime(), c), min(md.mtime(), c),
                min(md.ctime(), c), min(md.crtime(), c), md.xattrs());
    }

    private static Instant min(Instant a, Instant b) {
        return a.isAfter(b) ? b : a;
    }

    private void validateXattrs(String path, Metadata md) {
        if (md.xattrs().isEmpty()) {
            return;
        }
        try {
            List<Xattr.Attr> attrs = Xattr.sorted(md.xattrs());
            if (opts.inlineData) {
                attrs.add(0, INLINE_DATA_ATTR);
            }
            List<List<Xattr.Attr>> split = splitXattrs(attrs);
            int blockBytes = Xattr.areaSize(split.get(1)) + Xattr.BLOCK_HEADER;
            if (!split.get(1).isEmpty() && blockBytes > bs) {
                throw new EntryException(path, "extended attributes need " + blockBytes
                        + " bytes, more than one " + bs + "-byte block holds");
            }
        } catch (IllegalArgumentException e) {
            throw new EntryException(path, e.getMessage());
        }
    }

    private static final Xattr.Attr INLINE_DATA_ATTR =
            new Xattr.Attr(new Xattr.Name(7, "data".getBytes(StandardCharsets.US_ASCII)), new byte[0]);

    /** Splits sorted attributes into those that fit in the inode and those for the xattr block. */
    private static List<List<Xattr.Attr>> splitXattrs(List<Xattr.Attr> attrs) {
        int space = 256 - Inode.GOOD_OLD_SIZE - Inode.EXTRA_ISIZE;
        List<Xattr.Attr> inInode = new ArrayList<>();
        List<Xattr.Attr> inBlock = new ArrayList<>();
        int used = 4 + 4; // magic and end marker
        for (Xattr.Attr a : attrs) {
            int need = a.entrySize() + a.valueSize();
            if (inBlock.isEmpty() && used + need <= space) {
                inInode.add(a);
                used += need;
            } else {
                inBlock.add(a);
            }
        }
        return List.of(inInode, inBlock);
    }

    /**
     * A directory; an existing directory at the path keeps its children and takes this metadata.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     */
    public void directory(String path, Metadata md) {
        ensureOpen();
        validateXattrs(path, md);
        List<String> parts = split(path);
        if (parts.isEmpty()) {
            setMd(root, clamp(md));
            record(path, root);
            return;
        }
        Node parent = parentOf(path, parts);
        Node old = parent.children().get(parts.get(parts.size() - 1));
        if (old != null && old.isDir()) {
            setMd(old, clamp(md));
            record(path, old);
            return;
        }
        Node n = node(Inode.S_IFDIR, clamp(md));
        put(path, n);
    }

    /**
     * Adds a regular file with the given content.
     *
     * @param path absolute path in the image; missing parent directories are created
     * @param md mode, owner, times and xattrs
     * @param content the file's bytes
     * @throws IOException when the image cannot be written
     */
    public void file(String path, Metadata md, byte[] content) throws IOException {
        file(path, md, java.nio.ByteBuffer.wrap(content));
    }

    /**
     * Adds a regular file whose content is the bytes between {@code content}'s position and
     * limit (both are left as they are), written into the image from the buffer itself: a
     * caller that holds a file's bytes (a read-ahead of small files, an archive's parsed
     * content) saves the copy a stream's content goes through. All-zero blocks become holes
     * (unless sparse files are off), as {@link #file(String, Metadata, long, InputStream)}
     * makes them; the image is the same.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     * @param content the file's bytes
     * @throws IOException when the image cannot be written
     */
    public void file(String path, Metadata md, java.nio.ByteBuffer content) throws IOException {
        java.nio.ByteBuffer c = content.slice();
        int size = c.remaining();
        addFile(path, md, size, n -> {
            if (opts.inlineData && size > 0 && size <= INLINE_MAX) {
                byte[] data = new byte[size];
                c.get(0, data);
                CRC32C crc = new CRC32C();
                crc.update(data);
                n.data(data);
                return crc.getValue();
            }
            return writeContent(n, c);
        });
    }

    /**
     * Adds a regular file whose content is the first {@code size} bytes of {@code source}, read
     * by position (the channel's own position is not used). The content is read once, for its
     * CRC and to find its all-zero blocks (which become holes, unless sparse files are off), and
     * copied into the image by the kernel ({@link FileChannel#transferTo}), so it never passes
     * through the image's write buffers: for a large file two of the four copies a stream's
     * content goes through. The image is the same as {@link #file(String, Metadata, long,
     * InputStream)} makes from the same bytes.
     *
     * <p>The writer takes {@code source} over: it is closed once its content is in the image
     * (in the background, after this returns) or when this fails, and must not be closed or
     * moved past the content by the caller. A source that is shorter than {@code size} when
     * copied (changed during the build) fails the build.
     *
     * @param path absolute path in the image; missing parent directories are created
     * @param md mode, owner, times and xattrs
     * @param source the content; closed by the writer
     * @param size the content's exact length
     * @throws IOException when the source cannot be read or the image cannot be written
     */
    public void file(String path, Metadata md, FileChannel source, long size) throws IOException {
        if (size < TRANSFER_MIN) {
            try (source) {
                file(path, md, size, java.nio.channels.Channels.newInputStream(source.position(0)));
            }
            return;
        }
        try {
            addFile(path, md, size, n -> transferContent(path, n, size, source));
        } finally {
            // After the copies queued so far, whether this succeeded or not: a failure the
            // caller steps over must not fail them later with a closed channel.
            output.closeAfter(source);
        }
    }

    /**
     * Adds a regular file whose content is a host file's.
     *
     * @param path absolute path in the image; missing parent directories are created
     * @param md mode, owner, times and xattrs (the host file's own are not taken)
     * @param source the host file to copy
     * @throws IOException when the source cannot be read or the image cannot be written
     */
    public void file(String path, Metadata md, Path source) throws IOException {
        FileChannel ch = FileChannel.open(source);
        long size;
        try {
            size = ch.size();
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        file(path, md, ch, size);
    }

    /**
     * Adds a regular file, streaming its content into the image: all-zero blocks become holes
     * (unless sparse files are off) and the blocks are allocated contiguously.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     * @param size the content's exact length
     * @param content the content; exactly {@code size} bytes are read
     * @throws IOException when the content cannot be read or the image written
     */
    public void file(String path, Metadata md, long size, InputStream content) throws IOException {
        addFile(path, md, size, n -> {
            if (opts.inlineData && size > 0 && size <= INLINE_MAX) {
                byte[] data = new byte[(int) size];
                readFully(path, content, data, (int) size, 0, size);
                CRC32C c = new CRC32C();
                c.update(data);
                n.data(data);
                return c.getValue();
            }
            return writeContent(path, n, size, content);
        });
    }

    /**
     * Adds a regular file of which only the {@code data} regions hold content, as a sparse tar
     * entry stores it or a host file system reports it ({@code SEEK_DATA}/{@code SEEK_HOLE}):
     * {@code regionBytes} holds the regions' bytes one after the other and nothing else, and the
     * rest of the file reads as zeros, so a hole costs nothing however long it is. Within the
     * regions, all-zero blocks still become holes. The image is the same as {@link #file(String,
     * Metadata, long, InputStream)} gives for the whole content.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     * @param size the content's exact length
     * @param data the regions as {@code {offset, length}} pairs one after the other, in order and
     *     not overlapping; parts beyond {@code size} are ignored (and not read)
     * @param regionBytes the regions' bytes, in order
     * @throws IOException when the content cannot be read (it ends early) or the image written
     */
    public void file(String path, Metadata md, long size, long[] data, InputStream regionBytes) throws IOException {
        if (data.length % 2 != 0) {
            throw new IllegalArgumentException(path + ": data regions come in {offset, length} pairs");
        }
        for (int i = 0; i < data.length; i += 2) {
            if (data[i] < 0 || data[i + 1] < 0 || (i > 0 && data[i] < data[i - 2] + data[i - 1])) {
                throw new IllegalArgumentException(path + ": data regions must be in order and not overlap");
            }
        }
        if (!opts.sparseFiles || (opts.inlineData && size <= INLINE_MAX)) {
            file(path, md, size, new RegionsAsContent(path, data, regionBytes, size));
            return;
        }
        addFile(path, md, size, n -> writeRegions(path, n, size, data, regionBytes));
    }

    /** The whole content of a file given as regions: zeros between them. */
    private static final class RegionsAsContent extends InputStream {
        private final String path;
        private final long[] data;
        private final InputStream bytes;
        private final long size;
        private final int[] at = {0};
        private long pos;

        RegionsAsContent(String path, long[] data, InputStream bytes, long size) {
            this.path = path;
            this.data = data;
            this.bytes = bytes;
            this.size = size;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (pos >= size) {
                return -1;
            }
            int n = (int) Math.min(len, size - pos);
            fillFromRegions(path, data, at, bytes, b, off, n, pos, size);
            pos += n;
            return n;
        }
    }

    /** What every regular file goes through: the old entry freed, the node placed, the digest fed. */
    private void addFile(String path, Metadata md, long size, ContentWriter content) throws IOException {
        ensureOpen();
        validateXattrs(path, md);
        if (size < 0) {
            throw new EntryException(path, "negative size " + size);
        }
        List<String> parts = split(path);
        if (parts.isEmpty()) {
            throw new EntryException(path, "only a directory can be the root");
        }
        // Free what the path held before writing, so its blocks can be reused right away.
        Node parent = parentOf(path, parts);
        Node old = parent.children().get(parts.get(parts.size() - 1));
        if (old != null) {
            if (old.isDir() && !old.children().isEmpty()) {
                throw new EntryException(path, "cannot replace a non-empty directory with a file; remove it first");
            }
            parent.children().remove(parts.get(parts.size() - 1));
            unref(old);
        }
        Node n = node(Inode.S_IFREG, clamp(md));
        n.size = size;
        long crc = content.write(n);
        feedDigest(crc);
        place(path, parent, parts.get(parts.size() - 1), n);
    }

    /** Writes a file's content into its node; returns the content's CRC32C. */
    @FunctionalInterface
    private interface ContentWriter {
        long write(Node n) throws IOException;
    }

    /**
     * A symbolic link; targets up to 59 bytes live in the inode, longer ones in a block.
     *
     * @param path absolute path; missing parents are created
     * @param md owner, times and xattrs (the mode is 0777)
     * @param target the link's target, stored as given
     */
    public void symlink(String path, Metadata md, String target) {
        validateXattrs(path, md);
        byte[] t = Names.encode(target);
        if (t.length == 0) {
            throw new EntryException(path, "empty symlink target");
        }
        if (t.length >= bs) {
            throw new EntryException(path, "symlink target of " + t.length + " bytes is longer than a block");
        }
        Node n = node(Inode.S_IFLNK, clamp(md));
        n.data(t);
        n.size = t.length;
        put(path, n);
    }

    /**
     * Another name for the existing non-directory at {@code target}.
     *
     * @param path absolute path of the new name
     * @param target absolute path of an existing non-directory
     */
    public void hardLink(String path, String target) {
        ensureOpen();
        Node t = lookup(target);
        if (t == null) {
            throw new EntryException(path, "hard link target '" + target + "' does not exist");
        }
        if (t.isDir()) {
            throw new EntryException(path, "hard link target '" + target + "' is a directory");
        }
        put(path, t);
    }

    /**
     * Adds a character device node.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     * @param major the device's major number
     * @param minor the device's minor number
     */
    public void charDevice(String path, Metadata md, int major, int minor) {
        device(path, md, Inode.S_IFCHR, major, minor);
    }

    /**
     * Adds a block device node.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     * @param major the device's major number
     * @param minor the device's minor number
     */
    public void blockDevice(String path, Metadata md, int major, int minor) {
        device(path, md, Inode.S_IFBLK, major, minor);
    }

    private void device(String path, Metadata md, int type, int major, int minor) {
        validateXattrs(path, md);
        if (major < 0 || major > 0xFFF || minor < 0 || minor > 0xFFFFF) {
            throw new EntryException(path, "device number " + major + ":" + minor + " out of range");
        }
        Node n = node(type, clamp(md));
        n.device(major, minor);
        put(path, n);
    }

    /**
     * Adds a named pipe.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     */
    public void fifo(String path, Metadata md) {
        validateXattrs(path, md);
        put(path, node(Inode.S_IFIFO, clamp(md)));
    }

    /**
     * Adds a Unix socket node.
     *
     * @param path absolute path; missing parents are created
     * @param md mode, owner, times and xattrs
     */
    public void socket(String path, Metadata md) {
        validateXattrs(path, md);
        put(path, node(Inode.S_IFSOCK, clamp(md)));
    }

    /**
     * Removes {@code path} (recursively for a directory); returns whether it existed.
     *
     * @param path an absolute path
     * @return whether something was removed
     */
    public boolean remove(String path) {
        ensureOpen();
        List<String> parts = split(path);
        if (parts.isEmpty()) {
            throw new EntryException(path, "cannot remove the root directory");
        }
        Node dir = walkToParent(path, parts, false);
        if (dir == null) {
            return false;
        }
        Node n = dir.children().remove(parts.get(parts.size() - 1));
        feedDigest(Names.encode("rm\0" + path + "\0"));
        if (n == null) {
            return false;
        }
        unref(n);
        return true;
    }

    /**
     * Removes everything inside directory {@code path} but keeps the directory itself.
     *
     * @param path an absolute path of a directory
     */
    public void clearDirectory(String path) {
        Node n = lookup(path);
        if (n == null || !n.isDir()) {
            return;
        }
        for (Node c : n.children()) {
            unref(c);
        }
        n.children().clear();
        feedDigest(Names.encode("clear\0" + path + "\0"));
    }

    /**
     * Gathers what the entries' digest is fed and hands it over 16 KiB at a time: the same bytes
     * in the same order, so the same digest. A line per entry meant a short update per entry,
     * hashed a block at a time in code C2 compiles late if at all (its thresholds are raised for
     * everything else); a few hundred long updates are what kiln's launchers send to C2 after a
     * handful of calls, where the CPU's SHA instructions do the hashing (compiler-directives.json;
     * gathering alone changed nothing measurable).
     */
    private void feedDigest(byte[] b) {
        if (b.length > digestPending.length - digestPendingLength) {
            flushDigest();
            if (b.length > digestPending.length) {
                digest.update(b);
                return;
            }
        }
        System.arraycopy(b, 0, digestPending, digestPendingLength, b.length);
        digestPendingLength += b.length;
    }

    /** {@code v}'s eight little-endian bytes, as {@link #feedDigest(byte[])} would take them, without an array. */
    private void feedDigest(long v) {
        if (digestPending.length - digestPendingLength < 8) {
            flushDigest();
        }
        Le.put64(digestPending, digestPendingLength, v);
        digestPendingLength += 8;
    }

    private void flushDigest() {
        if (digestPendingLength > 0) {
            digest.update(digestPending, 0, digestPendingLength);
            digestPendingLength = 0;
        }
    }

    /**
     * Feeds the entry's line to the digest: its path, a NUL, then its type, mode, owner, four
     * times, size and device numbers in decimal, separated by spaces (the bytes a
     * {@code StringBuilder} of them, encoded as {@link Names#encode} does, would give). Written
     * into the digest's buffer directly: the builder, its string and the encoded copy were the
     * writer's largest allocation, 300 bytes an entry (hard-link corpus: 13 of 85 MB).
     */
    private void record(String path, Node n) {
        progressEntries++;
        Metadata m = n.full;
        digestPath(path);
        digestByte(0);
        digestDecimal(n.type());
        // Times as numbers: Instant.toString formats through DateTimeFormatter, which cost more
        // than everything else done for a small file.
        if (m == null) { // the node's fields, without making the Metadata they stand for
            long owner = owners[n.owner()];
            digestField(n.perm());
            digestField(owner >>> 32);
            digestField(owner & 0xFFFFFFFFL);
            for (int i = 0; i < 4; i++) {
                digestField(n.seconds);
                digestByte('.');
                digestDecimal(n.nanos);
            }
        } else {
            digestField(m.mode());
            digestField(m.uid());
            digestField(m.gid());
            for (Instant t : new Instant[] {m.mtime(), m.atime(), m.ctime(), m.crtime()}) {
                digestField(t.getEpochSecond());
                digestByte('.');
                digestDecimal(t.getNano());
            }
        }
        digestField(n.size);
        digestField(n.major());
        digestByte(':');
        digestDecimal(n.minor());
        if (n.data() != null) {
            feedDigest(n.data());
        }
        for (Map.Entry<String, byte[]> x : (m == null ? Map.<String, byte[]>of() : m.xattrs()).entrySet()) {
            feedDigest(x.getKey().getBytes(StandardCharsets.UTF_8));
            feedDigest(x.getValue());
        }
    }

    /** The path's bytes as {@link Names#encode} gives them (an ASCII path one byte a char, no copy). */
    private void digestPath(String path) {
        int len = path.length();
        for (int i = 0; i < len; i++) {
            if (path.charAt(i) >= 0x80) {
                feedDigest(Names.encode(path));
                return;
            }
        }
        if (len > digestPending.length - digestPendingLength) {
            flushDigest();
            if (len > digestPending.length) {
                feedDigest(Names.encode(path));
                return;
            }
        }
        for (int i = 0; i < len; i++) {
            digestPending[digestPendingLength + i] = (byte) path.charAt(i);
        }
        digestPendingLength += len;
    }

    private void digestByte(int b) {
        if (digestPendingLength == digestPending.length) {
            flushDigest();
        }
        digestPending[digestPendingLength++] = (byte) b;
    }

    /** A space, then {@code v} in decimal. */
    private void digestField(long v) {
        digestByte(' ');
        digestDecimal(v);
    }

    /** {@code v} in decimal, as {@link Long#toString(long)} writes it. */
    private void digestDecimal(long v) {
        if (digestPending.length - digestPendingLength < 20) {
            flushDigest();
        }
        if (v < 0) {
            if (v == Long.MIN_VALUE) {
                feedDigest(Long.toString(v).getBytes(StandardCharsets.US_ASCII));
                return;
            }
            digestPending[digestPendingLength++] = '-';
            v = -v;
        }
        int digits = 1;
        for (long t = v; t >= 10; t /= 10) {
            digits++;
        }
        int at = digestPendingLength + digits;
        digestPendingLength = at;
        do {
            digestPending[--at] = (byte) ('0' + v % 10);
            v /= 10;
        } while (v != 0);
    }

    private long writeContent(String path, Node n, long size, InputStream in) throws IOException {
        CRC32C crc = new CRC32C();
        long blocks = Layout.ceilDiv(size, bs);
        int chunkBlocks = chunk.length / bs;
        long logical = 0;
        while (logical < blocks) {
            int nb = (int) Math.min(chunkBlocks, blocks - logical);
            int bytes = (int) Math.min((long) nb * bs, size - logical * bs);
            readFully(path, in, chunk, bytes, logical * bs, size);
            crc.update(chunk, 0, bytes);
            progressBytes += bytes;
            placeChunk(n, logical, nb, bytes);
            logical += nb;
        }
        return crc.getValue();
    }

    /**
     * {@link #writeContent(String, Node, long, InputStream)} for content in a host file: whole
     * blocks are read a chunk at a time into {@link #window} for the CRC and the zero blocks,
     * and the others copied into the image from the file itself ({@link BlockOutput#transfer});
     * the last block's tail goes through {@link #chunk}, padded with zeros as it is elsewhere.
     */
    private long transferContent(String path, Node n, long size, FileChannel source) throws IOException {
        if (window == null) {
            window = java.nio.ByteBuffer.allocateDirect(chunk.length);
        }
        java.nio.ByteBuffer w = window;
        // The CRC of the whole content, from those of its runs: all-zero blocks are found
        // first, and a run of them enters the CRC by its length (Crc32c.zeros), not its bytes:
        // a sparse file read whole (Java 17 cannot ask where its holes are) is mostly zeros.
        long crc = 0;
        long zeros = 0; // zero bytes not yet in crc
        CRC32C part = new CRC32C();
        long full = size / bs;
        int windowBlocks = w.capacity() / bs;
        boolean[] zero = new boolean[windowBlocks];
        long logical = 0;
        while (logical < full) {
            int nb = (int) Math.min(windowBlocks, full - logical);
            int bytes = nb * bs;
            w.clear().limit(bytes);
            readFully(path, source, w, logical * bs, size);
            w.clear();
            for (int i = 0; i < nb; ) {
                boolean z = isZero(w, i);
                int j = i + 1;
                while (j < nb && isZero(w, j) == z) {
                    j++;
                }
                java.util.Arrays.fill(zero, i, j, z);
                if (z) {
                    zeros += (long) (j - i) * bs;
                } else {
                    crc = Crc32c.combine(crc, Crc32c.zeros(zeros), zeros);
                    zeros = 0;
                    part.reset();
                    w.limit(j * bs).position(i * bs);
                    part.update(w);
                    w.clear();
                    crc = Crc32c.combine(crc, part.getValue(), (long) (j - i) * bs);
                }
                i = j;
            }
            placeBlocks(n, logical, w, nb, opts.sparseFiles ? zero : null, source, path, logical * bs);
            progressBytes += bytes;
            logical += nb;
        }
        crc = Crc32c.combine(crc, Crc32c.zeros(zeros), zeros);
        int tail = (int) (size - full * bs);
        if (tail > 0) {
            readFully(path, source, java.nio.ByteBuffer.wrap(chunk, 0, tail), full * bs, size);
            part.reset();
            part.update(chunk, 0, tail);
            crc = Crc32c.combine(crc, part.getValue(), tail);
            progressBytes += tail;
            placeChunk(n, full, 1, tail);
        }
        return crc;
    }

    /** Fills {@code b} (position to limit) from {@code source} at {@code pos}. */
    private static void readFully(String path, FileChannel source, java.nio.ByteBuffer b, long pos, long size)
            throws IOException {
        long at = pos;
        while (b.hasRemaining()) {
            int r = source.read(b, at);
            if (r < 0) {
                throw new EOFException(path + ": content ended after " + at + " of " + size + " bytes");
            }
            at += r;
        }
    }

    /** {@link #writeContent(String, Node, long, InputStream)} for content in a buffer (a slice: position 0). */
    private long writeContent(Node n, java.nio.ByteBuffer c) throws IOException {
        int size = c.remaining();
        CRC32C crc = new CRC32C();
        crc.update(c);
        c.position(0);
        int full = size / bs;
        placeBlocks(n, 0, c, full);
        progressBytes += (long) full * bs;
        int tail = size - full * bs;
        if (tail > 0) {
            c.get(full * bs, chunk, 0, tail); // the last block's tail, padded with zeros by placeChunk
            progressBytes += tail;
            placeChunk(n, full, 1, tail);
        }
        return crc.getValue();
    }

    /**
     * Places the first {@code nb} whole blocks of {@code c} (a buffer at position 0, limit its
     * capacity) at logical block {@code logical}: all-zero blocks become holes (unless sparse
     * files are off), runs of the others go to contiguous free blocks.
     */
    private void placeBlocks(Node n, long logical, java.nio.ByteBuffer c, int nb) throws IOException {
        placeBlocks(n, logical, c, nb, opts.sparseFiles ? ZERO_UNKNOWN : null, null, null, 0);
    }

    /** For {@link #placeBlocks}: whether a block is all zeros is to be looked at. */
    private static final boolean[] ZERO_UNKNOWN = new boolean[0];

    /**
     * {@link #placeBlocks(Node, long, java.nio.ByteBuffer, int)}, the blocks written from {@code c}
     * or, with a {@code source}, copied from it: {@code c}'s blocks are then the source's from
     * position {@code from}. Which blocks become holes: none when {@code zero} is null, those
     * all zeros when it is {@link #ZERO_UNKNOWN}, else those {@code zero} marks.
     */
    private void placeBlocks(Node n, long logical, java.nio.ByteBuffer c, int nb, boolean[] zero, FileChannel source,
            String path, long from) throws IOException {
        int i = 0;
        while (i < nb) {
            if (hole(c, i, zero)) {
                i++;
                continue;
            }
            int j = i + 1;
            while (j < nb && !hole(c, j, zero)) {
                j++;
            }
            int k = i;
            while (k < j) {
                long[] run = overflow ? null : alloc.allocateRun(j - k);
                if (run == null) {
                    overflow = true;
                    overflowBlocks += j - k;
                    break;
                }
                long pos = run[0] * bs;
                int len = (int) run[1] * bs;
                markWritten(pos, len);
                if (source == null) {
                    output.write(c, k * bs, len, pos);
                } else {
                    output.transfer(source, path, from + (long) k * bs, len, pos);
                }
                n.addExtent(logical + k, run[0], run[1]);
                k += (int) run[1];
            }
            i = j;
        }
    }

    private boolean hole(java.nio.ByteBuffer c, int blockIndex, boolean[] zero) {
        return zero != null && (zero == ZERO_UNKNOWN ? isZero(c, blockIndex) : zero[blockIndex]);
    }

    /** Whether block {@code blockIndex} of {@code c} (a slice) is all zeros; leaves {@code c} whole again. */
    private boolean isZero(java.nio.ByteBuffer c, int blockIndex) {
        int off = blockIndex * bs;
        c.limit(off + bs).position(off);
        boolean zero = c.mismatch(zeroView) < 0;
        c.limit(c.capacity()).position(0);
        return zero;
    }

    /**
     * The regions' blocks (a region's first and last block whole: the bytes around it are the
     * file's too) read and placed as {@link #writeContent} places them; the CRC of the gaps is
     * computed, not read ({@link Crc32c#zeros}), so the digest equals a read of the whole file.
     */
    private long writeRegions(String path, Node n, long size, long[] data, InputStream in) throws IOException {
        int chunkBlocks = chunk.length / bs;
        long crc = 0;
        long done = 0;
        CRC32C part = new CRC32C();
        int[] at = {0};
        int i = 0;
        while (i < data.length && data[i] < size) {
            long first = data[i] / bs;
            long end = Layout.ceilDiv(Math.min(size, data[i] + data[i + 1]), bs);
            i += 2;
            // Regions that share a block, or touch, are read as one.
            while (i < data.length && data[i] < size && data[i] / bs <= end) {
                end = Math.max(end, Layout.ceilDiv(Math.min(size, data[i] + data[i + 1]), bs));
                i += 2;
            }
            long gap = first * bs - done;
            crc = Crc32c.combine(crc, Crc32c.zeros(gap), gap);
            progressBytes += gap;
            holesSkipped += gap;
            part.reset();
            long from = first * bs;
            for (long logical = first; logical < end; ) {
                int nb = (int) Math.min(chunkBlocks, end - logical);
                int bytes = (int) Math.min((long) nb * bs, size - logical * bs);
                fillFromRegions(path, data, at, in, chunk, 0, bytes, logical * bs, size);
                part.update(chunk, 0, bytes);
                progressBytes += bytes;
                placeChunk(n, logical, nb, bytes);
                logical += nb;
            }
            done = Math.min(size, end * bs);
            crc = Crc32c.combine(crc, part.getValue(), done - from);
        }
        long tail = size - done;
        progressBytes += tail;
        holesSkipped += tail;
        return Crc32c.combine(crc, Crc32c.zeros(tail), tail);
    }

    /**
     * Fills {@code b[off, off + len)} with the file's bytes at {@code pos}: zeros outside the
     * regions, the next bytes of {@code in} inside them. Positions only grow, and every region
     * byte below {@code size} is asked for once, so {@code in} is read straight through;
     * {@code at} keeps the index of the region reached.
     */
    private static void fillFromRegions(String path, long[] data, int[] at, InputStream in, byte[] b, int off, int len,
            long pos, long size) throws IOException {
        int done = 0;
        while (done < len) {
            long p = pos + done;
            while (at[0] < data.length && data[at[0]] + data[at[0] + 1] <= p) {
                at[0] += 2;
            }
            if (at[0] >= data.length || data[at[0]] > p) {
                long next = at[0] < data.length ? data[at[0]] : Long.MAX_VALUE;
                int n = (int) Math.min(len - done, next - p);
                for (int z = 0; z < n; ) {
                    int c = Math.min(n - z, ZEROS.length);
                    System.arraycopy(ZEROS, 0, b, off + done + z, c);
                    z += c;
                }
                done += n;
            } else {
                int n = (int) Math.min(len - done, data[at[0]] + data[at[0] + 1] - p);
                int r = in.readNBytes(b, off + done, n);
                if (r < n) {
                    throw new EOFException(path + ": content ended after " + (p + r) + " of " + size + " bytes");
                }
                done += n;
            }
        }
    }

    /** Zeros to copy from (C1 has an intrinsic for arraycopy, not for fill). */
    private static final byte[] ZEROS = new byte[64 << 10];

    /**
     * Places {@code nb} blocks held in {@code chunk} ({@code bytes} of content, the last
     * block's tail zeroed here) at logical block {@code logical}: all-zero blocks become holes
     * (unless sparse files are off), runs of the others go to contiguous free blocks.
     */
    private void placeChunk(Node n, long logical, int nb, int bytes) throws IOException {
        if (bytes < nb * bs) {
            // The last block's tail (< one block). A copy, not Arrays.fill: C1, which compiles
            // kiln's hot code (see the launcher), has an intrinsic for arraycopy, not for fill.
            System.arraycopy(zeroBlock, 0, chunk, bytes, nb * bs - bytes);
        }
        placeBlocks(n, logical, chunkView, nb);
    }

    private static void readFully(String path, InputStream in, byte[] buf, int len, long done, long size)
            throws IOException {
        int off = 0;
        while (off < len) {
            int r = in.read(buf, off, len - off);
            if (r < 0) {
                throw new EOFException(path + ": content ended after " + (done + off) + " of " + size + " bytes");
            }
            off += r;
        }
    }

    private void writeFully(byte[] b, int off, int len, long pos) throws IOException {
        markWritten(pos, len);
        output.write(b, off, len, pos);
    }

    /** Notes the image bytes {@code [pos, pos + len)} as written, for the {@code .sha256} (the rest reads as zeros). */
    private void markWritten(long pos, int len) {
        if (len > 0) {
            written.set((int) (pos / WRITTEN_CHUNK), (int) ((pos + len - 1) / WRITTEN_CHUNK) + 1);
        }
    }

    /**
     * The SHA-256 of the finished image file, as {@code sha256sum} computes it, without reading
     * what the writer never wrote: holes are hashed as zeros from memory, and the written regions
     * are read back from the page cache, or with direct I/O if they were written with it (a
     * buffered read would fill the cache from the device for nothing).
     *
     * @return the 32-byte digest
     * @throws IOException when the image cannot be read
     * @throws IllegalStateException before {@link #close()}
     */
    public byte[] sha256() throws IOException {
        if (!closed || summary == null) {
            throw new IllegalStateException("the image is not finished; close the writer first");
        }
        return ImageDigest.sha256(imagePath, layout.blocksCount * bs, written, WRITTEN_CHUNK, output.direct());
    }

    private void writeBlock(long block, byte[] data) throws IOException {
        writeFully(data, 0, data.length, block * bs);
    }

    private static String kind(int type) {
        return switch (type) {
            case Inode.S_IFREG -> "file";
            case Inode.S_IFDIR -> "directory";
            case Inode.S_IFLNK -> "symlink";
            case Inode.S_IFCHR -> "character device";
            case Inode.S_IFBLK -> "block device";
            case Inode.S_IFIFO -> "fifo";
            default -> "socket";
        };
    }

    // ---------------------------------------------------------------- close

    /**
     * The counts of the finished image; available after {@link #close()}.
     *
     * @return counts and geometry of the finished image
     */
    public Summary summary() {
        if (summary == null) {
            throw new IllegalStateException("summary is available after close()");
        }
        return summary;
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            finish();
        } finally {
            try {
                output.close();
            } finally {
                out.close();
            }
        }
    }

    private void finish() throws IOException {
        byte[] uuid = opts.uuid != null ? opts.uuid.clone() : derivedUuid();
        byte[] seedBytes = opts.hashSeed != null ? opts.hashSeed.clone() : derivedSeed(uuid);
        int[] seed = DxHash.seed(seedBytes);
        final int hashVersion = DxHash.HALF_MD4;

        // lost+found, as mkfs makes it: 16 KiB (at least two blocks) of empty directory.
        Node lpf = root.children().get("lost+found");
        if (lpf == null) {
            lpf = node(Inode.S_IFDIR, Metadata.of(0700, opts.timestamp));
            lpf.refs(1);
            root.children().put("lost+found", lpf);
        }
        if (lpf.isDir() && lpf.children().isEmpty()) {
            lostFoundBlocks = Math.max(2, 16384 / bs);
            lostFound = lpf;
        }

        // Inode numbers in depth-first name order: stable, and keeps a directory's files close.
        List<Node> nodes = new ArrayList<>();
        root.ino(ROOT_INO);
        nodes.add(root);
        long next = FIRST_INO;
        if (lpf.isDir()) {
            lpf.ino(FIRST_INO);
            next++;
        }
        List<Node> order = new ArrayList<>();
        if (lpf.isDir()) {
            order.add(lpf);
        }
        long[] counter = {next};
        assign(root, order, counter);
        nodes.addAll(order);
        long usedInodes = counter[0] - 1;
        if (usedInodes > layout.inodesCount || overflow) {
            long need = overflow ? alloc.freeCount() >= 0 ? layout.blocksCount - alloc.freeCount() + overflowBlocks : 0 : 0;
            throw new CapacityExceededException(String.format(
                    "content does not fit: needs %s%s, image has %d blocks of %d bytes and %d inodes",
                    overflow ? "about " + need + " blocks (" + ((need * bs + (1 << 20) - 1) >> 20) + " MiB)" : "",
                    usedInodes > layout.inodesCount ? (overflow ? " and " : "") + usedInodes + " inodes" : "",
                    layout.blocksCount, bs, layout.inodesCount),
                    need, usedInodes, layout.blocksCount, layout.inodesCount);
        }

        // Parent of each directory, for "..".
        TreeMap<Long, Long> parentOf = new TreeMap<>();
        parentOf.put((long) ROOT_INO, (long) ROOT_INO);
        for (Node n : nodes) {
            if (n.isDir()) {
                for (Node c : n.children()) {
                    if (c.isDir()) {
                        parentOf.put(c.ino(), n.ino());
                    }
                }
            }
        }

        // Each inode is encoded into its table block as soon as it is complete, in inode order,
        // so no more than one table block is held: a million Inode objects were 240 MB.
        InodeTable table = new InodeTable(uuid);
        long[] kinds = new long[5]; // directories, files, symlinks, devices, others
        Inode scratch = new Inode();
        for (Node n : nodes) {
            // One node a call, with one reused inode: the loop's body is compiled after a few
            // hundred nodes (as a loop it stayed interpreted), and no inode object per file.
            writeInode(n, scratch.clear(), table, kinds, parentOf, hashVersion, seed, uuid);
        }
        long dirs = kinds[0];
        long files = kinds[1];
        long symlinks = kinds[2];
        long devices = kinds[3];
        long others = kinds[4];

        Instant t = opts.timestamp;
        if (layout.reservedGdtBlocks > 0) {
            table.put(RESIZE_INO, resizeInode(t));
        }
        Inode journal = null;
        if (journalBlocks > 0) {
            journal = journalInode(t, uuid);
            table.put(JOURNAL_INO, journal);
        }

        writeSharedXattrs(uuid);
        table.finish();
        writeGroupMetadata(counter[0] - 1, journal, nodes, uuid, seedBytes, hashVersion);
        output.drainAndFlushes();
        out.truncate(layout.blocksCount * bs);
        if (out.size() < layout.blocksCount * bs) {
            // Extend sparsely: one zero byte at the very end.
            out.write(ByteBuffer.wrap(new byte[1]), layout.blocksCount * bs - 1);
        }
        if (opts.sync) {
            out.force(false);
        }
        summary = new Summary(layout.blocksCount, alloc.freeCount(), layout.inodesCount,
                layout.inodesCount - usedInodes, bs, uuid, files, dirs, symlinks, devices, others, holesSkipped);
    }

    /** Fills {@code in} (cleared) for {@code n}, writes what it points to, and puts it in the table. */
    private void writeInode(Node n, Inode in, InodeTable table, long[] kinds, TreeMap<Long, Long> parentOf,
            int hashVersion, int[] seed, byte[] uuid) throws IOException {
        baseInode(n, in);
        switch (n.type()) {
            case Inode.S_IFDIR -> {
                kinds[0]++;
                writeDirectory(n, in, parentOf.get(n.ino()), hashVersion, seed, uuid);
            }
            case Inode.S_IFREG -> {
                kinds[1]++;
                in.size = n.size;
                if (n.data() != null) {
                    System.arraycopy(n.data(), 0, in.block, 0, n.data().length);
                    in.flags |= Inode.FLAG_INLINE_DATA;
                } else {
                    in.flags |= Inode.FLAG_EXTENTS;
                    mapExtents(n, in, uuid);
                }
            }
            case Inode.S_IFLNK -> {
                kinds[2]++;
                in.size = n.data().length;
                if (n.data().length <= FAST_SYMLINK_MAX) {
                    System.arraycopy(n.data(), 0, in.block, 0, n.data().length);
                } else {
                    long b = allocMeta();
                    byte[] data = new byte[bs];
                    System.arraycopy(n.data(), 0, data, 0, n.data().length);
                    writeBlock(b, data);
                    n.addExtent(0, b, 1);
                    in.flags |= Inode.FLAG_EXTENTS;
                    mapExtents(n, in, uuid);
                }
            }
            case Inode.S_IFCHR, Inode.S_IFBLK -> {
                kinds[3]++;
                int major = n.major();
                int minor = n.minor();
                if (major < 256 && minor < 256) {
                    Le.put32(in.block, 0, (major << 8) | minor);
                } else {
                    Le.put32(in.block, 4, (minor & 0xFF) | (major << 8) | ((long) (minor & ~0xFF) << 12));
                }
            }
            default -> kinds[4]++;
        }
        writeXattrs(n, in, uuid);
        table.put(n.ino(), in);
    }

    private void assign(Node dir, List<Node> order, long[] next) {
        dir.children().sort();
        for (Node c : dir.children()) {
            if (c.ino() == 0) {
                c.ino(next[0]++);
                order.add(c);
                if (c.isDir()) {
                    assign(c, order, next);
                }
            }
        }
    }

    private long allocMeta() {
        long b = alloc.allocateOne();
        if (b < 0) {
            throw new CapacityExceededException("image is full: no block left for metadata",
                    layout.blocksCount + 1, 0, layout.blocksCount, layout.inodesCount);
        }
        return b;
    }

    private Inode baseInode(Node n) {
        return baseInode(n, new Inode());
    }

    /** {@code in} (new or cleared) with {@code n}'s type, owner, permissions, times and links. */
    private Inode baseInode(Node n, Inode in) {
        if (n.full == null) {
            // The usual case, read from the node's fields (32-bit seconds are always representable).
            long owner = owners[n.owner()];
            in.mode = n.type() | n.perm();
            in.uid = owner >>> 32;
            in.gid = owner & 0xFFFFFFFFL;
            in.atime = in.mtime = in.ctime = in.crtime = n.seconds;
            in.atimeNs = in.mtimeNs = in.ctimeNs = in.crtimeNs = n.nanos;
            in.links = links(n);
            return in;
        }
        Metadata m = n.full;
        in.mode = n.type() | m.mode();
        in.uid = m.uid();
        in.gid = m.gid();
        Instant a = representable(m.atime());
        Instant mt = representable(m.mtime());
        Instant c = representable(m.ctime());
        Instant cr = representable(m.crtime());
        in.atime = a.getEpochSecond();
        in.atimeNs = a.getNano();
        in.mtime = mt.getEpochSecond();
        in.mtimeNs = mt.getNano();
        in.ctime = c.getEpochSecond();
        in.ctimeNs = c.getNano();
        in.crtime = cr.getEpochSecond();
        in.crtimeNs = cr.getNano();
        in.links = links(n);
        return in;
    }

    private static int links(Node n) {
        if (!n.isDir()) {
            return n.refs();
        }
        int sub = 0;
        for (Node child : n.children()) {
            if (child.isDir()) {
                sub++;
            }
        }
        int links = 2 + sub;
        return links > LINK_MAX ? 1 : links;
    }

    /** ext4 times span 1901-12-13 to 2446-05-10 (32 signed bits plus two epoch bits). */
    static final Instant MIN_TIME = Instant.ofEpochSecond(Integer.MIN_VALUE);
    static final Instant MAX_TIME = Instant.ofEpochSecond(Integer.MAX_VALUE + (3L << 32), 999_999_999);

    static Instant representable(Instant t) {
        if (t.isBefore(MIN_TIME)) {
            return MIN_TIME;
        }
        return t.isAfter(MAX_TIME) ? MAX_TIME : t;
    }

    private void writeDirectory(Node n, Inode in, long parentIno, int hashVersion, int[] seed, byte[] uuid)
            throws IOException {
        List<Directory.Entry> entries = new ArrayList<>(n.children().size());
        Children<Node> children = n.children();
        children.sort();
        for (int i = 0; i < children.size(); i++) {
            Node c = children.value(i);
            entries.add(new Directory.Entry(children.name(i), c.ino(), fileType(c.type())));
        }
        Directory.Blocks blocks = Directory.build(entries, n.ino(), parentIno, bs, csum, true, hashVersion,
                seed, uuid, n == lostFound ? lostFoundBlocks : 0);
        List<byte[]> list = blocks.blocks();
        // The directory's own extents are not kept on its node (whose payload is its children).
        List<long[]> ext = new ArrayList<>(1);
        int i = 0;
        while (i < list.size()) {
            long[] run = alloc.allocateRun(list.size() - i);
            if (run == null) {
                throw new CapacityExceededException("image is full: no room for directory blocks",
                        layout.blocksCount + list.size() - i, 0, layout.blocksCount, layout.inodesCount);
            }
            for (int k = 0; k < run[1]; k++) {
                writeBlock(run[0] + k, list.get(i + k));
            }
            long[] last = ext.isEmpty() ? null : ext.get(ext.size() - 1);
            if (last != null && Node.continues(last[0], last[1], last[2], i, run[0], run[1])) {
                last[2] += run[1];
            } else {
                ext.add(new long[] {i, run[0], run[1]});
            }
            i += (int) run[1];
        }
        in.size = (long) list.size() * bs;
        in.flags |= Inode.FLAG_EXTENTS | (blocks.indexed() ? Inode.FLAG_INDEX : 0);
        mapExtents(ext, list.size(), n.ino(), in, uuid);
    }

    private static int fileType(int type) {
        return switch (type) {
            case Inode.S_IFREG -> Directory.TYPE_REG;
            case Inode.S_IFDIR -> Directory.TYPE_DIR;
            case Inode.S_IFLNK -> Directory.TYPE_SYMLINK;
            case Inode.S_IFCHR -> Directory.TYPE_CHR;
            case Inode.S_IFBLK -> Directory.TYPE_BLK;
            case Inode.S_IFIFO -> Directory.TYPE_FIFO;
            default -> Directory.TYPE_SOCK;
        };
    }

    /** Builds the extent tree (writing any tree blocks) and counts i_blocks. */
    private void mapExtents(Node n, Inode in, byte[] uuid) throws IOException {
        List<long[]> ext = new ArrayList<>(n.extentCount());
        for (int i = 0; i < n.extentCount(); i++) {
            ext.add(new long[] {n.logical(i), n.physical(i), n.length(i)});
        }
        mapExtents(ext, n.dataBlocks(), n.ino(), in, uuid);
    }

    private void mapExtents(List<long[]> ext, long dataBlocks, long ino, Inode in, byte[] uuid) throws IOException {
        List<ExtentTree.NodeBlock> tree = ExtentTree.build(ext, in.block, bs, this::allocMeta, ino, uuid, csum);
        for (ExtentTree.NodeBlock nb : tree) {
            writeBlock(nb.block(), nb.data());
        }
        in.blocks512 += (dataBlocks + tree.size()) * (bs / 512);
    }

    private void writeXattrs(Node n, Inode in, byte[] uuid) throws IOException {
        boolean inline = n.type() == Inode.S_IFREG && n.data() != null;
        if (!n.hasXattrs() && !inline) {
            return;
        }
        List<Xattr.Attr> attrs = Xattr.sorted(md(n).xattrs());
        if (inline) {
            // An inline-data inode must carry "system.data" in the inode, even when it is empty.
            attrs.add(0, INLINE_DATA_ATTR);
        }
        List<List<Xattr.Attr>> split = splitXattrs(attrs);
        List<Xattr.Attr> inInode = split.get(0);
        List<Xattr.Attr> inBlock = split.get(1);
        int space = 256 - Inode.GOOD_OLD_SIZE - Inode.EXTRA_ISIZE;
        if (!inInode.isEmpty()) {
            in.inlineXattrs = Xattr.encodeInInode(inInode, space);
        }
        if (!inBlock.isEmpty()) {
            // Identical attribute sets share one block, as the kernel's mbcache makes them share.
            String key = java.util.HexFormat.of().formatHex(Xattr.encodeBlock(inBlock, bs, 0, uuid, false));
            SharedXattr shared = sharedXattrs.get(key);
            if (shared == null || shared.refcount >= XATTR_REFCOUNT_MAX) {
                shared = new SharedXattr(allocMeta(), inBlock);
                sharedXattrs.put(key, shared);
                xattrBlocks.add(shared);
            }
            shared.refcount++;
            in.fileAcl = shared.block;
            in.blocks512 += bs / 512;
        }
    }

    /** An xattr block and how many inodes use it; written once all inodes are known. */
    private static final class SharedXattr {
        final long block;
        final List<Xattr.Attr> attrs;
        long refcount;

        SharedXattr(long block, List<Xattr.Attr> attrs) {
            this.block = block;
            this.attrs = attrs;
        }
    }

    /** The kernel shares an xattr block among at most this many inodes (EXT4_XATTR_REFCOUNT_MAX). */
    private static final int XATTR_REFCOUNT_MAX = 1024;
    private final Map<String, SharedXattr> sharedXattrs = new java.util.HashMap<>();
    private final List<SharedXattr> xattrBlocks = new ArrayList<>();

    private void writeSharedXattrs(byte[] uuid) throws IOException {
        for (SharedXattr x : xattrBlocks) {
            writeBlock(x.block, Xattr.encodeBlock(x.attrs, bs, x.block, uuid, csum, x.refcount));
        }
    }

    private Inode resizeInode(Instant t) throws IOException {
        int apb = bs / 4;
        byte[] dind = new byte[bs];
        long blocks = 1;
        for (int r = 0; r < layout.reservedGdtBlocks; r++) {
            long gdtBlk = layout.firstDataBlock + 1 + layout.descBlocks + r;
            Le.put32(dind, ((layout.descBlocks + r) % apb) * 4, gdtBlk);
            blocks++;
            byte[] ind = new byte[bs];
            int last = 0;
            for (int g = 1; g < layout.groupCount; g++) {
                if (Layout.hasSuper(g)) {
                    Le.put32(ind, last * 4, gdtBlk + (long) g * layout.blocksPerGroup);
                    last++;
                    blocks++;
                }
            }
            writeBlock(gdtBlk, ind);
        }
        writeBlock(resizeDind, dind);
        Inode in = new Inode();
        in.mode = Inode.S_IFREG | 0600;
        in.links = 1;
        in.atime = in.mtime = in.ctime = in.crtime = t.getEpochSecond();
        Le.put32(in.block, 13 * 4, resizeDind);
        in.size = ((long) apb * apb + apb + 12) * bs;
        in.blocks512 = blocks * (bs / 512);
        return in;
    }

    private Inode journalInode(Instant t, byte[] uuid) throws IOException {
        writeBlock(journalStart, pad(JournalSuperblock.encode(bs, journalBlocks, uuid, csum)));
        Node j = node(Inode.S_IFREG, Metadata.of(0600, t));
        j.ino(JOURNAL_INO);
        for (long done = 0; done < journalBlocks; ) {
            long len = Math.min(Layout.MAX_EXTENT_LEN, journalBlocks - done);
            j.addExtent(done, journalStart + done, len);
            done += len;
        }
        Inode in = baseInode(j);
        in.links = 1;
        in.size = (long) journalBlocks * bs;
        in.flags = Inode.FLAG_EXTENTS;
        mapExtents(j, in, uuid);
        return in;
    }

    private byte[] pad(byte[] b) {
        return b.length == bs ? b : Arrays.copyOf(b, bs);
    }

    /**
     * The inode tables, written as the inodes come, in ascending inode number. The table
     * blocks holding reserved inodes (root, lost+found, the journal's and the resize inode, which
     * are made last) stay in memory until {@link #finish()}; every other block is written when
     * the first inode of the next block arrives.
     */
    private final class InodeTable {
        private final byte[] uuid;
        private final int isz = layout.inodeSize;
        private final int perBlock = bs / isz;
        private final TreeMap<Long, byte[]> held = new TreeMap<>();
        private final BitSet reservedPut = new BitSet(FIRST_INO);
        private byte[] buf = new byte[bs];
        private long current = -1;
        private long last;

        InodeTable(byte[] uuid) {
            this.uuid = uuid;
            for (long ino = 1; ino < FIRST_INO; ino++) {
                held.computeIfAbsent(blockOf(ino), b -> new byte[bs]);
            }
        }

        private long blockOf(long ino) {
            long ipg = layout.inodesPerGroup;
            return layout.inodeTable[(int) ((ino - 1) / ipg)] + ((ino - 1) % ipg) / perBlock;
        }

        void put(long ino, Inode in) throws IOException {
            long blk = blockOf(ino);
            byte[] target = held.get(blk);
            if (ino < FIRST_INO) {
                reservedPut.set((int) ino);
            } else {
                if (ino <= last) {
                    throw new IllegalStateException("inode " + ino + " after " + last);
                }
                last = ino;
            }
            if (target == null) {
                if (blk != current) {
                    flush();
                    current = blk;
                }
                target = buf;
            }
            int at = (int) (((ino - 1) % layout.inodesPerGroup) % perBlock) * isz;
            Arrays.fill(target, at, at + isz, (byte) 0);
            in.encodeInto(target, at, isz, ino, uuid, csum);
        }

        private void flush() throws IOException {
            if (current >= 0) {
                writeBlock(current, buf);
                Arrays.fill(buf, (byte) 0);
                current = -1;
            }
        }

        /** Reserved inodes not made get a valid (empty) body and checksum, as mke2fs writes them. */
        void finish() throws IOException {
            flush();
            for (int ino = 1; ino < FIRST_INO; ino++) {
                if (!reservedPut.get(ino)) {
                    put(ino, new Inode());
                }
            }
            for (Map.Entry<Long, byte[]> e : held.entrySet()) {
                writeBlock(e.getKey(), e.getValue());
            }
        }
    }

    /** {@code lastIno}: inodes 1 to lastIno are in use (inode numbers are handed out in a row). */
    private void writeGroupMetadata(long lastIno, Inode journal, List<Node> nodes, byte[] uuid, byte[] seedBytes,
            int hashVersion) throws IOException {
        int groups = layout.groupCount;
        long ipg = layout.inodesPerGroup;
        GroupDescriptor[] gds = new GroupDescriptor[groups];
        long[] usedDirs = new long[groups];
        for (Node n : nodes) {
            if (n.isDir()) {
                usedDirs[(int) ((n.ino() - 1) / ipg)]++;
            }
        }
        BitSet used = alloc.bitmap();
        long totalFreeBlocks = 0;
        long totalFreeInodes = 0;
        for (int g = 0; g < groups; g++) {
            GroupDescriptor gd = new GroupDescriptor();
            gds[g] = gd;
            gd.blockBitmap = layout.blockBitmap[g];
            gd.inodeBitmap = layout.inodeBitmap[g];
            gd.inodeTable = layout.inodeTable[g];
            gd.flags = GroupDescriptor.FLAG_ITABLE_ZEROED;
            gd.usedDirs = usedDirs[g];

            byte[] bb = new byte[bs];
            long first = layout.groupFirstBlock(g);
            int n = layout.groupBlocks(g);
            int free = 0;
            for (int i = 0; i < n; i++) {
                if (used.get((int) (first + i))) {
                    bb[i >>> 3] |= (byte) (1 << (i & 7));
                } else {
                    free++;
                }
            }
            for (int i = n; i < bs * 8; i++) {
                bb[i >>> 3] |= (byte) (1 << (i & 7));
            }
            gd.freeBlocks = free;
            totalFreeBlocks += free;
            writeBlock(gd.blockBitmap, bb);
            if (csum) {
                gd.blockBitmapCsum = Crc32c.seeded(uuid).update(bb, 0, bs).raw();
            }

            byte[] ib = new byte[bs];
            int freeInodes = 0;
            long lastUsed = 0;
            for (int i = 0; i < ipg; i++) {
                long ino = (long) g * ipg + i + 1;
                if (ino <= lastIno) {
                    ib[i >>> 3] |= (byte) (1 << (i & 7));
                    lastUsed = i + 1;
                } else {
                    freeInodes++;
                }
            }
            for (int i = (int) ipg; i < bs * 8; i++) {
                ib[i >>> 3] |= (byte) (1 << (i & 7));
            }
            gd.freeInodes = freeInodes;
            gd.itableUnused = ipg - lastUsed;
            totalFreeInodes += freeInodes;
            writeBlock(gd.inodeBitmap, ib);
            if (csum) {
                gd.inodeBitmapCsum = Crc32c.seeded(uuid).update(ib, 0, (int) (ipg / 8)).raw();
            }
        }

        byte[] gdt = new byte[layout.descBlocks * bs];
        for (int g = 0; g < groups; g++) {
            gds[g].encode(gdt, g * GroupDescriptor.SIZE, g, uuid, csum);
        }

        Superblock sb = new Superblock();
        sb.inodesCount = layout.inodesCount;
        sb.blocksCount = layout.blocksCount;
        sb.reservedBlocksCount = layout.blocksCount * opts.reservedPercent / 100;
        sb.freeBlocksCount = totalFreeBlocks;
        sb.freeInodesCount = totalFreeInodes;
        sb.firstDataBlock = layout.firstDataBlock;
        sb.logBlockSize = Integer.numberOfTrailingZeros(bs) - 10;
        sb.blocksPerGroup = layout.blocksPerGroup;
        sb.inodesPerGroup = ipg;
        long time = opts.timestamp.getEpochSecond();
        sb.mtime = 0;
        sb.wtime = time;
        sb.mkfsTime = time;
        sb.lastCheck = time;
        sb.inodeSize = layout.inodeSize;
        sb.featureCompat = Features.COMPAT_EXT_ATTR | Features.COMPAT_DIR_INDEX
                | (layout.reservedGdtBlocks > 0 ? Features.COMPAT_RESIZE_INODE : 0)
                | (journalBlocks > 0 ? Features.COMPAT_HAS_JOURNAL : 0);
        sb.featureIncompat = Features.INCOMPAT_FILETYPE | Features.INCOMPAT_EXTENTS | Features.INCOMPAT_64BIT
                | Features.INCOMPAT_FLEX_BG | (opts.inlineData ? Features.INCOMPAT_INLINE_DATA : 0);
        sb.featureRoCompat = Features.RO_COMPAT_SPARSE_SUPER | Features.RO_COMPAT_LARGE_FILE
                | Features.RO_COMPAT_HUGE_FILE | Features.RO_COMPAT_DIR_NLINK | Features.RO_COMPAT_EXTRA_ISIZE
                | (csum ? Features.RO_COMPAT_METADATA_CSUM : 0);
        sb.uuid = uuid;
        byte[] label = opts.label.getBytes(StandardCharsets.UTF_8);
        System.arraycopy(label, 0, sb.volumeName, 0, label.length);
        sb.reservedGdtBlocks = layout.reservedGdtBlocks;
        sb.journalInum = journalBlocks > 0 ? JOURNAL_INO : 0;
        sb.hashSeed = seedBytes;
        sb.defHashVersion = hashVersion;
        sb.descSize = GroupDescriptor.SIZE;
        sb.defaultMountOpts = 0x0004 | 0x0008; // user_xattr, acl
        sb.minExtraIsize = Inode.EXTRA_ISIZE;
        sb.wantExtraIsize = Inode.EXTRA_ISIZE;
        sb.flags = 0x1; // signed directory hash, as mkfs sets it on x86
        sb.logGroupsPerFlex = layout.logGroupsPerFlex;
        sb.checksumType = csum ? 1 : 0;
        if (journalBlocks > 0) {
            Inode j = journal;
            sb.jnlBackupType = 1;
            for (int i = 0; i < 15; i++) {
                sb.jnlBlocks[i] = Le.get32(j.block, i * 4);
            }
            sb.jnlBlocks[15] = j.size >>> 32;
            sb.jnlBlocks[16] = j.size & 0xFFFFFFFFL;
        }

        for (int g = 0; g < groups; g++) {
            if (!Layout.hasSuper(g)) {
                continue;
            }
            sb.blockGroupNr = g;
            byte[] enc = sb.encode();
            long first = layout.groupFirstBlock(g);
            if (g == 0) {
                byte[] b0 = new byte[bs];
                int off = bs == 1024 ? 0 : Superblock.OFFSET;
                System.arraycopy(enc, 0, b0, off, Superblock.SIZE);
                writeBlock(bs == 1024 ? 1 : 0, b0);
            } else {
                writeBlock(first, pad(enc));
            }
            writeFully(gdt, 0, gdt.length, (first + 1) * bs);
        }
    }

    private byte[] derivedUuid() {
        flushDigest();
        byte[] h = digest.digest();
        byte[] u = Arrays.copyOf(h, 16);
        u[6] = (byte) ((u[6] & 0x0F) | 0x50);
        u[8] = (byte) ((u[8] & 0x3F) | 0x80);
        return u;
    }

    private static byte[] derivedSeed(byte[] uuid) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            d.update("kiln htree seed".getBytes(StandardCharsets.US_ASCII));
            d.update(uuid);
            byte[] s = Arrays.copyOf(d.digest(), 16);
            s[6] = (byte) ((s[6] & 0x0F) | 0x50);
            s[8] = (byte) ((s[8] & 0x3F) | 0x80);
            return s;
        } catch (NoSuchAlgorithmException e) {
            throw new UncheckedIOException(new IOException(e));
        }
    }
}
