package dev.kiln.ext4;

import java.util.BitSet;

/**
 * Where every fixed piece of metadata lives, computed as mke2fs computes it
 * (e2fsprogs {@code lib/ext2fs/initialize.c} and {@code alloc_tables.c}):
 *
 * <pre>
 * group 0:      [boot 1 KiB][superblock][GDT × descBlocks][reserved GDT × reservedGdtBlocks]
 *               [block bitmaps of flex group][inode bitmaps][inode tables] ... data
 * group 1,3^n,5^n,7^n (sparse_super): [backup superblock][GDT][reserved GDT] ... data
 * other groups: data only (their bitmaps and tables live in the first group of their flex group)
 * </pre>
 *
 * With flex_bg, the bitmaps of the groups of one flex group are packed together, then their
 * inode bitmaps, then their inode tables, starting at the first free block of the flex group.
 */
final class Layout {
    static final int DESC_SIZE = 64;
    static final int MAX_EXTENT_LEN = 32768;

    final int blockSize;
    final long blocksCount;
    final int firstDataBlock;
    final int blocksPerGroup;
    final int groupCount;
    final int descBlocks;
    final int reservedGdtBlocks;
    final int inodeSize;
    final int inodesPerGroup;
    final int inodeBlocksPerGroup;
    final long inodesCount;
    final int flexSize;
    final int logGroupsPerFlex;
    final long[] blockBitmap;
    final long[] inodeBitmap;
    final long[] inodeTable;
    /** Blocks taken by fixed metadata (superblocks, GDTs, reserved GDT, bitmaps, tables). */
    final BitSet fixed;

    Layout(int blockSize, long sizeBytes, long inodeRatio, long explicitInodes, int inodeSize,
            int flexSize, boolean resizeInode) {
        if (blockSize != 1024 && blockSize != 2048 && blockSize != 4096) {
            throw new IllegalArgumentException("block size must be 1024, 2048 or 4096: " + blockSize);
        }
        this.blockSize = blockSize;
        this.inodeSize = inodeSize;
        this.flexSize = flexSize;
        this.logGroupsPerFlex = Integer.numberOfTrailingZeros(flexSize);
        this.firstDataBlock = blockSize == 1024 ? 1 : 0;
        this.blocksPerGroup = blockSize * 8;
        long blocks = sizeBytes / blockSize;
        if (blocks > Integer.MAX_VALUE) {
            // The block bitmap is a java.util.BitSet indexed by int.
            throw new IllegalArgumentException("image of " + sizeBytes + " bytes has more than 2^31 blocks; "
                    + "kiln writes images of up to " + ((long) Integer.MAX_VALUE * blockSize >> 40) + " TiB at this block size");
        }
        int descPerBlock = blockSize / DESC_SIZE;
        int inodesPerBlock = blockSize / inodeSize;
        while (true) {
            if (blocks - firstDataBlock < 64) {
                throw new CapacityExceededException(
                        "image of " + sizeBytes + " bytes is too small for an ext4 file system", 0, 0, 0, 0);
            }
            long groups = ceilDiv(blocks - firstDataBlock, blocksPerGroup);
            int desc = (int) ceilDiv(groups, descPerBlock);
            int rsv = resizeInode ? reservedGdt(blocks, groups, desc) : 0;
            long inodes = explicitInodes > 0 ? explicitInodes : blocks * blockSize / inodeRatio;
            long ipg = ceilDiv(Math.max(inodes, 16), groups);
            long maxIpg = Math.min((long) blockSize * 8, 65536L - inodesPerBlock);
            if (ipg > maxIpg) {
                ipg = maxIpg;
            }
            long ibpg = ceilDiv(ipg * inodeSize, blockSize);
            ipg = ibpg * blockSize / inodeSize;
            ipg = Math.max(ipg, 8) & ~7L;
            ibpg = ceilDiv(ipg * inodeSize, blockSize);
            long rem = (blocks - firstDataBlock) % blocksPerGroup;
            long overhead = 2 + ibpg + (hasSuper((int) groups - 1) ? 1 + desc + rsv : 0);
            if (groups == 1 && rem != 0 && rem < overhead) {
                throw new CapacityExceededException("image of " + sizeBytes
                        + " bytes is too small for its metadata", overhead, 0, rem, 0);
            }
            if (rem != 0 && rem < overhead + 50 && groups > 1) {
                blocks -= rem;
                continue;
            }
            this.blocksCount = blocks;
            this.groupCount = (int) groups;
            this.descBlocks = desc;
            this.reservedGdtBlocks = rsv;
            this.inodesPerGroup = (int) ipg;
            this.inodeBlocksPerGroup = (int) ibpg;
            this.inodesCount = ipg * groups;
            break;
        }
        if (inodesCount > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("too many inodes: " + inodesCount);
        }
        fixed = new BitSet();
        blockBitmap = new long[groupCount];
        inodeBitmap = new long[groupCount];
        inodeTable = new long[groupCount];
        if (firstDataBlock == 1) {
            // Block 0 holds only the boot sector; it is not in any group, but it is not free either.
            fixed.set(0);
        }
        for (int g = 0; g < groupCount; g++) {
            if (hasSuper(g)) {
                long start = groupFirstBlock(g);
                fixed.set((int) start, (int) (start + 1 + descBlocks + reservedGdtBlocks));
            }
        }
        placeTables();
    }

    /** mke2fs's calc_reserved_gdt_blocks: room to grow to 1024× the size, or to 2^32 blocks. */
    private int reservedGdt(long blocks, long groups, int desc) {
        long maxBlocks = 0xFFFFFFFFL;
        if (blocks < maxBlocks / 1024) {
            maxBlocks = blocks * 1024;
        }
        long rsvGroups = ceilDiv(maxBlocks - firstDataBlock, blocksPerGroup);
        long rsvGdb = ceilDiv(rsvGroups, blockSize / DESC_SIZE) - desc;
        if (rsvGdb > blockSize / 4) {
            rsvGdb = blockSize / 4;
        }
        return (int) Math.max(0, rsvGdb);
    }

    private void placeTables() {
        for (int first = 0; first < groupCount; first += flexSize) {
            int n = Math.min(flexSize, groupCount - first);
            long cursor = groupFirstBlock(first);
            for (int i = 0; i < n; i++) {
                long b = freeRun(cursor, 1);
                blockBitmap[first + i] = b;
                fixed.set((int) b);
                cursor = b + 1;
            }
            cursor = blockBitmap[first] + n;
            for (int i = 0; i < n; i++) {
                long b = freeRun(cursor, 1);
                inodeBitmap[first + i] = b;
                fixed.set((int) b);
                cursor = b + 1;
            }
            cursor = inodeBitmap[first] + n;
            for (int i = 0; i < n; i++) {
                long b = freeRun(cursor, inodeBlocksPerGroup);
                inodeTable[first + i] = b;
                fixed.set((int) b, (int) (b + inodeBlocksPerGroup));
                cursor = b + inodeBlocksPerGroup;
            }
        }
    }

    private long freeRun(long from, int len) {
        long start = from;
        while (true) {
            start = fixed.nextClearBit((int) start);
            int nextUsed = fixed.nextSetBit((int) start);
            long end = nextUsed < 0 ? blocksCount : Math.min(nextUsed, blocksCount);
            if (end - start >= len) {
                return start;
            }
            if (end >= blocksCount) {
                throw new CapacityExceededException("image is too small for its inode tables",
                        len, 0, 0, 0);
            }
            start = end;
        }
    }

    long groupFirstBlock(int g) {
        return firstDataBlock + (long) g * blocksPerGroup;
    }

    /** Number of blocks in group g: the last group may be partial. */
    int groupBlocks(int g) {
        if (g < groupCount - 1) {
            return blocksPerGroup;
        }
        return (int) (blocksCount - groupFirstBlock(g));
    }

    int groupOf(long block) {
        return (int) ((block - firstDataBlock) / blocksPerGroup);
    }

    /** sparse_super: groups 0, 1 and powers of 3, 5 and 7 carry superblock backups. */
    static boolean hasSuper(int g) {
        if (g <= 1) {
            return true;
        }
        if ((g & 1) == 0) {
            return false;
        }
        return isPower(g, 3) || isPower(g, 5) || isPower(g, 7);
    }

    private static boolean isPower(int g, int base) {
        long p = base;
        while (p < g) {
            p *= base;
        }
        return p == g;
    }

    /** mke2fs's default journal size in blocks for a file system of this many blocks. */
    static int defaultJournalBlocks(long blocks) {
        if (blocks < 2048) {
            return 0;
        } else if (blocks < 32768) {
            return 1024;
        } else if (blocks < 256 * 1024) {
            return 4096;
        } else if (blocks < 512 * 1024) {
            return 8192;
        } else if (blocks < 4096 * 1024) {
            return 16384;
        } else if (blocks < 8192 * 1024) {
            return 32768;
        } else if (blocks < 16384 * 1024) {
            return 65536;
        } else if (blocks < 32768 * 1024) {
            return 131072;
        }
        return 262144;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}
