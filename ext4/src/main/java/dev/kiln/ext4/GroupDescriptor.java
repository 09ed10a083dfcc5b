package dev.kiln.ext4;

/**
 * A 64-byte block group descriptor (64bit feature), layout in
 * {@code Documentation/filesystems/ext4/group_descr.rst}. With metadata_csum, bg_checksum is the
 * low 16 bits of crc32c(fs seed, le32 group, descriptor with the checksum field zeroed).
 */
final class GroupDescriptor {
    static final int SIZE = 64;
    static final int FLAG_INODE_UNINIT = 0x1;
    static final int FLAG_BLOCK_UNINIT = 0x2;
    static final int FLAG_ITABLE_ZEROED = 0x4;

    long blockBitmap;
    long inodeBitmap;
    long inodeTable;
    long freeBlocks;
    long freeInodes;
    long usedDirs;
    int flags;
    long blockBitmapCsum;
    long inodeBitmapCsum;
    long itableUnused;

    void encode(byte[] b, int off, int group, byte[] uuid, boolean csum) {
        Le.put32(b, off, blockBitmap);
        Le.put32(b, off + 0x04, inodeBitmap);
        Le.put32(b, off + 0x08, inodeTable);
        Le.put16(b, off + 0x0C, (int) freeBlocks);
        Le.put16(b, off + 0x0E, (int) freeInodes);
        Le.put16(b, off + 0x10, (int) usedDirs);
        Le.put16(b, off + 0x12, flags);
        Le.put32(b, off + 0x14, 0);
        Le.put16(b, off + 0x18, (int) blockBitmapCsum);
        Le.put16(b, off + 0x1A, (int) inodeBitmapCsum);
        Le.put16(b, off + 0x1C, (int) itableUnused);
        Le.put16(b, off + 0x1E, 0);
        Le.put32(b, off + 0x20, blockBitmap >>> 32);
        Le.put32(b, off + 0x24, inodeBitmap >>> 32);
        Le.put32(b, off + 0x28, inodeTable >>> 32);
        Le.put16(b, off + 0x2C, (int) (freeBlocks >>> 16));
        Le.put16(b, off + 0x2E, (int) (freeInodes >>> 16));
        Le.put16(b, off + 0x30, (int) (usedDirs >>> 16));
        Le.put16(b, off + 0x32, (int) (itableUnused >>> 16));
        Le.put32(b, off + 0x34, 0);
        Le.put16(b, off + 0x38, (int) (blockBitmapCsum >>> 16));
        Le.put16(b, off + 0x3A, (int) (inodeBitmapCsum >>> 16));
        Le.put32(b, off + 0x3C, 0);
        if (csum) {
            long c = Crc32c.seeded(uuid).updateLe32(group).update(b, off, SIZE).raw();
            Le.put16(b, off + 0x1E, (int) (c & 0xFFFF));
        }
    }

    static GroupDescriptor decode(byte[] b, int off, int descSize) {
        GroupDescriptor d = new GroupDescriptor();
        boolean wide = descSize >= 64;
        d.blockBitmap = Le.get32(b, off) | (wide ? Le.get32(b, off + 0x20) << 32 : 0);
        d.inodeBitmap = Le.get32(b, off + 0x04) | (wide ? Le.get32(b, off + 0x24) << 32 : 0);
        d.inodeTable = Le.get32(b, off + 0x08) | (wide ? Le.get32(b, off + 0x28) << 32 : 0);
        d.freeBlocks = Le.get16(b, off + 0x0C) | (wide ? (long) Le.get16(b, off + 0x2C) << 16 : 0);
        d.freeInodes = Le.get16(b, off + 0x0E) | (wide ? (long) Le.get16(b, off + 0x2E) << 16 : 0);
        d.usedDirs = Le.get16(b, off + 0x10) | (wide ? (long) Le.get16(b, off + 0x30) << 16 : 0);
        d.flags = Le.get16(b, off + 0x12);
        d.blockBitmapCsum = Le.get16(b, off + 0x18) | (wide ? (long) Le.get16(b, off + 0x38) << 16 : 0);
        d.inodeBitmapCsum = Le.get16(b, off + 0x1A) | (wide ? (long) Le.get16(b, off + 0x3A) << 16 : 0);
        d.itableUnused = Le.get16(b, off + 0x1C) | (wide ? (long) Le.get16(b, off + 0x32) << 16 : 0);
        return d;
    }
}
