package dev.kiln.image;

import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * A regular file or directory of a {@code dir:} walk opened once, by descriptor, for its xattrs
 * ({@code flistxattr}/{@code fgetxattr}: every namespace the process may read, as getfattr
 * gives them) and its content. Java 17 has no public way to either list an xattr outside
 * {@code user.*} or hold a file descriptor; the JDK's own Unix dispatcher ({@code
 * sun.nio.fs.UnixNativeDispatcher}, open to kiln as {@link RawPaths} needs) makes the calls, and
 * a direct buffer's address ({@code sun.nio.ch.DirectBuffer}, exported to kiln by the jar's
 * manifest) is where they write. Unavailable (kiln used as a library without those options,
 * another JDK layout): {@link DirSource} then takes every xattr from {@code getfattr -R}.
 *
 * <p>Why: a walk that asked {@code getfattr -R} for the whole tree's xattrs could write nothing
 * before the dump was complete, since a dump names only the files that have xattrs, in the
 * directory's order rather than the walk's; on the Linux source tree the writer waited 0.67 s
 * for it at the start. The walk opens a small file anyway to read it, and one {@code
 * flistxattr} with a size of 0 on that descriptor answers for a file without xattrs (most of
 * them). Symbolic links and special files cannot be opened for this (an {@code O_PATH}
 * descriptor has no xattr calls): theirs still come from getfattr ({@link HostXattrs#dumpSpecial}).
 *
 * <p>One instance holds the buffers (direct, freed with it) of one thread.
 */
final class HostFd {
    private static final int O_RDONLY = 0;
    private static final int O_NOFOLLOW = 0400000;
    private static final int O_DIRECTORY = 0200000;
    private static final int O_NONBLOCK = 04000;
    private static final int EPERM = 1;
    private static final int ENOENT = 2;
    private static final int EACCES = 13;
    private static final int ERANGE = 34;
    private static final int ENODATA = 61;
    private static final int ENOTSUP = 95;
    /** The kernel's XATTR_LIST_MAX and XATTR_SIZE_MAX. */
    private static final int MAX = 65536;

    private static final MethodHandle OPEN;
    private static final MethodHandle READ;
    private static final MethodHandle CLOSE;
    private static final MethodHandle LIST;
    private static final MethodHandle GET;
    private static final MethodHandle ERRNO;
    private static final MethodHandle ADDRESS;
    /** Relative to a directory's descriptor ({@link #stat(int, byte[], Path)} and the rest); null when not this JDK's layout. */
    private static final MethodHandle OPENAT;
    private static final MethodHandle FSTATAT;
    private static final MethodHandle NEW_ATTRIBUTES;
    private static final MethodHandle FDOPENDIR;
    private static final MethodHandle READDIR;
    private static final MethodHandle CLOSEDIR;
    private static final int AT_SYMLINK_NOFOLLOW = 0x100;
    private static final byte[] DOT = {'.'};

    static {
        MethodHandle open = null;
        MethodHandle read = null;
        MethodHandle close = null;
        MethodHandle list = null;
        MethodHandle get = null;
        MethodHandle errno = null;
        MethodHandle address = null;
        try {
            if (System.getProperty("os.name", "").equals("Linux")) {
                Class<?> d = Class.forName("sun.nio.fs.UnixNativeDispatcher");
                Class<?> path = Class.forName("sun.nio.fs.UnixPath");
                Class<?> ex = Class.forName("sun.nio.fs.UnixException");
                Class<?> direct = Class.forName("sun.nio.ch.DirectBuffer");
                if (d.getModule().isOpen("sun.nio.fs", HostFd.class.getModule())
                        && direct.getModule().isExported("sun.nio.ch", HostFd.class.getModule())) {
                    MethodHandles.Lookup l = MethodHandles.privateLookupIn(d, MethodHandles.lookup());
                    open = l.findStatic(d, "open", MethodType.methodType(int.class, path, int.class, int.class))
                            .asType(MethodType.methodType(int.class, Path.class, int.class, int.class));
                    read = l.findStatic(d, "read", MethodType.methodType(int.class, int.class, long.class, int.class));
                    close = l.findStatic(d, "close", MethodType.methodType(void.class, int.class));
                    list = l.findStatic(d, "flistxattr", MethodType.methodType(int.class, int.class, long.class, int.class));
                    get = l.findStatic(d, "fgetxattr",
                            MethodType.methodType(int.class, int.class, byte[].class, long.class, int.class));
                    errno = MethodHandles.privateLookupIn(ex, MethodHandles.lookup())
                            .findVirtual(ex, "errno", MethodType.methodType(int.class))
                            .asType(MethodType.methodType(int.class, Throwable.class));
                    address = MethodHandles.lookup().findVirtual(direct, "address", MethodType.methodType(long.class))
                            .asType(MethodType.methodType(long.class, ByteBuffer.class));
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            open = null; // not this JDK's layout: getfattr -R it is
        }
        MethodHandle openat = null;
        MethodHandle fstatat = null;
        MethodHandle attrs = null;
        MethodHandle fdopendir = null;
        MethodHandle readdir = null;
        MethodHandle closedir = null;
        Class<?> unix = HostStat.unixAttributes();
        if (open != null && unix != null) {
            try {
                Class<?> d = Class.forName("sun.nio.fs.UnixNativeDispatcher");
                MethodHandles.Lookup l = MethodHandles.privateLookupIn(d, MethodHandles.lookup());
                openat = l.findStatic(d, "openat", MethodType.methodType(int.class, int.class, byte[].class, int.class, int.class));
                fstatat = l.findStatic(d, "fstatat", MethodType.methodType(void.class, int.class, byte[].class, int.class, unix))
                        .asType(MethodType.methodType(void.class, int.class, byte[].class, int.class, Object.class));
                attrs = MethodHandles.privateLookupIn(unix, MethodHandles.lookup()).findConstructor(unix,
                        MethodType.methodType(void.class)).asType(MethodType.methodType(Object.class));
                fdopendir = l.findStatic(d, "fdopendir", MethodType.methodType(long.class, int.class));
                readdir = l.findStatic(d, "readdir", MethodType.methodType(byte[].class, long.class));
                closedir = l.findStatic(d, "closedir", MethodType.methodType(void.class, long.class));
            } catch (ReflectiveOperationException | RuntimeException e) {
                openat = null; // the walk goes by path
            }
        }
        boolean at = openat != null && fstatat != null && attrs != null && fdopendir != null
                && readdir != null && closedir != null;
        OPENAT = at ? openat : null;
        FSTATAT = fstatat;
        NEW_ATTRIBUTES = attrs;
        FDOPENDIR = fdopendir;
        READDIR = readdir;
        CLOSEDIR = closedir;
        boolean all = open != null && read != null && close != null && list != null && get != null && errno != null
                && address != null;
        OPEN = all ? open : null;
        READ = read;
        CLOSE = close;
        LIST = list;
        GET = get;
        ERRNO = errno;
        ADDRESS = address;
    }

    private final ByteBuffer names = ByteBuffer.allocateDirect(MAX);
    /** The JDK's stat object {@link #stat} fills (made on first use). */
    private Object attributes;
    private final long namesAt;
    /** Xattr values on their way into arrays. */
    private final ByteBuffer data;
    private final long dataAt;

    private HostFd() {
        data = ByteBuffer.allocateDirect(MAX);
        try {
            namesAt = (long) ADDRESS.invokeExact(names);
            dataAt = (long) ADDRESS.invokeExact(data);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** Whether this runtime lets kiln make the calls. */
    static boolean available() {
        return OPEN != null;
    }

    /** Buffers for the calling thread (names and xattr values; file content goes straight to its buffer). */
    static HostFd open() {
        if (!available()) {
            throw new UnsupportedOperationException("the JDK's Unix dispatcher is not open to kiln");
        }
        return new HostFd();
    }

    /**
     * A descriptor of the regular file or directory {@code p}, not following a symbolic link
     * (one put there since the walk's lstat fails rather than being read through), and not
     * blocking if a FIFO was.
     */
    int open(Path p, boolean directory) throws IOException {
        try {
            return (int) OPEN.invokeExact(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (directory ? O_DIRECTORY : 0), 0);
        } catch (Throwable e) {
            int errno = errno(e);
            if (errno == EACCES || errno == EPERM) {
                throw new AccessDeniedException(p.toString());
            }
            if (errno == ENOENT) {
                throw new NoSuchFileException(p.toString());
            }
            throw new IOException(p + ": cannot open (" + describe(e) + ")", e);
        }
    }

    /**
     * Whether a walk may go by directory descriptor ({@link #stat(int, byte[], Path)}, {@link
     * #openAt}, {@link #list}): each name is then looked up in its directory alone, where a
     * path is walked from the root component by component for every lstat and open (the
     * kernel's path lookup was two thirds of an lstat of a file five directories down).
     */
    static boolean relative() {
        return OPENAT != null && OPEN != null;
    }

    /**
     * {@code fstatat(dir, name, AT_SYMLINK_NOFOLLOW)}: what {@code lstat(p)} says, {@code p}
     * being the same file by path (for messages).
     */
    HostStat stat(int dir, byte[] name, Path p) throws IOException {
        try {
            // One stat object a thread, filled again by every call (the fields are copied out):
            // a new one each time was 136 bytes a name, the walk's largest allocation.
            Object a = attributes;
            if (a == null) {
                a = attributes = (Object) NEW_ATTRIBUTES.invokeExact();
            }
            FSTATAT.invokeExact(dir, name, AT_SYMLINK_NOFOLLOW, a);
            return HostStat.fromUnix(a);
        } catch (Throwable e) {
            throw failure(e, p, "cannot read attributes");
        }
    }

    /** As {@link #open(Path, boolean)}, the name looked up in the directory {@code dir}. */
    int openAt(int dir, byte[] name, Path p, boolean directory) throws IOException {
        try {
            return (int) OPENAT.invokeExact(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | (directory ? O_DIRECTORY : 0), 0);
        } catch (Throwable e) {
            throw failure(e, p, "cannot open");
        }
    }

    /**
     * The names in the directory open as {@code dir} (without "." and ".."), as kiln carries
     * names ({@link dev.kiln.ext4.Names}): the bytes the kernel gives, no path object per entry.
     * {@code dir} stays open, and may be listed again.
     */
    String[] list(int dir, Path p) throws IOException {
        long stream;
        try {
            // A descriptor of its own (closedir closes the one it is given), and an open file of
            // its own too: a dup would share the position, and the next listing find nothing.
            int copy = (int) OPENAT.invokeExact(dir, DOT, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0);
            try {
                stream = (long) FDOPENDIR.invokeExact(copy);
            } catch (Throwable e) {
                close(copy);
                throw e;
            }
        } catch (Throwable e) {
            throw failure(e, p, "cannot list directory");
        }
        String[] names = new String[16];
        int count = 0;
        try {
            for (byte[] b = (byte[]) READDIR.invokeExact(stream); b != null; b = (byte[]) READDIR.invokeExact(stream)) {
                if (b[0] == '.' && (b.length == 1 || (b.length == 2 && b[1] == '.'))) {
                    continue;
                }
                if (count == names.length) {
                    names = java.util.Arrays.copyOf(names, count * 2);
                }
                names[count++] = dev.kiln.ext4.Names.decode(b);
            }
        } catch (Throwable e) {
            throw failure(e, p, "cannot list directory");
        } finally {
            try {
                CLOSEDIR.invokeExact(stream);
            } catch (Throwable e) {
                // a directory read only: nothing to lose
            }
        }
        return java.util.Arrays.copyOf(names, count);
    }

    /** The exception {@code Files} would have thrown for {@code p}. */
    private static IOException failure(Throwable e, Path p, String what) {
        int errno = errno(e);
        if (errno == EACCES || errno == EPERM) {
            return new AccessDeniedException(p.toString());
        }
        if (errno == ENOENT) {
            return new NoSuchFileException(p.toString());
        }
        if (errno < 0) {
            return new IOException(p + ": " + what + " (" + describe(e) + ")", e);
        }
        return new java.nio.file.FileSystemException(p.toString(), null, describe(e)); // as the JDK words it
    }

    void close(int fd) {
        try {
            CLOSE.invokeExact(fd);
        } catch (Throwable e) {
            // a read-only descriptor: nothing was to be written back
        }
    }

    /**
     * Reads {@code size} bytes from the descriptor's start into the direct buffer {@code to} at
     * index {@code offset} (the kernel copies them there itself); false if the file ended first
     * (it shrank since the walk's lstat).
     */
    boolean readExactly(int fd, ByteBuffer to, int offset, int size) throws IOException {
        long at;
        try {
            at = (long) ADDRESS.invokeExact(to) + offset;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
        int done = 0;
        while (done < size) {
            int n;
            try {
                n = (int) READ.invokeExact(fd, at + done, size - done);
            } catch (Throwable e) {
                throw new IOException("read: " + describe(e), e);
            }
            if (n <= 0) {
                return false;
            }
            done += n;
        }
        return true;
    }

    /** The descriptor's xattrs, name to value, sorted by name; empty when it has none or its file system keeps none. */
    Map<String, byte[]> xattrs(int fd) throws IOException {
        int n;
        do {
            n = list(fd, 0); // the size first: the kernel allocates the buffer size it is given
            if (n > 0) {
                n = list(fd, Math.min(n, MAX));
            }
        } while (n == -ERANGE); // it grew between the two calls
        if (n == -ENOTSUP) {
            return Map.of();
        }
        if (n <= 0) {
            return Map.of();
        }
        Map<String, byte[]> out = new TreeMap<>();
        byte[] all = new byte[n];
        names.get(0, all, 0, n);
        int start = 0;
        for (int i = 0; i < n; i++) {
            if (all[i] != 0) {
                continue;
            }
            if (i > start) {
                byte[] key = java.util.Arrays.copyOfRange(all, start, i);
                byte[] value = value(fd, key);
                if (value != null) {
                    out.put(new String(key, StandardCharsets.UTF_8), value);
                }
            }
            start = i + 1;
        }
        return out;
    }

    /** flistxattr into the names buffer: the size, or -errno for ERANGE and ENOTSUP. */
    private int list(int fd, int size) throws IOException {
        try {
            return (int) LIST.invokeExact(fd, namesAt, size);
        } catch (Throwable e) {
            int errno = errno(e);
            if (errno == ERANGE || errno == ENOTSUP) {
                return -errno;
            }
            throw new IOException("flistxattr: " + describe(e), e);
        }
    }

    /** One value, or null when it went away since the list was made or this process may not read it (getfattr skips it too). */
    private byte[] value(int fd, byte[] name) throws IOException {
        while (true) {
            try {
                int size = (int) GET.invokeExact(fd, name, dataAt, 0);
                if (size > 0) {
                    size = (int) GET.invokeExact(fd, name, dataAt, Math.min(size, MAX));
                }
                byte[] v = new byte[size];
                data.get(0, v, 0, size);
                return v;
            } catch (Throwable e) {
                int errno = errno(e);
                if (errno == ERANGE) {
                    continue; // it grew between the two calls
                }
                if (errno == ENODATA || errno == EACCES || errno == EPERM || errno == ENOTSUP) {
                    return null;
                }
                throw new IOException("fgetxattr: " + describe(e), e);
            }
        }
    }

    private static int errno(Throwable e) {
        if (e instanceof Error err) {
            throw err;
        }
        if (e instanceof RuntimeException r) {
            throw r;
        }
        try {
            return (int) ERRNO.invokeExact(e);
        } catch (Throwable notUnix) {
            return -1;
        }
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        return m == null ? e.toString() : m;
    }
}
