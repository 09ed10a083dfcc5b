package dev.kiln.image;

import dev.kiln.ext4.EntryException;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A host directory tree, walked in name order. Modes, numeric owners, modification times, hard
 * links, devices, FIFOs, sockets and every xattr the process may read (all namespaces as root:
 * file capabilities, SELinux labels, {@code trusted.*}, POSIX ACLs) are carried over, as
 * {@code mkfs.ext4 -d} does; the directory's own metadata becomes the image root's. Access,
 * change and creation times are set to the modification time so builds are reproducible.
 */
public final class DirSource implements Source {
    private static final LinkOption NOFOLLOW = LinkOption.NOFOLLOW_LINKS;
    private final Path root;
    private final Hook hook;

    /**
     * Lets a caller adjust entries as the tree is read: the script stage restores what its
     * staging directory could not hold (owners, device nodes, security xattrs).
     */
    interface Hook {
        /** The metadata recorded for {@code imagePath}, given the host's; {@code ino} and {@code ctime} are the host file's. */
        Metadata metadata(String imagePath, Metadata host, long ino, FileTime ctime) throws IOException;

        /** Writes the entry itself instead of the host file and returns true, or returns false. */
        default boolean replace(String imagePath, long ino, FileTime ctime, Ext4Writer w) throws IOException {
            return false;
        }
    }

    private static final Hook AS_IS = (p, md, ino, ctime) -> md;

    public DirSource(Path root) {
        this(root, AS_IS);
    }

    DirSource(Path root, Hook hook) {
        this.root = followed(root);
        this.hook = hook;
    }

    /**
     * The directory a symbolic link given as the source names (the tree is that directory's,
     * its root's metadata and xattrs too: not the link's, which lstat and getfattr -h would give).
     */
    private static Path followed(Path root) {
        if (!Files.isSymbolicLink(root)) {
            return root;
        }
        try {
            return root.toRealPath();
        } catch (IOException e) {
            return root; // dangling: reading it says so
        }
    }

    @Override
    public String describe() {
        return "dir:" + root;
    }

    @Override
    public List<String> notes() {
        List<String> notes = new ArrayList<>();
        if (specialXattrsUnread) {
            notes.add(describe() + ": getfattr is not installed, so the xattrs of symbolic links and special files "
                    + "(SELinux labels, trusted.*) were not read and are not in the image; install getfattr (Debian: "
                    + "apt-get install attr) or use kiln's release, which reads them itself");
        } else if (onlyUserXattrs) {
            notes.add(describe() + ": getfattr is not installed, so only user.* xattrs were read: file capabilities "
                    + "(security.*), POSIX ACLs and trusted.* are not in the image; install getfattr (Debian: apt-get "
                    + "install attr) or use kiln's release, which reads them itself");
        } else if (!DirExport.isRoot()) {
            notes.add(describe() + ": read without root, so trusted.* xattrs (if any) could not be read and are not in "
                    + "the image; security.* and user.* xattrs and POSIX ACLs were kept");
        }
        return notes;
    }

    @Override
    public long[] estimate() throws IOException {
        long[] acc = new long[2];
        try (var s = Files.walk(root)) {
            s.forEach(p -> {
                acc[1]++;
                try {
                    if (Files.isRegularFile(p, NOFOLLOW)) {
                        acc[0] += Files.size(p);
                    }
                } catch (IOException e) {
                    // counted as empty; the build itself reports unreadable files
                }
            });
        }
        return acc;
    }

    /**
     * One entry of the walk, with everything the host had to say about it (or why it could not).
     * A small file's content is {@code length} bytes at {@code offset} in the ring (offset -1:
     * not read ahead); {@code held} ring bytes go back when the writer is done with the entry.
     * {@code fd}: the regular file's descriptor, left open for the writer's thread to list its
     * xattrs and close ({@link #handed}), or -1 (the walk did both, or the file has none).
     */
    private record Item(Path path, String name, HostStat attrs, Metadata md, int offset, int length,
            int held, String target, int fd, Throwable error) {
        static final Item END = failed(null);

        static Item failed(Throwable e) {
            return new Item(null, null, null, null, -1, 0, 0, null, -1, e);
        }
    }

    /**
     * Descriptors the walk has handed to the writer's thread in {@link Item#fd}, not yet closed
     * there. The walk is the slower of the two on a large tree (the writer waited for it 1.4 s
     * of a 2.6 s Linux-tree build, it for the writer 0.27 s), and of its five calls a file,
     * {@code flistxattr} and {@code close} go to the writer's thread this way. At most
     * {@link #HANDED_MAX} are open at once (the walk then does both itself: the writer's thread
     * is the slower one then); those a build that ends early leaves are closed by
     * {@link Walk#end}.
     */
    private final java.util.concurrent.atomic.AtomicInteger handed = new java.util.concurrent.atomic.AtomicInteger();
    private static final int HANDED_MAX = 512;

    /** The walk under way (started by {@link #start} or by {@link #applyTo}); null before. */
    private Walk walk;

    private record Walk(ReadAhead.Ring ring, AtomicBoolean stopped, ReadAhead.Handoff<Item> out, Thread walker,
            boolean calls, java.util.concurrent.atomic.AtomicInteger handed, HostFd fds) {
        void end() {
            stopped.set(true);
            ring.abandon();
            walker.interrupt();
            try {
                walker.join(10_000); // it stops at its next entry (after a build, it has ended)
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            if (handed.get() > 0) { // a build that ended early: descriptors the walk handed over
                out.drain(it -> {
                    if (it.fd() >= 0) {
                        handed.decrementAndGet();
                        fds.close(it.fd());
                    }
                }, !walker.isAlive());
            }
            out.clear();
        }
    }

    /**
     * Starts the walk and the xattr dump beside it, so that both run while the build sets up
     * its writer (the output file, its buffers: ~25 ms of a small build's main thread).
     */
    @Override
    public void start() {
        if (walk != null) {
            return;
        }
        boolean calls = xattrsByCalls();
        fds = !calls && xattrsByDescriptor();
        xattrs = calls ? null : HostXattrs.dumpAsync(root, fds);
        ReadAhead.Ring ring = new ReadAhead.Ring(true); // off the heap: the walk reads files straight into it
        AtomicBoolean stop = new AtomicBoolean();
        ReadAhead.Handoff<Item> out = new ReadAhead.Handoff<>(stop, Item[]::new);
        // The walk starts before the writer waits for the xattr dump (the root's xattrs are the
        // first it needs): the two run side by side, and the walk fills the ring meanwhile.
        Thread walker = ReadAhead.start("kiln-dir-walk", out, () -> {
            try (XattrCalls x = calls ? XattrCalls.open() : null) {
                HostFd f = fds ? HostFd.open() : null;
                int dir = f != null && HostFd.relative() ? openRoot(f) : -1;
                try {
                    walk(root, dir, 0, "", out, ring, new java.util.HashSet<>(), stop, x, f);
                } finally {
                    if (dir >= 0) {
                        f.close(dir);
                    }
                }
            }
        }, Item::failed, Item.END);
        walk = new Walk(ring, stop, out, walker, calls, handed, fds ? HostFd.open() : null);
    }

    @Override
    public void abandon() {
        if (walk != null) {
            walk.end();
            walk = null;
            settleXattrs(false);
        }
    }

    /**
     * The walk (listing, lstat, xattrs, reading small files, readlink) runs on a second thread,
     * in the order the writer takes the entries; on a tree of many small files the system calls
     * are most of the work, and they now overlap with writing the image.
     */
    @Override
    public void applyTo(Ext4Writer writer) throws IOException {
        Map<HostStat.LinkKey, String> links = new HashMap<>();
        start();
        Walk w = walk;
        boolean done = false;
        try {
            HostStat rootAttrs = HostStat.of(root);
            Metadata rootMd = metadata(rootAttrs);
            if (w.calls()) {
                try (XattrCalls x = XattrCalls.open()) {
                    rootMd = withXattrs(x, root, rootMd);
                }
            } else if (fds) {
                rootMd = withXattrs(w.fds(), root, 0040000, rootMd);
            } else {
                rootMd = withXattrs("/", rootMd, rootAttrs.mode());
            }
            writer.directory("/", hooked("/", rootMd, rootAttrs));
            String what = root.toString();
            for (Item it = w.out().next(what); it != Item.END; it = w.out().next(what)) {
                if (it.error() != null) {
                    throw ReadAhead.rethrown(it.error(), what);
                }
                apply(it, writer, links, w.ring(), w.fds());
                w.ring().release(it.held());
            }
            done = true;
        } finally {
            w.end();
            walk = null; // applied again, the tree is walked again
            settleXattrs(done);
        }
    }

    /**
     * The xattr dump beside the walk, which the writer waits for only at the first symbolic
     * link or special file: once the tree is written it is waited for (on any tree it has long
     * ended by then: its {@code find} reads only directory entries), so none of its processes
     * or pipes outlives the source's use, but for {@link #SETTLE_SECONDS} at most, since nothing
     * needs its answer any more; after a failure, or that long, it is cancelled.
     */
    private void settleXattrs(boolean wait) {
        java.util.concurrent.Future<?> x = xattrs;
        if (x == null || x.isDone()) {
            return;
        }
        try {
            if (wait) {
                x.get(SETTLE_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            // nothing was waiting for it: no link or special file needed its answer
        } finally {
            x.cancel(true);
        }
    }

    /** How long a finished walk waits for the xattr dump to end by itself. */
    private static final int SETTLE_SECONDS = 10;

    /**
     * The tree below {@code dir}, whose descriptor is {@code fd} ({@link HostFd#relative()}:
     * every name is then looked up in its directory, not by its path from the root) or -1 (by
     * path: kiln as a library without the JDK's dispatcher open to it, or below {@link
     * #OPEN_DIRECTORIES} levels).
     */
    private void walk(Path dir, int fd, int depth, String prefix, ReadAhead.Handoff<Item> q,
            ReadAhead.Ring ring, java.util.Set<HostStat.LinkKey> linked, AtomicBoolean stop, XattrCalls x, HostFd f) throws Exception {
        // Only the names are kept while the directory is walked (a 30,000-entry directory's
        // listing as name-and-path pairs was ~6 MB that outlived young collections and went to
        // the old generation); each child's path is made again when its turn comes.
        String[] names = new String[16];
        int count = 0;
        if (fd >= 0) {
            try {
                names = f.list(fd, dir);
            } catch (IOException e) {
                throw new InvalidSourceException(dir + ": cannot list directory (" + e.getMessage() + ")", e);
            }
            count = names.length;
        } else {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
                for (Path c : ds) {
                    if (count == names.length) {
                        names = java.util.Arrays.copyOf(names, count * 2);
                    }
                    names[count++] = RawPaths.name(c);
                }
            } catch (IOException e) {
                throw new InvalidSourceException(dir + ": cannot list directory (" + e.getMessage() + ")", e);
            }
        }
        java.util.Arrays.sort(names, 0, count);
        for (int i = 0; i < count && !stop.get(); i++) {
            String child = names[i];
            names[i] = null;
            // One child a call: the JIT compiles this body after a few hundred entries, where
            // the loop itself would stay interpreted until an on-stack replacement.
            child(RawPaths.resolve(dir, child), fd, depth, child, prefix + "/" + child, q, ring, linked, stop, x, f);
        }
    }

    /** How deep a walk keeps the descriptors of the directories it is in; below that it goes by path. */
    static final int OPEN_DIRECTORIES = 128;

    /** The walk's root by descriptor, or -1 (not a readable directory: the walk by path reports it). */
    private int openRoot(HostFd f) {
        try {
            return f.open(root, true);
        } catch (IOException e) {
            return -1;
        }
    }

    private void child(Path p, int dir, int depth, String leaf, String name, ReadAhead.Handoff<Item> q,
            ReadAhead.Ring ring, java.util.Set<HostStat.LinkKey> linked, AtomicBoolean stop, XattrCalls x, HostFd f) throws Exception {
        byte[] raw = dir >= 0 ? dev.kiln.ext4.Names.encode(leaf) : null;
        HostStat a;
        try {
            a = raw != null ? f.stat(dir, raw, p) : HostStat.of(p);
        } catch (IOException e) {
            throw new InvalidSourceException(p + ": cannot read attributes (" + e.getMessage() + ")", e);
        }
        int type = a.type();
        if (type != 0040000 && a.nlink() > 1 && !linked.add(a.linkKey())) {
            // A hard link's data is read once, with the first name the walk (and so the
            // writer) sees; the other names become links to it.
            q.add(new Item(p, name, a, null, -1, 0, 0, null, -1, null));
            return;
        }
        Metadata md = metadata(a);
        if (x != null) {
            md = withXattrs(x, p, md);
        }
        int offset = -1;
        int length = 0;
        int held = 0;
        String target = null;
        int below = -1; // this directory's descriptor, kept for its walk
        int handedFd = -1; // a regular file's, for the writer's thread (its xattrs, its close)
        if (f != null && (type == 0100000 || type == 0040000)) {
            // One descriptor for the xattrs and a small file's content.
            int fd = openFor(f, p, dir, raw, type, a.size());
            if (fd < 0) {
                md = unreadableXattrs(p, md);
                if (type == 0100000) { // empty (openFor): nothing to read
                    int[] r = ring.reserve(0, q);
                    held = r[1];
                    offset = r[0];
                }
            } else {
                boolean keep = false;
                boolean hand = type == 0100000 && handed.get() < HANDED_MAX;
                boolean ok = false;
                try {
                    if (!hand) {
                        md = withXattrs(f, fd, p, md);
                    }
                    long size = a.size();
                    if (type == 0100000 && size <= ReadAhead.FILE) {
                        int[] r = ring.reserve((int) size, q);
                        held = r[1];
                        boolean whole;
                        try {
                            whole = f.readExactly(fd, ring.mem, r[0], (int) size);
                        } catch (IOException e) {
                            throw new InvalidSourceException(p + ": cannot read (" + e.getMessage() + ")", e);
                        }
                        if (whole) {
                            offset = r[0];
                            length = (int) size;
                        }
                        // else it shrank while we looked: as below
                    }
                    keep = type == 0040000 && dir >= 0 && depth + 1 < OPEN_DIRECTORIES;
                    ok = true;
                } finally {
                    if (keep) {
                        below = fd;
                    } else if (hand && ok) {
                        handedFd = fd;
                        handed.incrementAndGet();
                    } else {
                        f.close(fd);
                    }
                }
            }
        } else if (type == 0100000) {
            long size = a.size();
            if (size <= ReadAhead.FILE) {
                int[] r = ring.reserve((int) size, q);
                held = r[1];
                try {
                    if (readExactly(p, ring.slice(r[0], (int) size))) {
                        offset = r[0];
                        length = (int) size;
                    }
                    // else it shrank while we looked: the writer streams it and reports the
                    // short read (the ring bytes stay held until then, to keep the order).
                } catch (java.nio.file.AccessDeniedException e) {
                    throw new InvalidSourceException(p + ": permission denied; run as a user who can read it", e);
                }
            }
        } else if (type == 0120000) {
            target = RawPaths.string(Files.readSymbolicLink(p));
        }
        try {
            q.add(new Item(p, name, a, md, offset, length, held, target, handedFd, null));
            if (type == 0040000) {
                walk(p, below, depth + 1, name, q, ring, linked, stop, x, f);
            }
        } finally {
            if (below >= 0) {
                f.close(below);
            }
        }
    }

    /**
     * Reads the first bytes of the file into {@code buf}, as many as it holds (the size lstat
     * gave); false if it is shorter now. One open, the reads, one close
     * (Files.readAllBytes also asks for the size and reads once more to see the end).
     */
    private static boolean readExactly(Path p, ByteBuffer buf) throws IOException {
        if (!buf.hasRemaining()) {
            return true;
        }
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(p)) {
            while (buf.hasRemaining()) {
                if (ch.read(buf) < 0) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * A host file's content streamed into the image; a sparse file's holes are skipped, not
     * read, where the runtime can find them ({@link HoleScan}).
     */
    static void copyFile(Ext4Writer w, String name, Metadata md, Path p, long size) throws IOException {
        long[] data = HoleScan.dataRegions(p, size);
        java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(p);
        if (data == null) {
            w.file(name, md, ch, size); // the writer closes it
            return;
        }
        try (ch) {
            InputStream whole = java.nio.channels.Channels.newInputStream(ch);
            w.file(name, md, size, data, new RegionBytes(whole, data, size, n -> ch.position(ch.position() + n)));
        }
    }

    private void apply(Item it, Ext4Writer w, Map<HostStat.LinkKey, String> links, ReadAhead.Ring ring, HostFd mine)
            throws IOException {
        Path p = it.path();
        String name = it.name();
        HostStat a = it.attrs();
        int mode = a.mode();
        int type = a.type();
        Metadata raw = it.md();
        int fd = it.fd();
        if (fd >= 0) {
            try {
                raw = withXattrs(mine, fd, p, raw); // the walk handed them over
            } finally {
                handed.decrementAndGet();
                mine.close(fd);
            }
        }
        if (type != 0040000 && a.nlink() > 1) {
            String first = links.putIfAbsent(a.linkKey(), name);
            if (first != null) {
                w.hardLink(name, first);
                return;
            }
        }
        if (xattrs != null && (!fds || (type != 0100000 && type != 0040000))) {
            raw = withXattrs(name, raw, mode); // else the walk read them
        }
        if (hook.replace(name, a.ino(), a.ctime(), w)) {
            return;
        }
        Metadata md = hooked(name, raw, a);
        try {
            switch (type) {
                case 0040000 -> w.directory(name, md);
                case 0100000 -> {
                    if (it.offset() >= 0) {
                        w.file(name, md, ring.slice(it.offset(), it.length()));
                    } else {
                        try {
                            copyFile(w, name, md, p, a.size());
                        } catch (java.nio.file.AccessDeniedException e) {
                            throw new InvalidSourceException(p + ": permission denied; run as a user who can read it", e);
                        }
                    }
                }
                case 0120000 -> w.symlink(name, md, it.target() != null ? it.target() : RawPaths.string(Files.readSymbolicLink(p)));
                case 0020000, 0060000 -> {
                    long rdev = a.rdev();
                    int major = (int) (((rdev >>> 8) & 0xFFF) | ((rdev >>> 32) & ~0xFFFL));
                    int minor = (int) ((rdev & 0xFF) | ((rdev >>> 12) & ~0xFFL));
                    if (type == 0020000) {
                        w.charDevice(name, md, major, minor);
                    } else {
                        w.blockDevice(name, md, major, minor);
                    }
                }
                case 0010000 -> w.fifo(name, md);
                case 0140000 -> w.socket(name, md);
                default -> throw new InvalidSourceException(p + ": unknown file type " + Integer.toOctalString(type));
            }
        } catch (EntryException e) {
            throw new InvalidSourceException(p + ": " + e.getMessage(), e);
        }
    }

    /**
     * Whether the walk reads every entry's xattrs by path itself ({@link XattrCalls}: Java 22+):
     * only when getfattr is not installed (or {@code -Dkiln.xattrs=calls}); otherwise files and
     * directories are read from their descriptors ({@link #xattrsByDescriptor}) and links from
     * getfattr. On the release runtime the two measured the same (small and minbase); the calls
     * cost ~40 ms of FFM set-up on a plain JDK. {@code -Dkiln.xattrs=getfattr} never makes them.
     */
    static boolean xattrsByCalls() {
        String how = System.getProperty("kiln.xattrs", "");
        if (how.equals("getfattr") || !XattrCalls.available()) {
            return false;
        }
        return how.equals("calls") || UserNamespace.which("getfattr") == null;
    }

    /**
     * Whether the walk reads the xattrs of regular files and directories from their descriptors
     * ({@link HostFd}), leaving only symbolic links and special files to getfattr: wherever the
     * JDK's dispatcher is open to kiln, unless {@code -Dkiln.xattrs=getfattr} asks for the whole
     * tree's dump (as before; a differential test compares the two).
     */
    static boolean xattrsByDescriptor() {
        return HostFd.available() && !System.getProperty("kiln.xattrs", "").equals("getfattr");
    }

    /**
     * A descriptor of the file or directory for its xattrs and content, or -1 when the process
     * may not open it: a directory it cannot read fails when listed, a file with content when
     * read (as before), an empty file has nothing else to read ({@link #unreadableXattrs}).
     */
    private static int openFor(HostFd f, Path p, int dir, byte[] raw, int type, long size) throws IOException {
        try {
            return dir >= 0 ? f.openAt(dir, raw, p, type == 0040000) : f.open(p, type == 0040000);
        } catch (java.nio.file.AccessDeniedException e) {
            if (type == 0100000 && size > 0) {
                throw new InvalidSourceException(p + ": permission denied; run as a user who can read it", e);
            }
            return -1;
        } catch (java.nio.file.NoSuchFileException e) {
            throw new InvalidSourceException(p + ": disappeared while the tree was read; build from a tree nothing "
                    + "changes meanwhile", e);
        }
    }

    /**
     * The xattrs of a file or directory the process may not open, which getfattr reads by path
     * (listing needs no read permission on the file): asked of getfattr for this one path.
     */
    private static Metadata unreadableXattrs(Path p, Metadata md) throws IOException {
        Map<String, Map<String, byte[]>> one = HostXattrs.dumpOne(p);
        if (one == null) {
            return md;
        }
        Map<String, byte[]> x = one.get("/");
        return x == null || x.isEmpty() ? md : md.withXattrs(x);
    }

    /** {@code md} with the xattrs of the open descriptor {@code fd} of {@code p} ({@link HostFd}). */
    private static Metadata withXattrs(HostFd f, int fd, Path p, Metadata md) {
        Map<String, byte[]> all;
        try {
            all = f.xattrs(fd);
        } catch (IOException e) {
            throw new InvalidSourceException(p + ": cannot read xattrs (" + e.getMessage() + ")", e);
        }
        return all.isEmpty() ? md : md.withXattrs(all);
    }

    /** {@code md} with the xattrs of the directory or file {@code p}, opened for them alone. */
    private static Metadata withXattrs(HostFd f, Path p, int type, Metadata md) throws IOException {
        int fd = openFor(f, p, -1, null, type, 0);
        if (fd < 0) {
            return unreadableXattrs(p, md);
        }
        try {
            return withXattrs(f, fd, p, md);
        } finally {
            f.close(fd);
        }
    }

    /** {@code md} with the xattrs of {@code p}, read by the walk itself ({@link XattrCalls}, Java 22+). */
    private static Metadata withXattrs(XattrCalls x, Path p, Metadata md) {
        Map<String, byte[]> all;
        try {
            all = x.read(p);
        } catch (IOException e) {
            throw new InvalidSourceException(p + ": cannot read xattrs (" + e.getMessage() + ")", e);
        }
        return all.isEmpty() ? md : md.withXattrs(all);
    }

    /**
     * Every xattr namespace the process may read, from getfattr run beside the walk ({@link
     * HostXattrs}): of the symbolic links and special files alone when the walk reads the rest
     * from descriptors ({@link #fds}), else of the whole tree; without getfattr, null (the
     * {@code user.*} xattrs the JDK reads file by file, or none). Null too when the walk reads
     * them all itself ({@link XattrCalls}).
     */
    private java.util.concurrent.Future<Map<String, Map<String, byte[]>>> xattrs;
    /** Set when getfattr was missing and only the {@code user.*} xattrs could be read. */
    private volatile boolean onlyUserXattrs;
    /** Whether the walk reads the xattrs of regular files and directories ({@link #xattrsByDescriptor}). */
    private boolean fds;
    /** Set when getfattr was missing and a symbolic link's or special file's xattrs could not be read. */
    private volatile boolean specialXattrsUnread;

    private Metadata withXattrs(String name, Metadata md, int mode) throws IOException {
        Map<String, Map<String, byte[]>> all;
        try {
            all = xattrs.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new java.io.InterruptedIOException("interrupted while reading xattrs of " + root);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new InvalidSourceException(root + ": cannot read xattrs (" + e.getCause().getMessage() + ")", e);
        }
        if (all == null && fds) {
            specialXattrsUnread = true; // (files and directories: the walk read them)
            return md;
        }
        if (all == null) {
            onlyUserXattrs = true;
            Map<String, byte[]> user = userXattrs(RawPaths.inside(root, name), mode);
            return user.isEmpty() ? md : md.withXattrs(user);
        }
        Map<String, byte[]> x = all.get(name);
        return x == null ? md : md.withXattrs(x);
    }

    private Metadata hooked(String imagePath, Metadata md, HostStat a) throws IOException {
        return hook.metadata(imagePath, md, a.ino(), a.ctime());
    }

    private static Metadata metadata(HostStat a) {
        // Only the modification time is carried over, as tar does: reading the tree changes its
        // access times and copying it changes its change times, so using them would make two
        // builds of the same tree differ.
        Instant mtime = a.mtime().toInstant();
        Instant atime = mtime;
        Instant ctime = mtime;
        Instant crtime = mtime;
        int mode = a.mode();
        long uid = a.uid() & 0xFFFFFFFFL;
        long gid = a.gid() & 0xFFFFFFFFL;
        return new Metadata(mode & 07777, uid, gid, atime, mtime, ctime, crtime, Map.of());
    }

    private static Map<String, byte[]> userXattrs(Path p, int mode) {
        int type = mode & 0170000;
        if (type != 0100000 && type != 0040000) {
            // user.* xattrs exist only on files and directories, and the JDK reads them by opening
            // the path: opening a FIFO would block and opening a device could have side effects.
            return Map.of();
        }
        Map<String, byte[]> out = new TreeMap<>();
        try {
            UserDefinedFileAttributeView v = Files.getFileAttributeView(p, UserDefinedFileAttributeView.class, NOFOLLOW);
            if (v == null) {
                return out;
            }
            for (String n : v.list()) {
                ByteBuffer buf = ByteBuffer.allocate(v.size(n));
                v.read(n, buf);
                out.put("user." + n, java.util.Arrays.copyOf(buf.array(), buf.position()));
            }
        } catch (IOException | UnsupportedOperationException e) {
            // The host file system has no xattrs here: nothing to carry over.
        }
        return out;
    }
}
