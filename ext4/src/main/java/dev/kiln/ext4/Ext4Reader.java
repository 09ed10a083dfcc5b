package dev.kiln.ext4;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Reads ext2, ext3 and ext4 images without mounting them: 1/2/4 KiB (up to 64 KiB) blocks,
 * 32- and 64-bit descriptors, extent-mapped and block-mapped files, inline data, linear and
 * htree directories, in-inode and block xattrs.
 *
 * <p>Images are treated as hostile: every block number, count and depth is checked before it
 * is used, path resolution has a symlink limit, and problems are {@link CorruptImageException}s
 * that name the inode and what was wrong.
 */
public final class Ext4Reader implements Closeable {
    /** Incompatible features this reader understands; any other one makes it refuse the image. */
    static final long KNOWN_INCOMPAT = Features.INCOMPAT_FILETYPE | Features.INCOMPAT_RECOVER
            | Features.INCOMPAT_META_BG | Features.INCOMPAT_EXTENTS | Features.INCOMPAT_64BIT
            | Features.INCOMPAT_MMP | Features.INCOMPAT_FLEX_BG | Features.INCOMPAT_CSUM_SEED
            | Features.INCOMPAT_LARGEDIR | Features.INCOMPAT_INLINE_DATA | Features.INCOMPAT_CASEFOLD;
    private static final int MAX_SYMLINKS = 40;

    private final FileChannel ch;
    private final Path path;
    final Superblock sb;
    final int blockSize;
    final long blocksCount;
    final int inodeSize;
    final long inodesPerGroup;
    final int groupCount;
    final int descSize;
    final boolean csum;
    final byte[] csumUuid;
    /** s_checksum_seed with metadata_csum_seed, else -1: the seed is then derived from the UUID. */
    final long csumSeed;
    final GroupDescriptor[] groups;
    final long[] gdtBlocks;
    /** The block of the backup superblock in use because the primary is damaged, or -1. */
    private long backupBlock = -1;
    /** Why the primary superblock was not used, when a backup was. */
    private String primaryProblem;

    /** Where e2fsck looks for the first backup superblock, by block size: group 1's first block. */
    private static final int[] BACKUP_BLOCK_SIZES = {1024, 2048, 4096, 8192, 16384, 32768, 65536};

    private Ext4Reader(FileChannel ch, Path path) throws IOException {
        this.ch = ch;
        this.path = path;
        byte[] sbBytes = new byte[Superblock.SIZE];
        if (ch.size() < Superblock.OFFSET + Superblock.SIZE) {
            throw new CorruptImageException(path + ": too small to be an ext2/3/4 image (" + ch.size() + " bytes)");
        }
        readFully(ByteBuffer.wrap(sbBytes), Superblock.OFFSET);
        Superblock primary;
        try {
            primary = Superblock.decode(sbBytes, 0);
        } catch (CorruptImageException e) {
            primary = null;
            primaryProblem = e.getMessage();
        }
        try {
            if (primary != null) {
                checkGeometry(primary);
            }
        } catch (CorruptImageException e) {
            primary = null;
            primaryProblem = e.getMessage();
        }
        if (primary == null) {
            // As e2fsck does: the first backup, in group 1, for each block size it could be.
            for (int bs : BACKUP_BLOCK_SIZES) {
                long blk = (long) bs * 8 + (bs == 1024 ? 1 : 0);
                if ((blk + 1) * bs > ch.size()) {
                    continue;
                }
                byte[] b = new byte[Superblock.SIZE];
                readFully(ByteBuffer.wrap(b), blk * bs);
                try {
                    Superblock backup = Superblock.decode(b, 0);
                    if ((1024 << backup.logBlockSize) != bs) {
                        continue;
                    }
                    checkGeometry(backup);
                    primary = backup;
                    backupBlock = blk;
                    break;
                } catch (CorruptImageException e) {
                    // not here
                }
            }
            if (primary == null) {
                boolean magic = Le.get16(sbBytes, 0x38) == Superblock.MAGIC;
                throw new CorruptImageException(path + (magic ? ": damaged superblock (" + primaryProblem + ") and no "
                        + "usable backup superblock" : ": not an ext2/3/4 image (no superblock magic at byte 1080, nor a "
                        + "backup superblock)"));
            }
        }
        sb = primary;
        long unknown = sb.featureIncompat & ~KNOWN_INCOMPAT;
        if (unknown != 0) {
            throw new CorruptImageException(path + ": unsupported incompatible feature(s) "
                    + String.join(",", Features.names(0, unknown, 0)) + "; kiln cannot read this image");
        }
        blockSize = 1024 << sb.logBlockSize;
        blocksCount = (sb.featureIncompat & Features.INCOMPAT_64BIT) != 0 ? sb.blocksCount : sb.blocksCount & 0xFFFFFFFFL;
        inodeSize = sb.inodeSize;
        inodesPerGroup = sb.inodesPerGroup;
        if (ch.size() < blocksCount * blockSize) {
            throw new CorruptImageException(path + ": the image is truncated: " + ch.size() + " bytes, but the superblock "
                    + "says " + blocksCount * blockSize + " (" + (blocksCount * blockSize - ch.size()) + " bytes missing)");
        }
        long gc = Layout.ceilDiv(blocksCount - sb.firstDataBlock, sb.blocksPerGroup);
        if (gc > 1 << 24 || gc * inodesPerGroup != sb.inodesCount && gc * inodesPerGroup < sb.inodesCount) {
            throw new CorruptImageException(path + ": inconsistent group count " + gc + " for " + sb.inodesCount
                    + " inodes");
        }
        groupCount = (int) gc;
        descSize = (sb.featureIncompat & Features.INCOMPAT_64BIT) != 0 ? Math.max(32, sb.descSize) : 32;
        if (descSize > 1024 || Integer.bitCount(descSize) != 1) {
            throw new CorruptImageException(path + ": bad group descriptor size " + descSize);
        }
        csum = (sb.featureRoCompat & Features.RO_COMPAT_METADATA_CSUM) != 0;
        csumUuid = sb.uuid.clone();
        csumSeed = (sb.featureIncompat & Features.INCOMPAT_CSUM_SEED) != 0 ? sb.checksumSeed : -1;
        groups = new GroupDescriptor[groupCount];
        int perBlock = blockSize / descSize;
        int descBlocks = (int) Layout.ceilDiv(groupCount, perBlock);
        gdtBlocks = new long[descBlocks];
        for (int i = 0; i < descBlocks; i++) {
            long blk;
            if ((sb.featureIncompat & Features.INCOMPAT_META_BG) != 0 && i >= firstMetaBg()) {
                long g = (long) i * perBlock;
                blk = sb.firstDataBlock + g * sb.blocksPerGroup + (hasSuperBackup((int) g) ? 1 : 0);
            } else {
                blk = (backupBlock >= 0 ? backupBlock : superblockBlock(0)) + 1 + i;
            }
            gdtBlocks[i] = blk;
            byte[] b = readBlock(blk);
            for (int k = 0; k < perBlock && i * perBlock + k < groupCount; k++) {
                groups[i * perBlock + k] = GroupDescriptor.decode(b, k * descSize, descSize);
            }
        }
    }

    /** The superblock fields a reader relies on, checked before anything else is read. */
    private static void checkGeometry(Superblock s) {
        if (s.logBlockSize < 0 || s.logBlockSize > 6) {
            throw new CorruptImageException("bad block size exponent " + s.logBlockSize);
        }
        int bs = 1024 << s.logBlockSize;
        // bigalloc: blocks are allocated in clusters of 2^s_log_cluster_size blocks; a group has
        // a bitmap bit per cluster, so it spans up to 8 * block size clusters.
        long ratio = clusterRatio(s);
        if (ratio < 1 || ratio > 1 << 16) {
            throw new CorruptImageException("bad cluster size exponent " + s.logClusterSize);
        }
        if ((s.featureRoCompat & Features.RO_COMPAT_BIGALLOC) != 0
                && (s.clustersPerGroup == 0 || s.clustersPerGroup * ratio != s.blocksPerGroup)) {
            throw new CorruptImageException("bad clusters per group " + s.clustersPerGroup + " for " + s.blocksPerGroup
                    + " blocks per group");
        }
        if (s.revLevel > 0 && s.inodeSize == 0) {
            throw new CorruptImageException("the superblock's inode size is 0 (revision " + s.revLevel + " needs one)");
        }
        if (s.inodeSize < Inode.GOOD_OLD_SIZE || s.inodeSize > bs || Integer.bitCount(s.inodeSize) != 1) {
            throw new CorruptImageException("bad inode size " + s.inodeSize);
        }
        if (s.blocksPerGroup == 0 || s.blocksPerGroup > 8L * bs * ratio || s.inodesPerGroup == 0
                || s.inodesPerGroup > 8L * bs) {
            throw new CorruptImageException("bad blocks or inodes per group (" + s.blocksPerGroup + ", " + s.inodesPerGroup
                    + ")");
        }
        long blocks = (s.featureIncompat & Features.INCOMPAT_64BIT) != 0 ? s.blocksCount : s.blocksCount & 0xFFFFFFFFL;
        if (blocks <= s.firstDataBlock) {
            throw new CorruptImageException("bad block count " + blocks);
        }
    }

    /**
     * The block holding group {@code g}'s superblock (or backup): the primary is at byte 1024,
     * which is block 1 with 1 KiB blocks even when s_first_data_block is 0 (bigalloc).
     */
    long superblockBlock(int g) {
        return g == 0 ? Superblock.OFFSET / blockSize : sb.firstDataBlock + (long) g * sb.blocksPerGroup;
    }

    /** Blocks per allocation cluster: 2^(s_log_cluster_size - s_log_block_size) with bigalloc, else 1. */
    static long clusterRatio(Superblock s) {
        if ((s.featureRoCompat & Features.RO_COMPAT_BIGALLOC) == 0) {
            return 1;
        }
        int shift = s.logClusterSize - s.logBlockSize;
        return shift < 0 || shift > 16 ? -1 : 1L << shift;
    }

    /** Blocks per allocation cluster (1 without bigalloc). */
    long clusterRatio() {
        return clusterRatio(sb);
    }

    /**
     * The block of the backup superblock that was read because the primary is damaged, or -1.
     *
     * @return the block of the backup superblock in use, or -1 when the primary is sound
     */
    public long backupSuperblock() {
        return backupBlock;
    }

    /**
     * Why the primary superblock could not be used, when {@link #backupSuperblock()} is not -1.
     *
     * @return why the primary superblock was not used, or null
     */
    public String primarySuperblockProblem() {
        return primaryProblem;
    }

    private long firstMetaBg() {
        return sb.firstMetaBg;
    }

    boolean hasSuperBackup(int g) {
        if ((sb.featureRoCompat & Features.RO_COMPAT_SPARSE_SUPER) == 0) {
            return true;
        }
        return Layout.hasSuper(g);
    }

    /** A checksum chained from the file system's seed. */
    Crc32c seed() {
        return csumSeed >= 0 ? Crc32c.fromSeed(csumSeed) : Crc32c.seeded(csumUuid);
    }

    /** A checksum chained from an inode's seed. */
    Crc32c inodeSeed(long ino, long generation) {
        return seed().updateLe32(ino).updateLe32(generation);
    }

    /**
     * Opens an image read-only and validates its superblock and group descriptors.
     *
     * @param image an ext2, ext3 or ext4 image file
     * @return a reader; close it when done
     * @throws IOException when the file cannot be read
     * @throws CorruptImageException when it is not an ext2/3/4 image or is damaged beyond reading
     */
    public static Ext4Reader open(Path image) throws IOException {
        FileChannel ch = FileChannel.open(image, StandardOpenOption.READ);
        try {
            return new Ext4Reader(ch, image);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        ch.close();
    }

    /**
     * The superblock in use (the primary, or the backup named by {@link #backupSuperblock()}).
     *
     * @return its fields
     */
    public Superblock superblock() {
        return sb;
    }

    /**
     * The block size in bytes.
     *
     * @return 1024 to 65536
     */
    public int blockSize() {
        return blockSize;
    }

    /**
     * The free blocks the superblock records.
     *
     * @return a block count
     */
    public long freeBlocksCount() {
        return sb.freeBlocksCount;
    }

    /**
     * The number of blocks in the file system.
     *
     * @return a block count
     */
    public long blocksCount() {
        return blocksCount;
    }

    /**
     * The number of block groups.
     *
     * @return a group count
     */
    public int groupCount() {
        return groupCount;
    }

    /**
     * The volume label.
     *
     * @return the label, empty when none
     */
    public String label() {
        int n = 0;
        while (n < 16 && sb.volumeName[n] != 0) {
            n++;
        }
        return new String(sb.volumeName, 0, n, StandardCharsets.UTF_8);
    }

    /**
     * The feature flags set in the superblock, by their mke2fs names.
     *
     * @return names such as {@code has_journal} or {@code metadata_csum}
     */
    public List<String> features() {
        return sb.featureNames();
    }

    /**
     * The inode holding the journal.
     *
     * @return an inode number, 0 when the file system has no internal journal
     */
    public long journalInode() {
        return (sb.featureCompat & Features.COMPAT_HAS_JOURNAL) != 0 ? sb.journalInum : 0;
    }

    // ------------------------------------------------------------------ low level

    private void readFully(ByteBuffer buf, long pos) throws IOException {
        long p = pos;
        while (buf.hasRemaining()) {
            int r = ch.read(buf, p);
            if (r < 0) {
                throw new CorruptImageException(path + ": image ends at byte " + p + " (truncated?)");
            }
            p += r;
        }
    }

    byte[] readBlock(long blk) throws IOException {
        checkBlock(blk, "block");
        byte[] b = new byte[blockSize];
        long pos = blk * blockSize;
        if (pos + blockSize > ch.size()) {
            // A sparse image shorter than its block count: the missing tail reads as zeros.
            if (pos < ch.size()) {
                ByteBuffer bb = ByteBuffer.wrap(b, 0, (int) (ch.size() - pos));
                readFully(bb, pos);
            }
            return b;
        }
        readFully(ByteBuffer.wrap(b), pos);
        return b;
    }

    void readBlocks(long blk, byte[] dst, int off, int count) throws IOException {
        checkBlock(blk, "block");
        checkBlock(blk + count - 1, "block");
        long pos = blk * blockSize;
        int len = count * blockSize;
        long avail = Math.max(0, Math.min(len, ch.size() - pos));
        Arrays.fill(dst, off + (int) avail, off + len, (byte) 0);
        if (avail > 0) {
            readFully(ByteBuffer.wrap(dst, off, (int) avail), pos);
        }
    }

    void checkBlock(long blk, String what) {
        if (blk < 0 || blk >= blocksCount) {
            throw new CorruptImageException(path + ": " + what + " number " + blk + " is outside the file system (0.."
                    + (blocksCount - 1) + ")");
        }
    }

    /**
     * The byte offset of an inode in the image (what {@code debugfs imap} reports).
     *
     * @param ino an inode number
     * @return the inode's byte offset in the image
     */
    public long inodeOffset(long ino) {
        if (ino < 1 || ino > sb.inodesCount) {
            throw new IllegalArgumentException("inode number " + ino + " out of range");
        }
        int g = (int) ((ino - 1) / inodesPerGroup);
        return groups[g].inodeTable * blockSize + ((ino - 1) % inodesPerGroup) * inodeSize;
    }

    Inode readInode(long ino) throws IOException {
        if (ino < 1 || ino > sb.inodesCount) {
            throw new CorruptImageException(path + ": inode number " + ino + " out of range (1.." + sb.inodesCount + ")");
        }
        int g = (int) ((ino - 1) / inodesPerGroup);
        long index = (ino - 1) % inodesPerGroup;
        long table = groups[g].inodeTable;
        long byteOff = index * inodeSize;
        long blk = table + byteOff / blockSize;
        checkBlock(blk, "inode table block of inode " + ino);
        byte[] b = new byte[inodeSize];
        long pos = blk * blockSize + byteOff % blockSize;
        if (pos + inodeSize <= ch.size()) {
            readFully(ByteBuffer.wrap(b), pos);
        }
        return Inode.decode(b, 0, inodeSize);
    }

    // ------------------------------------------------------------------ stat

    /**
     * An inode's attributes.
     *
     * @param ino an inode number
     * @return its attributes
     * @throws IOException on a read error or a damaged inode
     */
    public FileStat stat(long ino) throws IOException {
        return toStat(ino, readInode(ino));
    }

    FileStat toStat(long ino, Inode in) {
        FileType t = FileType.ofMode(in.mode);
        int major = 0;
        int minor = 0;
        if (t == FileType.CHAR_DEVICE || t == FileType.BLOCK_DEVICE) {
            long old = Le.get32(in.block, 0);
            if (old != 0) {
                major = (int) ((old >>> 8) & 0xFF);
                minor = (int) (old & 0xFF);
            } else {
                long nw = Le.get32(in.block, 4);
                major = (int) ((nw & 0xFFF00) >>> 8);
                minor = (int) ((nw & 0xFF) | ((nw >>> 12) & 0xFFF00));
            }
        }
        return new FileStat(ino, t, in.mode & 07777, in.uid, in.gid, in.size, in.links,
                Instant.ofEpochSecond(in.atime, in.atimeNs), Instant.ofEpochSecond(in.mtime, in.mtimeNs),
                Instant.ofEpochSecond(in.ctime, in.ctimeNs), Instant.ofEpochSecond(in.crtime, in.crtimeNs),
                major, minor, in.flags, in.blocks512);
    }

    /**
     * Stats a path. Symlinks along the way are followed; the last one too, unless
     * {@link java.nio.file.LinkOption#NOFOLLOW_LINKS} is given (as {@link java.nio.file.Files#readAttributes}).
     *
     * @param path an absolute path inside the image
     * @param options {@code NOFOLLOW_LINKS} to stat a symlink itself
     * @return the file's attributes
     * @throws java.nio.file.NoSuchFileException if the path does not exist
     * @throws IOException on a read error or a damaged image
     */
    public FileStat stat(String path, java.nio.file.LinkOption... options) throws IOException {
        return stat(resolve(path, !List.of(options).contains(java.nio.file.LinkOption.NOFOLLOW_LINKS)));
    }

    /**
     * True when the path exists in the image (a dangling last symlink counts as existing).
     *
     * @param path an absolute path inside the image
     * @return whether the path names an inode
     * @throws IOException on a read error or a damaged image
     */
    public boolean exists(String path) throws IOException {
        return lookupPath(path, false) != 0;
    }

    /**
     * A regular file's whole content (symlinks followed).
     *
     * @param path an absolute path inside the image
     * @return the file's bytes
     * @throws java.nio.file.NoSuchFileException if the path does not exist
     * @throws IOException when the path is not a regular file, on a read error or a damaged image
     */
    public byte[] readAllBytes(String path) throws IOException {
        try (InputStream in = open(path)) {
            return in.readAllBytes();
        }
    }

    /**
     * Stats a path; symlinks in the middle are followed, the last one only when asked.
     *
     * @param path an absolute path inside the image
     * @param followLast whether a symlink as the last component is followed
     * @return the file's attributes
     * @throws IOException on a missing path, a read error or a damaged image
     * @deprecated use {@link #stat(String, java.nio.file.LinkOption...)}
     */
    @Deprecated
    public FileStat stat(String path, boolean followLast) throws IOException {
        return stat(resolve(path, followLast));
    }

    // ------------------------------------------------------------------ paths

    /**
     * Resolves a path to an inode number inside the image root; throws if it does not exist.
     *
     * @param p an absolute path inside the image
     * @param followLast whether a symlink as the last component is followed
     * @return the inode number
     * @throws IOException when the path does not exist ({@link java.nio.file.NoSuchFileException}), on a read error or damage
     */
    public long resolve(String p, boolean followLast) throws IOException {
        long ino = lookupPath(p, followLast);
        if (ino == 0) {
            throw new java.nio.file.NoSuchFileException(p, null, "no such file or directory in the image");
        }
        return ino;
    }

    /**
     * Like {@link #resolve} but returns 0 when the path does not exist.
     *
     * @param p an absolute path inside the image
     * @param followLast whether a symlink as the last component is followed
     * @return the inode number, 0 when the path does not exist
     * @throws IOException on a read error or damage
     */
    public long lookupPath(String p, boolean followLast) throws IOException {
        List<String> todo = new ArrayList<>();
        for (String s : p.split("/")) {
            if (!s.isEmpty() && !s.equals(".")) {
                todo.add(s);
            }
        }
        List<Long> stack = new ArrayList<>();
        stack.add((long) Ext4Writer.ROOT_INO);
        int symlinks = 0;
        int i = 0;
        while (i < todo.size()) {
            String name = todo.get(i);
            long dir = stack.get(stack.size() - 1);
            if (name.equals("..")) {
                if (stack.size() > 1) {
                    stack.remove(stack.size() - 1);
                }
                i++;
                continue;
            }
            Inode din = readInode(dir);
            if (FileType.ofMode(din.mode) != FileType.DIRECTORY) {
                return 0;
            }
            long child = find(dir, din, name);
            if (child == 0) {
                return 0;
            }
            boolean last = i == todo.size() - 1;
            Inode cin = readInode(child);
            if (FileType.ofMode(cin.mode) == FileType.SYMLINK && (!last || followLast)) {
                if (++symlinks > MAX_SYMLINKS) {
                    throw new CorruptImageException(path + ": too many levels of symbolic links resolving " + p);
                }
                String target = readLink(child, cin);
                List<String> rest = new ArrayList<>();
                for (String s : target.split("/")) {
                    if (!s.isEmpty() && !s.equals(".")) {
                        rest.add(s);
                    }
                }
                rest.addAll(todo.subList(i + 1, todo.size()));
                todo = rest;
                i = 0;
                if (target.startsWith("/")) {
                    stack.clear();
                    stack.add((long) Ext4Writer.ROOT_INO);
                }
                continue;
            }
            stack.add(child);
            i++;
        }
        return stack.get(stack.size() - 1);
    }

    /**
     * Name lookups by directory, for the directories looked up most recently: a path lookup
     * otherwise parses the whole directory again for every path that passes through it (the
     * boot checks resolve a dozen paths through {@code /}; a root with 30,000 names made each
     * one a full parse). The image is read-only, so an index never goes stale.
     */
    private final Map<Long, Map<String, Long>> lookupIndex = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Map<String, Long>> eldest) {
            return size() > 64;
        }
    };

    private long find(long dir, Inode din, String name) throws IOException {
        long indexed = findIndexed(dir, din, Names.encode(name));
        if (indexed != UNINDEXED) {
            return indexed;
        }
        synchronized (lookupIndex) {
            Map<String, Long> names = lookupIndex.get(dir);
            if (names == null) {
                List<DirEntry> entries = list(dir, din);
                names = new HashMap<>(entries.size() * 2);
                for (DirEntry e : entries) {
                    names.putIfAbsent(e.name(), e.ino()); // the first of duplicate names, as a linear search finds
                }
                lookupIndex.put(dir, names);
            }
            Long ino = names.get(name);
            return ino == null ? 0 : ino;
        }
    }

    /** {@link #findIndexed}: the directory's hash index cannot answer; read the directory whole. */
    static final long UNINDEXED = -1;
    /** EXT4_ENCRYPT_FL and EXT4_CASEFOLD_FL: names hashed as kiln does not hash them. */
    private static final int HASHED_OTHERWISE = 0x800 | 0x40000000;

    /**
     * A name looked up as the kernel looks it up in a hash-indexed directory: the name's hash
     * chooses one path down the index, and only the leaf block it ends at is read (and the next
     * ones while a run of names with the same hash continues there). A directory of 30,000
     * names answered a boot check's dozen look-ups by parsing all 30,000 entries once (~20 ms
     * of a build in a cold JVM); this reads two or three blocks a look-up. The inode number, 0
     * when the name is not there, or {@link #UNINDEXED} when the directory has no index or
     * anything in it is not as the format says (the whole directory is then read, which
     * reports damage as it did).
     */
    long findIndexed(long dir, Inode din, byte[] name) throws IOException {
        if ((din.flags & Inode.FLAG_INDEX) == 0 || (din.flags & (Inode.FLAG_INLINE_DATA | HASHED_OTHERWISE)) != 0
                || (sb.featureCompat & Features.COMPAT_DIR_INDEX) == 0) {
            return UNINDEXED;
        }
        BlockMap map = blockMap(dir, din);
        long blocks = Layout.ceilDiv(din.size, blockSize);
        long pb = blocks > 1 ? map.physical(0) : 0;
        if (pb <= 0) {
            return UNINDEXED;
        }
        byte[] node = readBlock(pb);
        int version = Le.get8(node, 28);
        int levels = Le.get8(node, 30);
        int maxLevels = (sb.featureIncompat & Features.INCOMPAT_LARGEDIR) != 0 ? 3 : 2;
        if (Le.get8(node, 29) != 8 || levels >= maxLevels || version > DxHash.TEA) {
            return UNINDEXED;
        }
        long hash = DxHash.hash(name, 0, name.length, version + ((sb.flags & 0x2) != 0 ? 3 : 0),
                DxHash.seed(sb.hashSeed))[0];
        // The path down: each level's node, where its entries start, how many, and the one taken.
        byte[][] nodes = new byte[levels + 1][];
        int[] at = new int[levels + 1];
        int[] count = new int[levels + 1];
        int[] taken = new int[levels + 1];
        nodes[0] = node;
        at[0] = Directory.DX_ROOT_ENTRIES;
        for (int depth = 0; ; depth++) {
            byte[] n = nodes[depth];
            if (!counted(nodes, at, count, depth)) {
                return UNINDEXED;
            }
            // The last entry whose hash is at most the name's (the first entry's is 0, unstored).
            int lo = 1;
            int hi = count[depth] - 1;
            int i = 0;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                if (Le.get32(n, at[depth] + 8 * mid) > hash) {
                    hi = mid - 1;
                } else {
                    i = mid;
                    lo = mid + 1;
                }
            }
            taken[depth] = i;
            if (depth == levels) {
                break;
            }
            if (!descend(map, blocks, nodes, at, taken, depth)) {
                return UNINDEXED;
            }
        }
        while (true) {
            long lblk = Le.get32(nodes[levels], at[levels] + 8 * taken[levels] + 4);
            pb = lblk < blocks ? map.physical(lblk) : 0;
            if (pb <= 0) {
                return UNINDEXED;
            }
            long ino = findInLeaf(readBlock(pb), name);
            if (ino != 0) {
                return ino;
            }
            // Names of one hash may go on in the next leaf, whose entry then has the hash with the
            // low (collision) bit set; that entry may be under the next index node (as the
            // kernel's htree_next_block finds it: up to the lowest level with an entry left).
            int up = levels;
            while (up >= 0 && taken[up] + 1 == count[up]) {
                up--;
            }
            if (up < 0) {
                return 0;
            }
            long next = Le.get32(nodes[up], at[up] + 8 * (taken[up] + 1));
            if ((next & 1) == 0 || (next & ~1L) != hash) {
                return 0;
            }
            taken[up]++;
            for (int depth = up; depth < levels; depth++) {
                if (!descend(map, blocks, nodes, at, taken, depth) || !counted(nodes, at, count, depth + 1)) {
                    return UNINDEXED;
                }
                taken[depth + 1] = 0;
            }
        }
    }

    /** Reads level {@code depth}'s entry count into {@code count}; false if its count or limit cannot be. */
    private boolean counted(byte[][] nodes, int[] at, int[] count, int depth) {
        int limit = Le.get16(nodes[depth], at[depth]);
        count[depth] = Le.get16(nodes[depth], at[depth] + 2);
        return count[depth] > 0 && count[depth] <= limit && at[depth] + 8 * limit <= blockSize;
    }

    /** Reads the index node that the taken entry of level {@code depth} names, as level {@code depth + 1}; false if it is not one. */
    private boolean descend(BlockMap map, long blocks, byte[][] nodes, int[] at, int[] taken, int depth)
            throws IOException {
        long lblk = Le.get32(nodes[depth], at[depth] + 8 * taken[depth] + 4);
        long pb = lblk < blocks ? map.physical(lblk) : 0;
        if (pb <= 0) {
            return false;
        }
        byte[] n = readBlock(pb);
        if (Le.get32(n, 0) != 0 || Le.get16(n, 4) != blockSize) {
            return false; // a fake empty entry spanning the block starts every index node
        }
        nodes[depth + 1] = n;
        at[depth + 1] = Directory.DX_NODE_ENTRIES;
        return true;
    }

    /** The inode of {@code name} in an htree leaf block, 0 when it is not there; {@link #UNINDEXED} when the block is damaged. */
    private long findInLeaf(byte[] b, byte[] name) {
        Directory.Cursor c = new Directory.Cursor(b, 0, blockSize - (csum ? Directory.TAIL_SIZE : 0), blockSize,
                (sb.featureIncompat & Features.INCOMPAT_FILETYPE) != 0);
        while (c.next()) {
            if (!c.wellFormed() || c.inode > sb.inodesCount) {
                return UNINDEXED;
            }
            if (c.live() && c.nameLen == name.length
                    && Arrays.equals(b, c.nameOffset(), c.nameOffset() + c.nameLen, name, 0, name.length)) {
                return c.inode;
            }
        }
        return c.truncated() ? UNINDEXED : 0;
    }

    // ------------------------------------------------------------------ directories

    /** One name in a directory. */
    public record DirEntry(String name, long ino, FileType type) {}

    /**
     * The entries of a directory, without "." and "..", in on-disk order.
     *
     * @param ino a directory's inode number
     * @return its entries without . and ..
     * @throws IOException on a read error or damage
     */
    public List<DirEntry> list(long ino) throws IOException {
        return list(ino, readInode(ino));
    }

    /**
     * Lists a directory by path (symlinks followed).
     *
     * @param p an absolute path inside the image
     * @return its entries without . and ..
     * @throws IOException when the path does not exist, is not a directory, or on damage
     */
    public List<DirEntry> list(String p) throws IOException {
        return list(resolve(p, true));
    }

    List<DirEntry> list(long ino, Inode in) throws IOException {
        if (FileType.ofMode(in.mode) != FileType.DIRECTORY) {
            throw new CorruptImageException(path + ": inode " + ino + " is not a directory");
        }
        List<DirEntry> out = new ArrayList<>();
        boolean ftype = (sb.featureIncompat & Features.INCOMPAT_FILETYPE) != 0;
        if ((in.flags & Inode.FLAG_INLINE_DATA) != 0) {
            byte[] data = inlineData(ino, in);
            // The first four bytes are the parent's inode number; entries follow.
            parseEntries(ino, data, 4, Math.min(60, data.length), ftype, out, 0);
            if (data.length > 60) {
                parseEntries(ino, data, 60, data.length, ftype, out, 60);
            }
            return out;
        }
        if (in.size > (long) Integer.MAX_VALUE * 16) {
            throw new CorruptImageException(path + ": directory inode " + ino + " has absurd size " + in.size);
        }
        BlockMap map = blockMap(ino, in);
        long blocks = Layout.ceilDiv(in.size, blockSize);
        for (long lb = 0; lb < blocks; lb++) {
            long pb = map.physical(lb);
            if (pb <= 0) {
                continue;
            }
            byte[] b = readBlock(pb);
            parseEntries(ino, b, 0, blockSize, ftype, out, lb * blockSize);
        }
        return out;
    }

    private void parseEntries(long ino, byte[] b, int start, int end, boolean ftype, List<DirEntry> out, long base)
            throws IOException {
        Directory.Cursor c = new Directory.Cursor(b, start, end, blockSize, ftype);
        while (c.next()) {
            if (!c.wellFormed()) {
                throw new CorruptImageException(String.format("%s: directory inode %d: bad entry at offset %d "
                        + "(rec_len %d, name_len %d)", path, ino, base + c.offset, c.recLen, c.nameLen));
            }
            if (!c.live()) {
                continue;
            }
            String name = c.name();
            if (name.equals(".") || name.equals("..")) {
                continue;
            }
            if (c.inode > sb.inodesCount) {
                throw new CorruptImageException(String.format("%s: directory inode %d: entry '%s' points to "
                        + "inode %d beyond the inode count", path, ino, Names.printable(name), c.inode));
            }
            FileType t = c.type != 0 ? FileType.ofDirEntry(c.type) : FileType.ofMode(readInode(c.inode).mode);
            out.add(new DirEntry(name, c.inode, t));
        }
    }

    // ------------------------------------------------------------------ content

    /** Maps logical to physical blocks; 0 means a hole or an unwritten extent. */
    interface BlockMap {
        long physical(long logical) throws IOException;

        /** Blocks that hold the map itself (extent tree nodes, indirect blocks). */
        default List<Long> metadataBlocks() {
            return List.of();
        }
    }

    BlockMap blockMap(long ino, Inode in) throws IOException {
        if ((in.flags & Inode.FLAG_EXTENTS) != 0) {
            return ExtentMap.load(this, ino, in);
        }
        return new IndirectMap(this, ino, in);
    }

    /**
     * The content of a regular file (or a slow symlink) as a stream.
     *
     * @param ino a regular file's inode number
     * @return a stream of its content; holes read as zeros
     * @throws IOException on a read error or damage
     */
    public InputStream open(long ino) throws IOException {
        Inode in = readInode(ino);
        FileType t = FileType.ofMode(in.mode);
        if (t != FileType.REGULAR && t != FileType.SYMLINK) {
            throw new CorruptImageException(path + ": inode " + ino + " is a " + t + ", not a file");
        }
        if ((in.flags & Inode.FLAG_INLINE_DATA) != 0) {
            byte[] data = inlineData(ino, in);
            if (data.length < in.size) {
                throw new CorruptImageException(path + ": inode " + ino + ": inline data holds " + data.length
                        + " bytes but i_size is " + in.size + "; the file is damaged");
            }
            return new java.io.ByteArrayInputStream(data, 0, (int) in.size);
        }
        return new ContentStream(blockMap(ino, in), in.size);
    }

    /**
     * Where a regular file's data is: the byte ranges its written extents cover, as {@code
     * {offset, length}} pairs in order (the form {@link Ext4Writer#file(String, Metadata, long,
     * long[], InputStream)} takes); everything else reads as zeros. Null when the file is not
     * extent-mapped (inline data, block maps): read it whole.
     *
     * @param ino a regular file's inode number
     * @return the data regions, or null
     * @throws IOException on a read error or damage
     */
    public long[] dataRegions(long ino) throws IOException {
        Inode in = readInode(ino);
        if ((in.flags & Inode.FLAG_INLINE_DATA) != 0 || (in.flags & Inode.FLAG_EXTENTS) == 0) {
            return null;
        }
        return ExtentMap.load(this, ino, in).dataRegions(blockSize, in.size);
    }

    /**
     * Opens a regular file by path (symlinks followed).
     *
     * @param p an absolute path inside the image
     * @return a stream of its content; holes read as zeros
     * @throws IOException when the path does not exist, is not a regular file, or on damage
     */
    public InputStream open(String p) throws IOException {
        return open(resolve(p, true));
    }

    private final class ContentStream extends InputStream {
        private final BlockMap map;
        private final long size;
        private long pos;
        private final byte[] buf;
        private long bufBlock = -1;

        ContentStream(BlockMap map, long size) {
            this.map = map;
            this.size = size;
            this.buf = new byte[blockSize];
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (pos >= size) {
                return -1;
            }
            if (len == 0) {
                return 0;
            }
            long lb = pos / blockSize;
            int inBlock = (int) (pos % blockSize);
            int n = (int) Math.min(len, size - pos);
            // Read whole aligned blocks directly when possible.
            if (inBlock == 0 && n >= blockSize) {
                long pb = map.physical(lb);
                int count = 1;
                int maxCount = n / blockSize;
                if (pb > 0) {
                    while (count < maxCount && map.physical(lb + count) == pb + count) {
                        count++;
                    }
                    readBlocks(pb, b, off, count);
                } else {
                    while (count < maxCount && map.physical(lb + count) <= 0) {
                        count++;
                    }
                    Arrays.fill(b, off, off + count * blockSize, (byte) 0);
                }
                pos += (long) count * blockSize;
                return count * blockSize;
            }
            if (bufBlock != lb) {
                long pb = map.physical(lb);
                if (pb > 0) {
                    readBlocks(pb, buf, 0, 1);
                } else {
                    Arrays.fill(buf, (byte) 0);
                }
                bufBlock = lb;
            }
            int k = Math.min(n, blockSize - inBlock);
            System.arraycopy(buf, inBlock, b, off, k);
            pos += k;
            return k;
        }

        @Override
        public long skip(long n) {
            long k = Math.max(0, Math.min(n, size - pos));
            pos += k;
            return k;
        }
    }

    /**
     * The target of a symbolic link.
     *
     * @param ino a symlink's inode number
     * @return its target
     * @throws IOException on a read error or damage
     */
    public String readLink(long ino) throws IOException {
        return readLink(ino, readInode(ino));
    }

    String readLink(long ino, Inode in) throws IOException {
        if (FileType.ofMode(in.mode) != FileType.SYMLINK) {
            throw new CorruptImageException(path + ": inode " + ino + " is not a symlink");
        }
        if (in.size > 65536) {
            throw new CorruptImageException(path + ": symlink inode " + ino + " has absurd size " + in.size);
        }
        int len = (int) in.size;
        if ((in.flags & Inode.FLAG_INLINE_DATA) != 0) {
            byte[] d = inlineData(ino, in);
            return Names.decode(d, 0, Math.min(len, d.length));
        }
        if (isFastSymlink(in)) {
            return Names.decode(in.block, 0, Math.min(len, 60));
        }
        try (InputStream s = open(ino)) {
            return Names.decode(s.readNBytes(len));
        }
    }

    boolean isFastSymlink(Inode in) {
        if ((in.flags & (Inode.FLAG_EXTENTS | Inode.FLAG_INLINE_DATA)) != 0) {
            return false;
        }
        long eaBlocks = in.fileAcl != 0 ? blockSize / 512 : 0;
        return in.size < 60 && in.blocks512 - eaBlocks == 0;
    }

    /** inline_data: the first 60 bytes live in i_block, the rest in the "system.data" xattr. */
    byte[] inlineData(long ino, Inode in) throws IOException {
        byte[] extra = xattrs(ino, in, true).get("system.data");
        byte[] out = new byte[60 + (extra == null ? 0 : extra.length)];
        System.arraycopy(in.block, 0, out, 0, 60);
        if (extra != null) {
            System.arraycopy(extra, 0, out, 60, extra.length);
        }
        return out;
    }

    // ------------------------------------------------------------------ xattrs

    /**
     * Extended attributes by full name; POSIX ACLs are returned in the VFS (getxattr) format.
     *
     * @param ino an inode number
     * @return extended attributes by full name; POSIX ACLs in the kernel's xattr format
     * @throws IOException on a read error or damage
     */
    public Map<String, byte[]> xattrs(long ino) throws IOException {
        Map<String, byte[]> x = xattrs(ino, readInode(ino), false);
        return x;
    }

    Map<String, byte[]> xattrs(long ino, Inode in, boolean includeData) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        int start = Inode.GOOD_OLD_SIZE + in.extraIsize;
        if (inodeSize > Inode.GOOD_OLD_SIZE && start + 4 <= inodeSize && Le.get32(in.raw, start) == Xattr.MAGIC) {
            parseXattrs(ino, in.raw, start + 4, inodeSize, start + 4, out, "in-inode");
        }
        if (in.fileAcl != 0) {
            checkBlock(in.fileAcl, "xattr block of inode " + ino);
            byte[] b = readBlock(in.fileAcl);
            if (Le.get32(b, 0) != Xattr.MAGIC) {
                throw new CorruptImageException(String.format("%s: inode %d: xattr block %d has bad magic 0x%08X",
                        path, ino, in.fileAcl, Le.get32(b, 0)));
            }
            parseXattrs(ino, b, Xattr.BLOCK_HEADER, blockSize, 0, out, "block " + in.fileAcl);
        }
        if (!includeData) {
            out.remove("system.data");
        }
        return out;
    }

    private static final String[] PREFIX = {"", "user.", "system.posix_acl_access", "system.posix_acl_default",
        "trusted.", "", "security.", "system.", "system.richacl"};

    private void parseXattrs(long ino, byte[] b, int start, int end, int valueBase, Map<String, byte[]> out,
            String where) {
        Xattr.Cursor c = new Xattr.Cursor(b, start, end);
        while (c.next()) {
            String suffix = new String(b, c.offset + Xattr.ENTRY_HEADER, c.nameLen, StandardCharsets.UTF_8);
            int index = c.index;
            String name = (index < PREFIX.length ? PREFIX[index] : "") + suffix;
            if (index == 0 || index == 5 || index >= PREFIX.length) {
                name = "unknown" + index + "." + suffix;
            }
            if (c.valueInum != 0) {
                throw new CorruptImageException(path + ": inode " + ino + ": xattr " + name
                        + " is stored in an inode (ea_inode), which kiln does not read");
            }
            long vStart = valueBase + (long) c.valueOffs;
            if (c.valueSize > end || vStart + c.valueSize > end) {
                throw new CorruptImageException(String.format("%s: inode %d: xattr %s value (offset %d, size %d) "
                        + "overruns the %s area", path, ino, name, c.valueOffs, c.valueSize, where));
            }
            byte[] v = Arrays.copyOfRange(b, (int) vStart, (int) (vStart + c.valueSize));
            if (index == 2 || index == 3) {
                try {
                    v = PosixAcl.fromDisk(v);
                } catch (CorruptImageException e) {
                    throw new CorruptImageException(path + ": inode " + ino + ": " + e.getMessage());
                }
            }
            out.put(name, v);
        }
        if (c.damage != null) {
            throw new CorruptImageException(path + ": inode " + ino + ": " + c.damage + " (" + where + ")");
        }
    }

    // ------------------------------------------------------------------ walking

    /** Visits every path below the root, depth first, names in sorted order. */
    public interface Visitor {
        /**
         * Called once per path.
         *
         * @param path the absolute path
         * @param stat its attributes
         * @throws IOException to stop the walk
         */
        void visit(String path, FileStat stat) throws IOException;
    }

    /**
     * Visits every path, the root first, then depth first with names in sorted order.
     *
     * @param v the visitor
     * @throws IOException from the visitor, on a read error or damage
     */
    public void walk(Visitor v) throws IOException {
        FileStat root = stat(Ext4Writer.ROOT_INO);
        v.visit("/", root);
        Set<Long> onPath = new HashSet<>();
        onPath.add((long) Ext4Writer.ROOT_INO);
        walk("", Ext4Writer.ROOT_INO, v, onPath, 0);
    }

    private void walk(String prefix, long dir, Visitor v, Set<Long> onPath, int depth) throws IOException {
        if (depth > 4096) {
            throw new CorruptImageException(path + ": directory tree deeper than 4096 levels at " + prefix);
        }
        List<DirEntry> entries = new ArrayList<>(list(dir));
        entries.sort((a, b) -> a.name().compareTo(b.name()));
        for (DirEntry e : entries) {
            String p = prefix + "/" + e.name();
            FileStat st = stat(e.ino());
            v.visit(p, st);
            if (st.isDirectory()) {
                if (!onPath.add(e.ino())) {
                    throw new CorruptImageException(path + ": directory cycle at " + p + " (inode " + e.ino() + ")");
                }
                walk(p, e.ino(), v, onPath, depth + 1);
                onPath.remove(e.ino());
            }
        }
    }

    Path path() {
        return path;
    }
}
