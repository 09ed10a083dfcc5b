package dev.kiln.ext4;

import java.time.Instant;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * What an inode records about an entry besides its content.
 *
 * @param mode permission bits including setuid (04000), setgid (02000) and sticky (01000);
 *     the file type bits are ignored and set from the entry's kind
 * @param uid 32-bit owner, unsigned
 * @param gid 32-bit group, unsigned
 * @param xattrs extended attributes by full name ({@code user.foo}, {@code security.capability})
 */
public record Metadata(int mode, long uid, long gid, Instant atime, Instant mtime, Instant ctime,
        Instant crtime, Map<String, byte[]> xattrs) {

    public Metadata {
        Objects.requireNonNull(atime, "atime");
        Objects.requireNonNull(mtime, "mtime");
        Objects.requireNonNull(ctime, "ctime");
        Objects.requireNonNull(crtime, "crtime");
        if (uid < 0 || uid > 0xFFFFFFFFL || gid < 0 || gid > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("uid/gid out of 32-bit range: " + uid + "/" + gid);
        }
        mode &= 07777;
        xattrs = xattrs == null || xattrs.isEmpty() ? Map.of()
                : Collections.unmodifiableMap(new TreeMap<>(xattrs));
    }

    /** Owner root, all four times equal. */
    public static Metadata of(int mode, Instant time) {
        return new Metadata(mode, 0, 0, time, time, time, time, Map.of());
    }

    public static Metadata of(int mode, long uid, long gid, Instant time) {
        return new Metadata(mode, uid, gid, time, time, time, time, Map.of());
    }

    public Metadata withXattrs(Map<String, byte[]> x) {
        return new Metadata(mode, uid, gid, atime, mtime, ctime, crtime, x);
    }

    public Metadata withMode(int m) {
        return new Metadata(m, uid, gid, atime, mtime, ctime, crtime, xattrs);
    }

    public Metadata withOwner(long u, long g) {
        return new Metadata(mode, u, g, atime, mtime, ctime, crtime, xattrs);
    }
}
