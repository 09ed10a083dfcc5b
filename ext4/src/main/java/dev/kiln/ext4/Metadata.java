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

    /**
     * Validates owners (unsigned 32-bit), keeps the permission bits of the mode and sorts the
     * xattrs.
     *
     * @param mode permission bits (the type bits are dropped: the writer's method says the type)
     * @param uid owner, unsigned 32-bit
     * @param gid group, unsigned 32-bit
     * @param atime access time
     * @param mtime modification time
     * @param ctime change time
     * @param crtime creation time
     * @param xattrs extended attributes by full name, or null for none
     */
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

    /**
     * Owner root, all four times equal.
     *
     * @param mode permission bits
     * @param time atime, mtime, ctime and crtime
     * @return the metadata
     */
    public static Metadata of(int mode, Instant time) {
        return new Metadata(mode, 0, 0, time, time, time, time, Map.of());
    }

    /**
     * Given owner, all four times equal.
     *
     * @param mode permission bits
     * @param uid owner
     * @param gid group
     * @param time atime, mtime, ctime and crtime
     * @return the metadata
     */
    public static Metadata of(int mode, long uid, long gid, Instant time) {
        return new Metadata(mode, uid, gid, time, time, time, time, Map.of());
    }

    /**
     * A copy with other extended attributes.
     *
     * @param x xattrs by full name
     * @return the copy
     */
    public Metadata withXattrs(Map<String, byte[]> x) {
        return new Metadata(mode, uid, gid, atime, mtime, ctime, crtime, x);
    }

    /**
     * A copy with another mode.
     *
     * @param m permission bits
     * @return the copy
     */
    public Metadata withMode(int m) {
        return new Metadata(m, uid, gid, atime, mtime, ctime, crtime, xattrs);
    }

    /**
     * A copy with another owner.
     *
     * @param u uid
     * @param g gid
     * @return the copy
     */
    public Metadata withOwner(long u, long g) {
        return new Metadata(mode, u, g, atime, mtime, ctime, crtime, xattrs);
    }
}
