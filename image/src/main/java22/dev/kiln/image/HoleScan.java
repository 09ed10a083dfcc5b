package dev.kiln.image;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where a host file's data is, asked of the kernel with {@code lseek(SEEK_DATA)} and
 * {@code lseek(SEEK_HOLE)} through the FFM API: the Java 22+ version of the class (the
 * multi-release jar's {@code META-INF/versions/22}), used by the release's runtime. It is used
 * only on Linux and when native access is enabled for kiln (the jar's manifest says
 * {@code Enable-Native-Access: ALL-UNNAMED}); otherwise, and on any error, the answer is
 * "unknown" and the file is read whole, as the Java 17 version always does.
 */
final class HoleScan {
    private static final int O_RDONLY_CLOEXEC = 0x80000;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;

    private static final MethodHandle OPEN;
    private static final MethodHandle LSEEK;
    private static final MethodHandle CLOSE;

    static {
        MethodHandle open = Libc.downcall("open",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT), false);
        MethodHandle lseek = Libc.downcall("lseek",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
                true);
        MethodHandle close = Libc.downcall("close", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), false);
        boolean all = open != null && lseek != null && close != null;
        OPEN = all ? open : null;
        LSEEK = all ? lseek : null;
        CLOSE = all ? close : null;
    }

    private HoleScan() {}

    /** Whether this runtime can find holes without reading them. */
    static boolean available() {
        return OPEN != null;
    }

    /**
     * The file's data regions as {@code {offset, length}} pairs one after the other, or null
     * when the file has no holes below {@code size} or the kernel cannot tell: then read it whole.
     */
    static long[] dataRegions(Path file, long size) {
        if (OPEN == null || size <= 0) {
            return null;
        }
        byte[] name = dev.kiln.ext4.Names.encode(RawPaths.string(file.toAbsolutePath()));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment path = arena.allocate(name.length + 1L);
            MemorySegment.copy(name, 0, path, ValueLayout.JAVA_BYTE, 0, name.length);
            MemorySegment state = arena.allocate(Libc.STATE);
            int fd = (int) OPEN.invokeExact(path, O_RDONLY_CLOEXEC);
            if (fd < 0) {
                return null; // the read that follows reports why
            }
            try {
                long firstHole = (long) LSEEK.invokeExact(state, fd, 0L, SEEK_HOLE);
                if (firstHole < 0 || firstHole >= size) {
                    return null;
                }
                long[] out = new long[8];
                int n = 0;
                long at = 0;
                while (at < size) {
                    long data = (long) LSEEK.invokeExact(state, fd, at, SEEK_DATA);
                    if (data < 0) {
                        if (Libc.errno(state) == ENXIO) {
                            break; // only a hole from here to the end
                        }
                        return null;
                    }
                    if (data >= size) {
                        break;
                    }
                    long hole = (long) LSEEK.invokeExact(state, fd, data, SEEK_HOLE);
                    if (hole <= data) {
                        return null;
                    }
                    hole = Math.min(hole, size);
                    if (n == out.length) {
                        out = Arrays.copyOf(out, n * 2);
                    }
                    out[n++] = data;
                    out[n++] = hole - data;
                    at = hole;
                }
                return Arrays.copyOf(out, n);
            } finally {
                int ignored = (int) CLOSE.invokeExact(fd);
            }
        } catch (RuntimeException e) {
            return null;
        } catch (Throwable e) {
            if (e instanceof Error err) {
                throw err;
            }
            return null;
        }
    }
}
