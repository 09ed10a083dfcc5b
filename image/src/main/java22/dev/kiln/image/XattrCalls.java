package dev.kiln.image;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * A host file's xattrs, every namespace the process may read, asked of the kernel with
 * {@code llistxattr} and {@code lgetxattr} through the FFM API: the Java 22+ version of the class
 * (the multi-release jar's {@code META-INF/versions/22}), used by the release's runtime. The
 * calls do not follow symbolic links and need no read permission on the file, as
 * {@code getfattr -h} does; the kernel leaves {@code trusted.*} out of the list for a process
 * without root. Available only on Linux with native access enabled for kiln (the jar's
 * manifest says {@code Enable-Native-Access: ALL-UNNAMED}). {@link DirSource} makes them only
 * where getfattr is missing (or with {@code -Dkiln.xattrs=calls}); otherwise it reads files' and
 * directories' xattrs from their descriptors and links' from getfattr, as on Java 17.
 *
 * <p>One instance holds the buffers of one thread (the walk's): the list and a value are at most
 * 64 KiB each (the kernel's {@code XATTR_LIST_MAX} and {@code XATTR_SIZE_MAX}). Each call first
 * asks for the size (a buffer size of 0): the kernel allocates a buffer of the size it is given,
 * and 64 KiB for every file of a tree made listing three times slower than the walk's lstat.
 * Most files have no xattrs, and that one call answers.
 */
final class XattrCalls implements AutoCloseable {
    private static final int EPERM = 1;
    private static final int ENOENT = 2;
    private static final int EACCES = 13;
    private static final int ENOTDIR = 20;
    private static final int ENAMETOOLONG = 36;
    private static final int ENODATA = 61;
    private static final int ELOOP = 40;
    private static final int ERANGE = 34;
    private static final int ENOTSUP = 95;
    private static final int MAX = 65536;

    private static final MethodHandle LLISTXATTR;
    private static final MethodHandle LGETXATTR;

    static {
        MethodHandle list = Libc.downcall("llistxattr", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), true);
        MethodHandle get = Libc.downcall("lgetxattr", FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.ADDRESS,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG), true);
        LLISTXATTR = list != null && get != null ? list : null;
        LGETXATTR = list != null && get != null ? get : null;
    }

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment names = arena.allocate(MAX);
    private final MemorySegment value = arena.allocate(MAX);
    private final MemorySegment state = arena.allocate(Libc.STATE);
    private MemorySegment path = arena.allocate(4096);

    private XattrCalls() {}

    /** Whether this runtime can make the calls. */
    static boolean available() {
        return LLISTXATTR != null;
    }

    /** Buffers for the calls of the calling thread; only when {@link #available()}. */
    static XattrCalls open() {
        if (!available()) {
            throw new UnsupportedOperationException("llistxattr cannot be called here (not Linux, or native access off)");
        }
        return new XattrCalls();
    }

    /** Name to value, sorted by name; empty when the file has none or its file system keeps none. */
    Map<String, byte[]> read(Path file) throws IOException {
        byte[] p = dev.kiln.ext4.Names.encode(RawPaths.string(file.toAbsolutePath()));
        if (p.length + 1L > path.byteSize()) {
            path = arena.allocate(p.length + 1L);
        }
        MemorySegment.copy(p, 0, path, ValueLayout.JAVA_BYTE, 0, p.length);
        path.set(ValueLayout.JAVA_BYTE, p.length, (byte) 0);
        long n;
        do {
            n = call(LLISTXATTR, path, names, null, 0);
            if (n > 0) {
                n = call(LLISTXATTR, path, names, null, Math.min(n, MAX));
            }
        } while (n < 0 && errno() == ERANGE); // it grew between the two calls
        if (n < 0) {
            int e = errno();
            if (e == ENOTSUP) {
                return Map.of(); // the file system keeps no xattrs
            }
            throw new IOException("llistxattr: " + describe(e));
        }
        Map<String, byte[]> out = new TreeMap<>();
        long start = 0;
        for (long i = 0; i < n; i++) {
            if (names.get(ValueLayout.JAVA_BYTE, i) != 0) {
                continue;
            }
            if (i > start) {
                MemorySegment name = names.asSlice(start);
                long v;
                do {
                    v = call(LGETXATTR, path, name, value, 0);
                    if (v > 0) {
                        v = call(LGETXATTR, path, name, value, Math.min(v, MAX));
                    }
                } while (v < 0 && errno() == ERANGE);
                if (v >= 0) {
                    byte[] key = new byte[(int) (i - start)];
                    MemorySegment.copy(names, ValueLayout.JAVA_BYTE, start, key, 0, key.length);
                    byte[] bytes = new byte[(int) v];
                    MemorySegment.copy(value, ValueLayout.JAVA_BYTE, 0, bytes, 0, bytes.length);
                    out.put(new String(key, StandardCharsets.UTF_8), bytes);
                } else {
                    int e = errno();
                    // Removed since the list was made, or listed but not readable by this
                    // process: getfattr skips such a name too.
                    if (e != ENODATA && e != EACCES && e != EPERM && e != ENOTSUP) {
                        throw new IOException("lgetxattr: " + describe(e));
                    }
                }
            }
            start = i + 1;
        }
        return out;
    }

    /** One call with a buffer of {@code size} bytes (0: only the size is asked for). */
    private long call(MethodHandle h, MemorySegment path, MemorySegment a, MemorySegment b, long size) throws IOException {
        try {
            return h == LLISTXATTR ? (long) h.invokeExact(state, path, a, size)
                    : (long) h.invokeExact(state, path, a, b, size);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IOException(e);
        }
    }

    private int errno() {
        return Libc.errno(state);
    }

    private static String describe(int errno) {
        return switch (errno) {
            case ENOENT -> "no such file (it went away during the build)";
            case EACCES -> "permission denied";
            case ENOTDIR -> "a path component is not a directory";
            case ENAMETOOLONG -> "path too long";
            case ELOOP -> "too many symbolic links";
            default -> "errno " + errno;
        };
    }

    @Override
    public void close() {
        arena.close();
    }
}
