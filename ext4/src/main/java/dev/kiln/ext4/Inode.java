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
    /** EXT2_N_BLOCKS: i_block holds 15 32-bit words (60 bytes). */
    static final int N_BLOCKS = 15;
    /** EXT2_NDIR_BLOCKS: the first 12 of them are direct block pointers in a block-mapped inode. */
    static final int NDIR_BLOCKS = 12;

    final byte[] block = new byte[N_BLOCKS * 4];
    long fileAcl;
    /** Encoded in-inode xattr area (magic + entries + values), or null. */
    byte[] inlineXattrs;

    /**
     * Back to a new inode's state, for the writer's one reused inode (a new one per file was
     * 9 MB of garbage for 30,000 files). Every field is reset; InodeTest checks that by reflection.
     */
    Inode clear() {
        mode = 0;
        uid = gid = size = 0;
        atime = ctime = mtime = crtime = dtime = 0;
        atimeNs = ctimeNs = mtimeNs = crtimeNs = 0;
        links = 0;
        blocks512 = flags = fileAcl = generation = version = 0;
        extraIsize = 0;
        java.util.Arrays.fill(block, (byte) 0);
        inlineXattrs = null;
        raw = null;
        return this;
    }

    byte[] encode(int inodeSize, long ino, byte[] uuid, boolean csum) {
        byte[] b = new byte[inodeSize];
        encodeInto(b, 0, inodeSize, ino, uuid, csum);
        return b;
    }

    /** Encodes this inode into {@code b} at {@code o}, whose {@code inodeSize} bytes must be zero. */
    void encodeInto(byte[] b, int o, int inodeSize, long ino, byte[] uuid, boolean csum) {
        Le.put16(b, o + 0x00, mode);
        Le.put16(b, o + 0x02, (int) uid);
        Le.put32(b, o + 0x04, size);
        Le.put32(b, o + 0x08, atime);
        Le.put32(b, o + 0x0C, ctime);
        Le.put32(b, o + 0x10, mtime);
        Le.put16(b, o + 0x18, (int) gid);
        Le.put16(b, o + 0x1A, links);
        Le.put32(b, o + 0x1C, blocks512);
        Le.put32(b, o + 0x20, flags);
        System.arraycopy(block, 0, b, o + 0x28, 60);
        Le.put32(b, o + 0x68, fileAcl);
        Le.put32(b, o + 0x6C, size >>> 32);
        Le.put16(b, o + 0x74, (int) (blocks512 >>> 32));
        Le.put16(b, o + 0x76, (int) (fileAcl >>> 32));
        Le.put16(b, o + 0x78, (int) (uid >>> 16));
        Le.put16(b, o + 0x7A, (int) (gid >>> 16));
        if (inodeSize > GOOD_OLD_SIZE) {
            Le.put16(b, o + 0x80, EXTRA_ISIZE);
            Le.put32(b, o + 0x84, extra(ctime, ctimeNs));
            Le.put32(b, o + 0x88, extra(mtime, mtimeNs));
            Le.put32(b, o + 0x8C, extra(atime, atimeNs));
            Le.put32(b, o + 0x90, crtime);
            Le.put32(b, o + 0x94, extra(crtime, crtimeNs));
            if (inlineXattrs != null) {
                System.arraycopy(inlineXattrs, 0, b, o + GOOD_OLD_SIZE + EXTRA_ISIZE, inlineXattrs.length);
            }
        }
        if (csum) {
            long c = Crc32c.inodeSeeded(uuid, ino, 0).update(b, o, inodeSize).raw();
            Le.put16(b, o + 0x7C, (int) (c & 0xFFFF));
            if (inodeSize > GOOD_OLD_SIZE) {
                Le.put16(b, o + 0x82, (int) (c >>> 16));
            }
        }
    }

    long generation;
    int extraIsize;
    long version;
    /** Raw bytes as read, for xattr and checksum checks. */
    byte[] raw;

    /** Decodes an inode without validating its checksum (see {@link #checksumOk}). */
    static Inode decode(byte[] b, int off, int inodeSize) {
        Inode in = new Inode();
        in.raw = java.util.Arrays.copyOfRange(b, off, off + inodeSize);
        byte[] r = in.raw;
        in.mode = Le.get16(r, 0x00);
        in.uid = Le.get16(r, 0x02) | (long) Le.get16(r, 0x78) << 16;
        in.size = Le.get32(r, 0x04) | Le.get32(r, 0x6C) << 32;
        in.gid = Le.get16(r, 0x18) | (long) Le.get16(r, 0x7A) << 16;
        in.links = Le.get16(r, 0x1A);
        in.blocks512 = Le.get32(r, 0x1C) | (long) Le.get16(r, 0x74) << 32;
        in.flags = Le.get32(r, 0x20);
        System.arraycopy(r, 0x28, in.block, 0, 60);
        in.generation = Le.get32(r, 0x64);
        in.fileAcl = Le.get32(r, 0x68) | (long) Le.get16(r, 0x76) << 32;
        in.dtime = Le.get32(r, 0x14);
        long atime = Le.get32(r, 0x08);
        long ctime = Le.get32(r, 0x0C);
        long mtime = Le.get32(r, 0x10);
        long atimeX = 0;
        long ctimeX = 0;
        long mtimeX = 0;
        long crtime = 0;
        long crtimeX = 0;
        if (inodeSize > GOOD_OLD_SIZE) {
            in.extraIsize = Le.get16(r, 0x80);
            if (in.extraIsize > inodeSize - GOOD_OLD_SIZE || (in.extraIsize & 3) != 0) {
                in.extraIsize = 0;
            }
            int e = in.extraIsize;
            if (e >= 8) {
                ctimeX = Le.get32(r, 0x84);
            }
            if (e >= 12) {
                mtimeX = Le.get32(r, 0x88);
            }
            if (e >= 16) {
                atimeX = Le.get32(r, 0x8C);
            }
            if (e >= 24) {
                crtime = Le.get32(r, 0x90);
                crtimeX = Le.get32(r, 0x94);
            }
        }
        in.atime = seconds(atime, atimeX);
        in.atimeNs = nanos(atimeX);
        in.ctime = seconds(ctime, ctimeX);
        in.ctimeNs = nanos(ctimeX);
        in.mtime = seconds(mtime, mtimeX);
        in.mtimeNs = nanos(mtimeX);
        in.crtime = inodeSize > GOOD_OLD_SIZE && in.extraIsize >= 24 ? seconds(crtime, crtimeX) : 0;
        in.crtimeNs = nanos(crtimeX);
        return in;
    }

    long dtime;

    long dtimeOrZero() {
        return dtime;
    }

    /** Whether the stored checksum matches (always true for an all-zero inode). */
    boolean checksumOk(long ino, byte[] uuid) {
        return checksumOk(Crc32c.inodeSeeded(uuid, ino, generation));
    }

    /** Whether the stored checksum matches, given the inode's seeded checksum state. */
    boolean checksumOk(Crc32c seeded) {
        byte[] r = raw.clone();
        boolean zero = true;
        for (byte x : r) {
            if (x != 0) {
                zero = false;
                break;
            }
        }
        if (zero) {
            return true;
        }
        long stored = Le.get16(r, 0x7C);
        r[0x7C] = 0;
        r[0x7D] = 0;
        boolean hi = r.length > GOOD_OLD_SIZE && extraIsize >= 4;
        if (hi) {
            stored |= (long) Le.get16(r, 0x82) << 16;
            r[0x82] = 0;
            r[0x83] = 0;
        }
        long c = seeded.update(r, 0, r.length).raw();
        return hi ? c == stored : (c & 0xFFFF) == stored;
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
