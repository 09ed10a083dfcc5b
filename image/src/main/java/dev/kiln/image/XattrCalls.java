package dev.kiln.image;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * A host file's xattrs, every namespace the process may read, asked of the kernel with
 * {@code llistxattr} and {@code lgetxattr}. Java 17 has no way to make those calls (the JDK reads
 * only {@code user.*}, and only by opening the file), so this version is never available:
 * {@link DirSource} reads a file's and a directory's xattrs from its descriptor ({@link HostFd})
 * and a link's from getfattr ({@link HostXattrs}). The Java 22+ version of this class (the multi-release jar's
 * {@code META-INF/versions/22}, used by the release's runtime) makes the calls through the FFM
 * API, on the walk's thread, without an external program.
 */
final class XattrCalls implements AutoCloseable {
    private XattrCalls() {}

    /** Whether this runtime can make the calls. */
    static boolean available() {
        return false;
    }

    /** Buffers for the calls of one thread; only when {@link #available()}. */
    static XattrCalls open() {
        throw new UnsupportedOperationException("llistxattr needs Java 22 or later");
    }

    /** Name to value, sorted by name; empty when the file has none or its file system keeps none. */
    Map<String, byte[]> read(Path file) throws IOException {
        throw new UnsupportedOperationException("llistxattr needs Java 22 or later");
    }

    @Override
    public void close() {}
}
