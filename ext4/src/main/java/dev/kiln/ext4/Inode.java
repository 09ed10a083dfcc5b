package dev.kiln.ext4;

/**
 * An on-disk inode (256 bytes by default; {@code Documentation/filesystems/ext4/inodes.rst}).
 *
 * <pre>
 * 0x00 mode u16 · uid_lo u16 · size_lo u32 · atime · ctime · mtime · dtime (u32 each)
 * 0x18 gid_lo u16 · links u16 · blocks_lo u32 (512-byte units) · flags u32 · version u32
 * 0x28 i_block[15] (60 bytes: extent tree root, block map, fast symlink, or device number)
 * 0x64 generation · file_acl_lo · size_hi · faddr
 * 0x74 blocks_hi u16 · file_acl_hi u16 · uid_hi u16 · gid_hi u16 · checksum_lo u16 · pad u16
 * 0x80 extra_isize u16 · checksum_hi u16 · ctime/mtime/atime_extra · crtime · crtime_extra
 *      · version_hi · projid; then in-inode extended attributes up to the inode size
 * </pre>
 *
 * Times: seconds in the base field; the extra field holds two epoch bits (extending seconds
 * to 34 bits) and nanoseconds shifted left by two.
 */
final class Inode {
    static final int S_IFIFO = 0010000;
    static final int S_IFCHR = 0020000;
    static final int S_IFDIR = 0040000;
    static final int S_IFBLK = 0060000;
    static final int S_IFREG = 0100000;
    static final int S_IFLNK = 0120000;
    static final int S_IFSOCK = 0140000;
    static final int S_IFMT = 0170000;

    static final int FLAG_INDEX = 0x1000;
    static final int FLAG_HUGE_FILE = 0x40000;
    static final int FLAG_EXTENTS = 0x80000;
    static final int FLAG_INLINE_DATA = 0x10000000;

    static final int EXTRA_ISIZE = 32;
    static final int GOOD_OLD_SIZE = 128;

    int mode;
    long uid;
    long gid;
    long size;
    long atime;
    int atimeNs;
    long ctime;
    int ctimeNs;
    long mtime;
    int mtimeNs;
    long crtime;
    int crtimeNs;
    int links;
    long blocks512;
    long flags;
    final byte[] block = new byte[60];
    long fileAcl;
    /** Encoded in-inode xattr area (magic + entries + values), or null. */
    byte[] inlineXattrs;

    byte[] encode(int inodeSize, long ino, byte[] uuid, boolean csum) {
        byte[] b = new byte[inodeSize];
        Le.put16(b, 0x00, mode);
        Le.put16(b, 0x02, (int) uid);
        Le.put32(b, 0x04, size);
        Le.put32(b, 0x08, atime);
        Le.put32(b, 0x0C, ctime);
        Le.put32(b, 0x10, mtime);
        Le.put16(b, 0x18, (int) gid);
        Le.put16(b, 0x1A, links);
        Le.put32(b, 0x1C, blocks512);
        Le.put32(b, 0x20, flags);
        System.arraycopy(block, 0, b, 0x28, 60);
        Le.put32(b, 0x68, fileAcl);
        Le.put32(b, 0x6C, size >>> 32);
        Le.put16(b, 0x74, (int) (blocks512 >>> 32));
        Le.put16(b, 0x76, (int) (fileAcl >>> 32));
        Le.put16(b, 0x78, (int) (uid >>> 16));
        Le.put16(b, 0x7A, (int) (gid >>> 16));
        if (inodeSize > GOOD_OLD_SIZE) {
            Le.put16(b, 0x80, EXTRA_ISIZE);
            Le.put32(b, 0x84, extra(ctime, ctimeNs));
            Le.put32(b, 0x88, extra(mtime, mtimeNs));
            Le.put32(b, 0x8C, extra(atime, atimeNs));
            Le.put32(b, 0x90, crtime);
            Le.put32(b, 0x94, extra(crtime, crtimeNs));
            if (inlineXattrs != null) {
                System.arraycopy(inlineXattrs, 0, b, GOOD_OLD_SIZE + EXTRA_ISIZE, inlineXattrs.length);
            }
        }
        if (csum) {
            long c = Crc32c.inodeSeeded(uuid, ino, 0).update(b, 0, inodeSize).raw();
            Le.put16(b, 0x7C, (int) (c & 0xFFFF));
            if (inodeSize > GOOD_OLD_SIZE) {
                Le.put16(b, 0x82, (int) (c >>> 16));
            }
        }
        return b;
    }

    /** The extra time field: epoch bits from the seconds beyond 32 bits, then nanoseconds. */
    static long extra(long seconds, int nanos) {
        long epoch = ((seconds - (int) seconds) >> 32) & 3;
        return epoch | ((long) nanos << 2);
    }

    /** Seconds from a base field and its extra field. */
    static long seconds(long base, long extra) {
        return (long) (int) base + ((extra & 3) << 32);
    }

    static int nanos(long extra) {
        return (int) (extra >>> 2);
    }
}
