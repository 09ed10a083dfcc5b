package dev.kiln.image;

import java.nio.file.Path;

/**
 * Where a host file's data is, as its file system reports it ({@code SEEK_DATA} and
 * {@code SEEK_HOLE}), so the holes of a sparse file are neither read nor compared with zeros.
 * Java 17 has no way to ask: this version answers "unknown" and the file is read whole (its
 * zero blocks still become holes in the image). On Java 22 and later (the release's runtime)
 * the multi-release jar holds a version that asks the kernel through the FFM API
 * ({@code src/main/java22}).
 */
final class HoleScan {
    private HoleScan() {}

    /** Whether this runtime can find holes without reading them. */
    static boolean available() {
        return false;
    }

    /**
     * The file's data regions as {@code {offset, length}} pairs one after the other (the form
     * {@link dev.kiln.ext4.Ext4Writer#file(String, dev.kiln.ext4.Metadata, long, long[],
     * java.io.InputStream)} takes), or null when the file has no holes below
     * {@code size} or this runtime cannot tell: then read it whole.
     */
    static long[] dataRegions(Path file, long size) {
        return null;
    }
}
