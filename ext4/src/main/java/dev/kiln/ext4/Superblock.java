package dev.kiln.ext4;

/**
 * The ext4 superblock: 1024 bytes at byte offset 1024 of the image, with backups at the start of
 * groups 1, 3^n, 5^n, 7^n. Layout: kernel {@code Documentation/filesystems/ext4/super.rst}.
 * Only the fields an image writer sets are named here; every other byte is written as zero.
 */
public final class Superblock {
    Superblock() {}

    static final int SIZE = 1024;
    static final int OFFSET = 1024;
    static final int MAGIC = 0xEF53;
    static final int CHECKSUM_OFFSET = 0x3FC;

    long inodesCount;
    long blocksCount;
    long reservedBlocksCount;
    long freeBlocksCount;
    long freeInodesCount;
    long firstDataBlock;
    int logBlockSize;
    long blocksPerGroup;
    long inodesPerGroup;
    long mtime;
    long wtime;
    int maxMountCount = 0xFFFF;
    int state = 1;
    int errors = 1;
    long lastCheck;
    long firstIno = 11;
    int inodeSize = 256;
    int blockGroupNr;
    long featureCompat;
    long featureIncompat;
    long featureRoCompat;
    byte[] uuid = new byte[16];
    byte[] volumeName = new byte[16];
    int reservedGdtBlocks;
    long journalInum;
    byte[] hashSeed = new byte[16];
    int defHashVersion = 1;
    int jnlBackupType;
    int descSize;
    long defaultMountOpts;
    long firstMetaBg;
    long mkfsTime;
    long[] jnlBlocks = new long[17];
    int minExtraIsize;
    int wantExtraIsize;
    long flags;
    int logGroupsPerFlex;
    int checksumType;
    long kbytesWritten;
    long overheadClusters;
    long checksumSeed;
    long checksum;
    /** s_rev_level: 0 is the original format (fixed 128-byte inodes, first inode 11). */
    long revLevel = 1;
    long usrQuotaInum;
    long grpQuotaInum;
    long prjQuotaInum;
    long orphanFileInum;
    int logClusterSize;
    /** s_clusters_per_group (s_frags_per_group before bigalloc). */
    long clustersPerGroup;

    byte[] encode() {
        byte[] b = new byte[SIZE];
        Le.put32(b, 0x00, inodesCount);
        Le.put32(b, 0x04, blocksCount);
        Le.put32(b, 0x08, reservedBlocksCount);
        Le.put32(b, 0x0C, freeBlocksCount);
        Le.put32(b, 0x10, freeInodesCount);
        Le.put32(b, 0x14, firstDataBlock);
        Le.put32(b, 0x18, logBlockSize);
        Le.put32(b, 0x1C, logBlockSize);
        Le.put32(b, 0x20, blocksPerGroup);
        Le.put32(b, 0x24, blocksPerGroup);
        Le.put32(b, 0x28, inodesPerGroup);
        Le.put32(b, 0x2C, mtime);
        Le.put32(b, 0x30, wtime);
        Le.put16(b, 0x34, 0);
        Le.put16(b, 0x36, maxMountCount);
        Le.put16(b, 0x38, MAGIC);
        Le.put16(b, 0x3A, state);
        Le.put16(b, 0x3C, errors);
        Le.put16(b, 0x3E, 0);
        Le.put32(b, 0x40, lastCheck);
        Le.put32(b, 0x44, 0);
        Le.put32(b, 0x48, 0); // creator OS: Linux
        Le.put32(b, 0x4C, 1); // dynamic revision
        Le.put16(b, 0x50, 0);
        Le.put16(b, 0x52, 0);
        Le.put32(b, 0x54, firstIno);
        Le.put16(b, 0x58, inodeSize);
        Le.put16(b, 0x5A, blockGroupNr);
        Le.put32(b, 0x5C, featureCompat);
        Le.put32(b, 0x60, featureIncompat);
        Le.put32(b, 0x64, featureRoCompat);
        System.arraycopy(uuid, 0, b, 0x68, 16);
        System.arraycopy(volumeName, 0, b, 0x78, 16);
        Le.put16(b, 0xCE, reservedGdtBlocks);
        Le.put32(b, 0xE0, journalInum);
        System.arraycopy(hashSeed, 0, b, 0xEC, 16);
        Le.put8(b, 0xFC, defHashVersion);
        Le.put8(b, 0xFD, jnlBackupType);
        Le.put16(b, 0xFE, descSize);
        Le.put32(b, 0x100, defaultMountOpts);
        Le.put32(b, 0x104, firstMetaBg);
        Le.put32(b, 0x108, mkfsTime);
        for (int i = 0; i < 17; i++) {
            Le.put32(b, 0x10C + 4 * i, jnlBlocks[i]);
        }
        Le.put32(b, 0x150, blocksCount >>> 32);
        Le.put32(b, 0x154, reservedBlocksCount >>> 32);
        Le.put32(b, 0x158, freeBlocksCount >>> 32);
        Le.put16(b, 0x15C, minExtraIsize);
        Le.put16(b, 0x15E, wantExtraIsize);
        Le.put32(b, 0x160, flags);
        Le.put8(b, 0x174, logGroupsPerFlex);
        Le.put8(b, 0x175, checksumType);
        Le.put64(b, 0x178, kbytesWritten);
        Le.put32(b, 0x248, overheadClusters);
        Le.put32(b, 0x270, checksumSeed);
        // Times past 2038 keep their high byte here.
        Le.put8(b, 0x274, (int) (wtime >>> 32));
        Le.put8(b, 0x275, (int) (mtime >>> 32));
        Le.put8(b, 0x276, (int) (mkfsTime >>> 32));
        Le.put8(b, 0x277, (int) (lastCheck >>> 32));
        if ((featureRoCompat & Features.RO_COMPAT_METADATA_CSUM) != 0) {
            checksum = new Crc32c().update(b, 0, CHECKSUM_OFFSET).raw();
        }
        Le.put32(b, CHECKSUM_OFFSET, checksum);
        return b;
    }

    /** Decodes and validates magic and (when metadata_csum is on) the checksum. */
    static Superblock decode(byte[] b, int off) {
        int magic = Le.get16(b, off + 0x38);
        if (magic != MAGIC) {
            throw new CorruptImageException(String.format(
                    "bad superblock magic: actual 0x%04X vs expected 0x%04X (offset=%d)", magic, MAGIC, off));
        }
        Superblock s = new Superblock();
        s.inodesCount = Le.get32(b, off);
        s.blocksCount = Le.get32(b, off + 0x04) | Le.get32(b, off + 0x150) << 32;
        s.reservedBlocksCount = Le.get32(b, off + 0x08) | Le.get32(b, off + 0x154) << 32;
        s.freeBlocksCount = Le.get32(b, off + 0x0C) | Le.get32(b, off + 0x158) << 32;
        s.freeInodesCount = Le.get32(b, off + 0x10);
        s.firstDataBlock = Le.get32(b, off + 0x14);
        s.logBlockSize = (int) Le.get32(b, off + 0x18);
        s.blocksPerGroup = Le.get32(b, off + 0x20);
        s.inodesPerGroup = Le.get32(b, off + 0x28);
        s.mtime = Le.get32(b, off + 0x2C);
        s.wtime = Le.get32(b, off + 0x30);
        s.maxMountCount = Le.get16(b, off + 0x36);
        s.state = Le.get16(b, off + 0x3A);
        s.errors = Le.get16(b, off + 0x3C);
        s.lastCheck = Le.get32(b, off + 0x40);
        s.revLevel = Le.get32(b, off + 0x4C);
        s.logClusterSize = (int) Le.get32(b, off + 0x1C);
        s.clustersPerGroup = Le.get32(b, off + 0x24);
        if (s.revLevel == 0) {
            // EXT2_GOOD_OLD_REV: these fields are not there; the values are fixed.
            s.firstIno = 11;
            s.inodeSize = Inode.GOOD_OLD_SIZE;
        } else {
            s.firstIno = Le.get32(b, off + 0x54);
            s.inodeSize = Le.get16(b, off + 0x58);
        }
        s.blockGroupNr = Le.get16(b, off + 0x5A);
        s.featureCompat = Le.get32(b, off + 0x5C);
        s.featureIncompat = Le.get32(b, off + 0x60);
        s.featureRoCompat = Le.get32(b, off + 0x64);
        System.arraycopy(b, off + 0x68, s.uuid, 0, 16);
        System.arraycopy(b, off + 0x78, s.volumeName, 0, 16);
        s.reservedGdtBlocks = Le.get16(b, off + 0xCE);
        s.journalInum = Le.get32(b, off + 0xE0);
        System.arraycopy(b, off + 0xEC, s.hashSeed, 0, 16);
        s.defHashVersion = Le.get8(b, off + 0xFC);
        s.jnlBackupType = Le.get8(b, off + 0xFD);
        s.descSize = Le.get16(b, off + 0xFE);
        s.defaultMountOpts = Le.get32(b, off + 0x100);
        s.firstMetaBg = Le.get32(b, off + 0x104);
        s.mkfsTime = Le.get32(b, off + 0x108);
        for (int i = 0; i < 17; i++) {
            s.jnlBlocks[i] = Le.get32(b, off + 0x10C + 4 * i);
        }
        s.minExtraIsize = Le.get16(b, off + 0x15C);
        s.wantExtraIsize = Le.get16(b, off + 0x15E);
        s.flags = Le.get32(b, off + 0x160);
        s.logGroupsPerFlex = Le.get8(b, off + 0x174);
        s.checksumType = Le.get8(b, off + 0x175);
        s.kbytesWritten = Le.get64(b, off + 0x178);
        s.overheadClusters = Le.get32(b, off + 0x248);
        s.checksumSeed = Le.get32(b, off + 0x270);
        s.usrQuotaInum = Le.get32(b, off + 0x240);
        s.grpQuotaInum = Le.get32(b, off + 0x244);
        s.prjQuotaInum = Le.get32(b, off + 0x26C);
        s.orphanFileInum = Le.get32(b, off + 0x280);
        s.checksum = Le.get32(b, off + CHECKSUM_OFFSET);
        if ((s.featureRoCompat & Features.RO_COMPAT_METADATA_CSUM) != 0) {
            long expected = new Crc32c().update(b, off, CHECKSUM_OFFSET).raw();
            if (expected != s.checksum) {
                throw new CorruptImageException(String.format(
                        "bad superblock checksum: actual 0x%08X vs expected 0x%08X (offset=%d)",
                        s.checksum, expected, off));
            }
        }
        return s;
    }

    /**
     * s_blocks_count: blocks in the file system.
     *
     * @return a block count
     */
    public long blocksCount() {
        return blocksCount;
    }

    /**
     * s_free_blocks_count: free blocks as recorded.
     *
     * @return a block count
     */
    public long freeBlocksCount() {
        return freeBlocksCount;
    }

    /**
     * s_inodes_count: inodes in the file system.
     *
     * @return an inode count
     */
    public long inodesCount() {
        return inodesCount;
    }

    /**
     * s_free_inodes_count: free inodes as recorded.
     *
     * @return an inode count
     */
    public long freeInodesCount() {
        return freeInodesCount;
    }

    /**
     * When the file system was made (s_mkfs_time; kiln writes the source date epoch).
     *
     * @return seconds since the epoch
     */
    public long mkfsTime() {
        return mkfsTime;
    }

    /**
     * The block size.
     *
     * @return bytes per block
     */
    public int blockSize() {
        return 1024 << logBlockSize;
    }

    /**
     * s_uuid: the file system's UUID.
     *
     * @return a copy of its 16 bytes
     */
    public byte[] uuid() {
        return uuid.clone();
    }

    /**
     * The feature flags, by their mke2fs names.
     *
     * @return names such as {@code has_journal}
     */
    public java.util.List<String> featureNames() {
        return Features.names(featureCompat, featureIncompat, featureRoCompat);
    }
}
