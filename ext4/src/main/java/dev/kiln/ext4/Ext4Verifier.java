package dev.kiln.ext4;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A full, read-only consistency check in the spirit of {@code e2fsck -fn}: every checksum,
 * bitmaps against what inodes and metadata actually use, free counts, link counts, directory
 * structure and htree indexes, extent trees, xattr blocks and the journal superblock. Problems
 * are collected, each naming the inode (and path when known); nothing is ever written.
 */
public final class Ext4Verifier {
    /** At most this many problems are listed; the rest are counted in a last line. */
    static final int MAX_PROBLEMS = 1000;
    private long unlisted;
    /** EXT2_ERROR_FS in s_state: the kernel found errors. */
    private static final int STATE_ERROR_FS = 2;
    /** EXT2_BAD_INO: the inode that lists bad blocks. */
    private static final int BAD_INO = 1;

    /** One inconsistency. {@code ino} is 0 for file-system-wide problems. */
    public record Problem(long ino, String path, String message) {
        @Override
        public String toString() {
            if (ino == 0) {
                return message;
            }
            return "inode " + ino + (path == null ? "" : " (" + path + ")") + ": " + message;
        }
    }

    private final Ext4Reader r;
    private final List<Problem> problems = new ArrayList<>();
    private final BitSet usedBlocks = new BitSet();
    private final Map<Long, Long> blockOwner = new HashMap<>();
    private final BitSet usedInodes = new BitSet();
    private final Map<Long, Integer> refs = new HashMap<>();
    private final Map<Long, Integer> subdirs = new HashMap<>();
    private final Map<Long, String> paths = new HashMap<>();
    private final Map<Long, Long> xattrBlockRefs = new HashMap<>();
    private final int[] seed;
    private final int hashVersionBase;
    private final boolean unsignedHash;

    private Ext4Verifier(Ext4Reader r) {
        this.r = r;
        this.seed = DxHash.seed(r.sb.hashSeed);
        this.hashVersionBase = r.sb.defHashVersion;
        this.ratio = r.clusterRatio();
        this.unsignedHash = (r.sb.flags & 0x2) != 0;
    }

    /**
     * Checks the image; an empty list means it is consistent.
     *
     * @param reader an open image
     * @return the problems found, in e2fsck's pass order; at most 1,000 and a count of the rest
     * @throws IOException on a read error
     */
    public static List<Problem> verify(Ext4Reader reader) throws IOException {
        Ext4Verifier v = new Ext4Verifier(reader);
        v.run();
        if (v.unlisted > 0) {
            v.problems.add(new Problem(0, null, "... and " + v.unlisted + " more problem(s) not listed"));
        }
        return v.problems;
    }

    private void problem(long ino, String msg) {
        if (problems.size() < MAX_PROBLEMS) {
            problems.add(new Problem(ino, paths.get(ino), msg));
        } else {
            unlisted++;
        }
    }

    private void claim(long blk, long ino, String what) {
        if (blk < 0 || blk >= r.blocksCount) {
            problem(ino, what + " block " + blk + " is outside the file system");
            return;
        }
        if (usedBlocks.get((int) blk)) {
            Long other = blockOwner.get(blk);
            if (ino != 0 && other != null && other != 0 && (r.sb.featureRoCompat & Features.RO_COMPAT_SHARED_BLOCKS) != 0) {
                return; // shared_blocks: files may share data blocks
            }
            problem(ino, what + " block " + blk + " is also used by " + (other == null || other == 0
                    ? "file system metadata" : "inode " + other));
            return;
        }
        usedBlocks.set((int) blk);
        if (ino != 0) {
            blockOwner.put(blk, ino);
            if (ratio > 1) {
                long cluster = blk / ratio;
                Long other = clusterOwner.putIfAbsent(cluster, ino);
                if (other != null && other != ino
                        && (r.sb.featureRoCompat & Features.RO_COMPAT_SHARED_BLOCKS) == 0) {
                    problem(ino, what + " block " + blk + " is in cluster " + cluster + ", which inode " + other
                            + " also uses");
                }
                if (inodeClusters != null) {
                    inodeClusters.add(cluster);
                }
            }
        }
    }

    /** Blocks per allocation cluster (bigalloc), else 1. */
    private final long ratio;
    private final Map<Long, Long> clusterOwner = new HashMap<>();
    /** The clusters the inode being checked uses (bigalloc charges i_blocks per cluster). */
    private java.util.Set<Long> inodeClusters;

    private void run() throws IOException {
        checkSuperblocksAndDescriptors();
        if (problems.stream().anyMatch(p -> p.message().startsWith("fatal"))) {
            return;
        }
        checkReservedInodes();
        walkTree();
        checkAllInodes();
        checkQuota();
        checkBitmapsAndCounts();
    }

    // ---------------------------------------------------------------- superblock and groups

    private void checkSuperblocksAndDescriptors() throws IOException {
        Superblock sb = r.sb;
        int bs = r.blockSize;
        if (r.backupSuperblock() >= 0) {
            problem(0, "the primary superblock is damaged (" + r.primarySuperblockProblem() + "); read with the backup at "
                    + "block " + r.backupSuperblock());
        }
        if (sb.firstIno < 11) {
            problem(0, "superblock: first inode " + sb.firstIno + " is below 11");
        }
        if ((sb.featureRoCompat & Features.RO_COMPAT_EXTRA_ISIZE) != 0) {
            int room = r.inodeSize - Inode.GOOD_OLD_SIZE;
            if (sb.minExtraIsize > room || (sb.minExtraIsize & 3) != 0) {
                problem(0, "superblock: required extra inode size " + sb.minExtraIsize + " is invalid (0.." + room
                        + ", a multiple of 4)");
            }
            if (sb.wantExtraIsize > room || (sb.wantExtraIsize & 3) != 0) {
                problem(0, "superblock: desired extra inode size " + sb.wantExtraIsize + " is invalid (0.." + room
                        + ", a multiple of 4)");
            }
        }
        if ((sb.state & STATE_ERROR_FS) != 0) {
            problem(0, "superblock: the kernel recorded errors in this file system (state " + sb.state + ")");
        }
        for (long q : new long[] {sb.usrQuotaInum, sb.grpQuotaInum, sb.prjQuotaInum, sb.orphanFileInum}) {
            if (q != 0 && (q > sb.inodesCount || q == Ext4Writer.ROOT_INO)) {
                problem(0, "superblock: quota or orphan file inode " + q + " is out of range (1.." + sb.inodesCount + ")");
            }
        }
        if ((sb.featureIncompat & Features.INCOMPAT_RECOVER) != 0) {
            problem(0, "superblock: the journal needs recovery (needs_recovery is set)");
        }
        int descPerBlock = bs / r.descSize;
        long rsv = (sb.featureCompat & Features.COMPAT_RESIZE_INODE) != 0 ? sb.reservedGdtBlocks : 0;
        for (int g = 0; g < r.groupCount; g++) {
            long first = r.superblockBlock(g);
            if (g == 0 && first > 0) {
                usedBlocks.set(0); // the boot block before a 1 KiB-block superblock
            }
            if (r.hasSuperBackup(g) && (sb.featureIncompat & Features.INCOMPAT_META_BG) == 0) {
                claim(first, 0, "superblock");
                for (int i = 0; i < r.gdtBlocks.length + rsv; i++) {
                    claim(first + 1 + i, 0, "group descriptor");
                }
                if (g > 0) {
                    checkBackupSuperblock(g, first);
                }
            } else if (r.hasSuperBackup(g)) {
                claim(first, 0, "superblock");
            }
        }
        if ((sb.featureIncompat & Features.INCOMPAT_META_BG) != 0) {
            for (long b : r.gdtBlocks) {
                if (!usedBlocks.get((int) b)) {
                    claim(b, 0, "group descriptor");
                }
            }
            if (sb.firstDataBlock == 0) {
                usedBlocks.set(0);
            }
        }
        if (sb.firstDataBlock == 1) {
            usedBlocks.set(0);
        }
        for (int g = 0; g < r.groupCount; g++) {
            GroupDescriptor d = r.groups[g];
            if (r.csum || (sb.featureRoCompat & Features.RO_COMPAT_GDT_CSUM) != 0) {
                byte[] raw = rawDescriptor(g);
                long stored = Le.get16(raw, 0x1E);
                long expect = descriptorChecksum(g, raw);
                if (stored != expect) {
                    problem(0, String.format("group %d: descriptor checksum 0x%04X vs expected 0x%04X", g, stored, expect));
                }
            }
            checkTable(g, "block bitmap", d.blockBitmap, 1);
            checkTable(g, "inode bitmap", d.inodeBitmap, 1);
            int itb = (int) Layout.ceilDiv(r.inodesPerGroup * r.inodeSize, bs);
            checkTable(g, "inode table", d.inodeTable, itb);
        }
        journalSuperblockCheck();
    }

    private void checkTable(int g, String what, long blk, int count) {
        if (blk <= 0 || blk + count > r.blocksCount) {
            problem(0, "fatal: group " + g + ": " + what + " at block " + blk + " is outside the file system");
            return;
        }
        for (int i = 0; i < count; i++) {
            claim(blk + i, 0, "group " + g + " " + what);
        }
    }

    private byte[] rawDescriptor(int g) throws IOException {
        int perBlock = r.blockSize / r.descSize;
        byte[] b = r.readBlock(r.gdtBlocks[g / perBlock]);
        int off = (g % perBlock) * r.descSize;
        return java.util.Arrays.copyOfRange(b, off, off + r.descSize);
    }

    private long descriptorChecksum(int g, byte[] raw) {
        byte[] copy = raw.clone();
        copy[0x1E] = 0;
        copy[0x1F] = 0;
        if (r.csum) {
            return r.seed().updateLe32(g).update(copy, 0, copy.length).raw() & 0xFFFF;
        }
        int crc = Crc16.update(0xFFFF, r.sb.uuid, 0, 16);
        byte[] le = new byte[4];
        Le.put32(le, 0, g);
        crc = Crc16.update(crc, le, 0, 4);
        crc = Crc16.update(crc, raw, 0, 0x1E);
        if (raw.length > 0x20) {
            crc = Crc16.update(crc, raw, 0x20, raw.length - 0x20);
        }
        return crc & 0xFFFF;
    }

    private void checkBackupSuperblock(int g, long first) throws IOException {
        byte[] b = r.readBlock(first);
        int off = r.blockSize == 1024 || first != 0 ? 0 : Superblock.OFFSET;
        if (Le.get16(b, off + 0x38) == 0 && Le.get32(b, off) == 0) {
            return; // never written (genext2fs leaves backups out); e2fsck does not require them either
        }
        try {
            Superblock s = Superblock.decode(b, off);
            if (s.blocksCount != r.sb.blocksCount || s.inodesCount != r.sb.inodesCount
                    || !java.util.Arrays.equals(s.uuid, r.sb.uuid)) {
                problem(0, "group " + g + ": backup superblock does not match the primary");
            }
        } catch (CorruptImageException e) {
            problem(0, "group " + g + ": backup superblock: " + e.getMessage());
        }
    }

    private void journalSuperblockCheck() throws IOException {
        long jino = r.journalInode();
        if (jino == 0) {
            return;
        }
        try {
            Inode in = r.readInode(jino);
            Ext4Reader.BlockMap map = r.blockMap(jino, in);
            long first = map.physical(0);
            if (first <= 0) {
                problem(jino, "journal has no first block");
                return;
            }
            byte[] b = r.readBlock(first);
            if (Le.getBe32(b, 0) != JournalSuperblock.MAGIC) {
                problem(jino, String.format("journal superblock: bad magic 0x%08X vs expected 0x%08X",
                        Le.getBe32(b, 0), JournalSuperblock.MAGIC));
                return;
            }
            long type = Le.getBe32(b, 4);
            if (type != 3 && type != 4) {
                problem(jino, "journal superblock: block type " + type + " is not a superblock");
            }
            if (Le.getBe32(b, 0x0C) != r.blockSize) {
                problem(jino, "journal superblock: block size " + Le.getBe32(b, 0x0C) + " vs " + r.blockSize);
            }
            long maxLen = Le.getBe32(b, 0x10);
            if (maxLen * r.blockSize > in.size) {
                problem(jino, "journal superblock: " + maxLen + " blocks but the journal inode holds " + in.size
                        + " bytes");
            }
            if (Le.getBe32(b, 0x1C) != 0) {
                problem(jino, "journal is not empty (s_start " + Le.getBe32(b, 0x1C) + "): it needs recovery");
            }
            if ((Le.getBe32(b, 0x28) & JournalSuperblock.INCOMPAT_CSUM_V3) != 0) {
                byte[] copy = java.util.Arrays.copyOf(b, JournalSuperblock.SIZE);
                long stored = Le.getBe32(copy, JournalSuperblock.CHECKSUM_OFFSET);
                Le.putBe32(copy, JournalSuperblock.CHECKSUM_OFFSET, 0);
                long c = new Crc32c().update(copy).raw();
                if (c != stored) {
                    problem(jino, String.format("journal superblock checksum 0x%08X vs expected 0x%08X", stored, c));
                }
            }
        } catch (CorruptImageException e) {
            problem(jino, "journal: " + e.getMessage());
        }
    }

    // ---------------------------------------------------------------- inodes

    private void checkReservedInodes() {
        for (long ino = 1; ino < r.sb.firstIno; ino++) {
            usedInodes.set((int) ino);
        }
        paths.put((long) Ext4Writer.ROOT_INO, "/");
    }

    /** Breadth-first from the root: directory entries, and the inodes they reach. */
    private void walkTree() throws IOException {
        Deque<long[]> queue = new ArrayDeque<>();
        queue.add(new long[] {Ext4Writer.ROOT_INO, Ext4Writer.ROOT_INO});
        BitSet seenDirs = new BitSet();
        seenDirs.set(Ext4Writer.ROOT_INO);
        while (!queue.isEmpty()) {
            long[] item = queue.poll();
            long dir = item[0];
            long parent = item[1];
            Inode din;
            try {
                din = r.readInode(dir);
            } catch (CorruptImageException e) {
                problem(dir, e.getMessage());
                continue;
            }
            if (FileType.ofMode(din.mode) != FileType.DIRECTORY) {
                problem(dir, "expected a directory, found mode " + Integer.toOctalString(din.mode));
                continue;
            }
            List<long[]> children = new ArrayList<>();
            checkDirectory(dir, din, parent, children);
            for (long[] c : children) {
                long child = c[0];
                refs.merge(child, 1, Integer::sum);
                if (c[1] == 1) {
                    subdirs.merge(dir, 1, Integer::sum);
                    if (seenDirs.get((int) child)) {
                        problem(child, "directory is linked from more than one place");
                        continue;
                    }
                    seenDirs.set((int) child);
                    queue.add(new long[] {child, dir});
                }
            }
        }
    }

    /** A directory entry as stored: its name, inode and file type byte. */
    private record Named(String name, long ino, int type) {}

    private void checkDirectory(long dir, Inode din, long parent, List<long[]> children) throws IOException {
        String dpath = paths.get(dir);
        boolean ftype = (r.sb.featureIncompat & Features.INCOMPAT_FILETYPE) != 0;
        List<Named> entries = new ArrayList<>();
        if ((din.flags & Inode.FLAG_INLINE_DATA) != 0) {
            try {
                for (Ext4Reader.DirEntry e : r.list(dir, din)) {
                    // The entry's type as stored, so inline directories get the same type check.
                    entries.add(new Named(e.name(), e.ino(), e.type().dirEntryType()));
                }
            } catch (CorruptImageException e) {
                problem(dir, e.getMessage());
            }
        } else {
            Ext4Reader.BlockMap map;
            try {
                map = r.blockMap(dir, din);
            } catch (CorruptImageException e) {
                problem(dir, e.getMessage());
                return;
            }
            long blocks = Layout.ceilDiv(din.size, r.blockSize);
            if (blocks > r.blocksCount) {
                problem(dir, "directory size " + din.size + " is larger than the file system");
                return;
            }
            boolean indexed = (din.flags & Inode.FLAG_INDEX) != 0 && (r.sb.featureCompat & Features.COMPAT_DIR_INDEX) != 0;
            boolean sawDot = false;
            boolean sawDotDot = false;
            for (long lb = 0; lb < blocks; lb++) {
                long pb = map.physical(lb);
                if (pb <= 0) {
                    problem(dir, "directory has a hole at block " + lb);
                    continue;
                }
                byte[] b = r.readBlock(pb);
                if (indexed && lb == 0) {
                    sawDot = Le.get32(b, 0) == dir;
                    sawDotDot = Le.get32(b, 12) == parent;
                    checkDxRoot(dir, din, b, map);
                    continue;
                }
                if (indexed && Le.get32(b, 0) == 0 && Le.get16(b, 4) == r.blockSize) {
                    continue; // a dx_node; checked from the root
                }
                int end = r.blockSize;
                if (r.csum) {
                    int t = r.blockSize - Directory.TAIL_SIZE;
                    if (Le.get32(b, t) == 0 && Le.get16(b, t + 4) == Directory.TAIL_SIZE
                            && Le.get8(b, t + 7) == Directory.TAIL_TYPE) {
                        long c = r.inodeSeed(dir, din.generation).update(b, 0, t).raw();
                        if (c != Le.get32(b, t + 8)) {
                            problem(dir, String.format("directory block %d (logical %d): checksum 0x%08X vs expected "
                                    + "0x%08X", pb, lb, Le.get32(b, t + 8), c));
                        }
                        end = t;
                    } else {
                        problem(dir, "directory block " + pb + " (logical " + lb + ") has no checksum tail");
                    }
                }
                Directory.Cursor c = new Directory.Cursor(b, 0, end, r.blockSize, ftype);
                boolean malformed = false;
                while (c.next()) {
                    if (!c.wellFormed()) {
                        problem(dir, String.format("directory block %d: bad entry at offset %d (rec_len %d, name_len %d)",
                                pb, c.offset, c.recLen, c.nameLen));
                        malformed = true;
                        break;
                    }
                    if (c.inode != 0) {
                        String name = c.name();
                        if (lb == 0 && c.offset == 0) {
                            sawDot = name.equals(".") && c.inode == dir;
                        } else if (lb == 0 && name.equals("..")) {
                            sawDotDot = c.inode == parent;
                        } else if (name.equals(".") || name.equals("..")) {
                            problem(dir, "extra '" + name + "' entry in block " + lb);
                        } else {
                            entries.add(new Named(name, c.inode, c.type));
                        }
                    }
                }
                if (!malformed && c.truncated()) {
                    problem(dir, "directory block " + pb + ": entry at offset " + c.offset + " runs past the block");
                }
            }
            if (!sawDot) {
                problem(dir, "directory has no valid '.' entry");
            }
            if (!sawDotDot) {
                problem(dir, "directory's '..' does not point to its parent (inode " + parent + ")");
            }
        }
        java.util.Set<String> names = new java.util.HashSet<>();
        for (Named e : entries) {
            String name = e.name();
            long child = e.ino();
            if (name.isEmpty() || name.indexOf('/') >= 0 || name.indexOf('\0') >= 0) {
                problem(dir, "entry with an illegal name '" + name + "'");
            }
            if (!names.add(name)) {
                problem(dir, "duplicate entry '" + name + "'");
            }
            if (child < 1 || child > r.sb.inodesCount) {
                problem(dir, "entry '" + name + "' points to inode " + child + ", outside the inode table");
                continue;
            }
            if (child < r.sb.firstIno && child != Ext4Writer.ROOT_INO) {
                problem(dir, "entry '" + name + "' points to reserved inode " + child);
                continue;
            }
            String childPath = (dpath == null || dpath.equals("/") ? "" : dpath) + "/" + name;
            paths.putIfAbsent(child, childPath);
            Inode cin;
            try {
                cin = r.readInode(child);
            } catch (CorruptImageException ex) {
                problem(child, ex.getMessage());
                continue;
            }
            if (cin.mode == 0 || cin.links == 0) {
                problem(child, "entry '" + childPath + "' points to an unused inode");
                continue;
            }
            FileType t = FileType.ofMode(cin.mode);
            if (ftype) {
                FileType dt = FileType.ofDirEntry(e.type());
                if (dt != t) {
                    problem(dir, "entry '" + name + "' has file type " + dt + " but inode " + child + " is " + t);
                }
            }
            children.add(new long[] {child, t == FileType.DIRECTORY ? 1 : 0});
        }
    }

    private void checkDxRoot(long dir, Inode din, byte[] b, Ext4Reader.BlockMap map) throws IOException {
        int infoLen = Le.get8(b, 29);
        int levels = Le.get8(b, 30);
        int version = Le.get8(b, 28);
        if (infoLen != 8) {
            problem(dir, "htree root: info length " + infoLen + " vs expected 8");
            return;
        }
        int maxLevels = (r.sb.featureIncompat & Features.INCOMPAT_LARGEDIR) != 0 ? 3 : 2;
        if (levels >= maxLevels) {
            problem(dir, "htree root: " + levels + " indirect levels, more than the format allows");
            return;
        }
        if (version > DxHash.TEA) {
            problem(dir, "htree root: unknown hash version " + version);
            return;
        }
        int hv = version + (unsignedHash ? 3 : 0);
        checkDxNode(dir, din, b, Directory.DX_ROOT_ENTRIES, levels, 0, 0xFFFFFFFFL, hv, map, 0);
    }

    private void checkDxNode(long dir, Inode din, byte[] b, int at, int levelsBelow, long lo, long hi, int hv,
            Ext4Reader.BlockMap map, int depth) throws IOException {
        int limit = Le.get16(b, at);
        int count = Le.get16(b, at + 2);
        int tail = r.csum ? 1 : 0;
        int expectLimit = (r.blockSize - at) / 8 - tail;
        if (limit != expectLimit) {
            problem(dir, "htree node: limit " + limit + " vs expected " + expectLimit);
            return;
        }
        if (count == 0 || count > limit) {
            problem(dir, "htree node: count " + count + " with limit " + limit);
            return;
        }
        if (r.csum) {
            int t = at + limit * 8;
            long c = r.inodeSeed(dir, din.generation).update(b, 0, at + count * 8)
                    .update(b, t, 4).updateZeros(4).raw();
            if (c != Le.get32(b, t + 4)) {
                problem(dir, String.format("htree node checksum 0x%08X vs expected 0x%08X", Le.get32(b, t + 4), c));
            }
        }
        long blocks = Layout.ceilDiv(din.size, r.blockSize);
        for (int i = 0; i < count; i++) {
            long hash = i == 0 ? lo : Le.get32(b, at + 8 * i);
            long next = i + 1 < count ? Le.get32(b, at + 8 * (i + 1)) : hi;
            long lblk = Le.get32(b, at + 8 * i + 4);
            if (i > 0 && hash < Le.get32(b, at + 8 * (i - 1)) && i > 1) {
                problem(dir, "htree node: hashes out of order at entry " + i);
            }
            if (lblk >= blocks) {
                problem(dir, "htree node: entry " + i + " points to block " + lblk + " beyond the directory");
                continue;
            }
            long pb = map.physical(lblk);
            if (pb <= 0) {
                problem(dir, "htree node: entry " + i + " points to a hole");
                continue;
            }
            byte[] child = r.readBlock(pb);
            if (levelsBelow > 0) {
                if (Le.get32(child, 0) != 0 || Le.get16(child, 4) != r.blockSize) {
                    problem(dir, "htree: block " + lblk + " should be an index node");
                    continue;
                }
                checkDxNode(dir, din, child, Directory.DX_NODE_ENTRIES, levelsBelow - 1, hash & ~1L, next, hv, map,
                        depth + 1);
            } else {
                checkLeafHashes(dir, child, lblk, hash & ~1L, next, hv);
            }
        }
    }

    private void checkLeafHashes(long dir, byte[] b, long lblk, long lo, long hi, int hv) {
        int end = r.blockSize - (r.csum ? Directory.TAIL_SIZE : 0);
        Directory.Cursor c = new Directory.Cursor(b, 0, end, r.blockSize, true);
        while (c.next() && c.wellFormed()) { // a malformed entry is reported by the linear check
            if (c.live()) {
                long h = DxHash.hash(b, c.nameOffset(), c.nameLen, hv, seed)[0];
                // A leaf continued by a collision run may end with the next range's hash.
                boolean ok = h >= lo && (h < (hi & ~1L) || ((hi & 1) == 1 && h == (hi & ~1L)) || hi == 0xFFFFFFFFL);
                if (!ok) {
                    problem(dir, String.format("htree leaf block %d: name '%s' hashes to 0x%08X, outside its range "
                            + "[0x%08X, 0x%08X)", lblk, Names.printable(c.name()), h, lo, hi));
                }
            }
        }
    }

    /** Inodes the file system itself uses without a directory entry: quota files, the orphan file. */
    private boolean isSystemInode(long ino) {
        Superblock sb = r.sb;
        return ino != 0 && (ino == sb.usrQuotaInum || ino == sb.grpQuotaInum || ino == sb.prjQuotaInum
                || ((sb.featureCompat & Features.COMPAT_ORPHAN_FILE) != 0 && ino == sb.orphanFileInum));
    }

    /** Every inode the bitmaps or the tree say is in use: checksum, blocks, xattrs, links. */
    private void checkAllInodes() throws IOException {
        for (long ino = 1; ino <= r.sb.inodesCount; ino++) {
            boolean reachable = refs.containsKey(ino) || ino == Ext4Writer.ROOT_INO;
            boolean special = ino < r.sb.firstIno || isSystemInode(ino);
            Inode in;
            try {
                in = r.readInode(ino);
            } catch (CorruptImageException e) {
                problem(ino, e.getMessage());
                continue;
            }
            if (!reachable && !special) {
                if (in.links != 0 && in.mode != 0 && in.dtimeOrZero() == 0 && inodeMarked(ino)) {
                    problem(ino, "inode is in use but no directory entry refers to it");
                }
                continue;
            }
            if (ino == BAD_INO) {
                checkBadBlocksInode(in);
                continue;
            }
            if (special && !reachable && !isUsedSpecial(ino, in)) {
                if (r.csum && !allZero(in.raw) && !in.checksumOk(r.inodeSeed(ino, in.generation))) {
                    problem(ino, "reserved inode's checksum does not match");
                }
                continue;
            }
            usedInodes.set((int) ino);
            if (r.csum && !in.checksumOk(r.inodeSeed(ino, in.generation))) {
                problem(ino, "inode checksum does not match");
            }
            long sectors = checkInodeBlocks(ino, in);
            if ((ino == Ext4Writer.ROOT_INO || ino >= r.sb.firstIno) && ino != r.sb.prjQuotaInum) {
                // What e2fsck charges to the owner's quota: the inode, and the blocks it uses.
                usage[0].merge(in.uid, new long[] {1, sectors * 512}, Ext4Verifier::add);
                usage[1].merge(in.gid, new long[] {1, sectors * 512}, Ext4Verifier::add);
            }
            if (reachable && ino != Ext4Writer.ROOT_INO || ino == Ext4Writer.ROOT_INO) {
                checkLinks(ino, in);
                if (in.dtime != 0 && in.links > 0) {
                    problem(ino, "inode is in use but has its deletion time (dtime) set");
                }
            }
            if (FileType.ofMode(in.mode) == FileType.SYMLINK) {
                checkSymlink(ino, in);
            }
        }
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private final Map<Long, long[]>[] usage = new Map[] {new HashMap<>(), new HashMap<>()};

    private static long[] add(long[] a, long[] b) {
        return new long[] {a[0] + b[0], a[1] + b[1]};
    }

    /** The quota feature: each user and group quota file must record what is in use, as e2fsck recomputes it. */
    private void checkQuota() throws IOException {
        if ((r.sb.featureRoCompat & Features.RO_COMPAT_QUOTA) == 0) {
            return;
        }
        long[] inums = {r.sb.usrQuotaInum, r.sb.grpQuotaInum};
        String[] kinds = {"user", "group"};
        for (int t = 0; t < 2; t++) {
            long ino = inums[t];
            if (ino == 0 || ino > r.sb.inodesCount) {
                continue;
            }
            Map<Long, QuotaFile.Usage> recorded;
            try (InputStream in = r.open(ino)) {
                recorded = QuotaFile.read(in, t, kinds[t] + " quota file (inode " + ino + ")");
            } catch (CorruptImageException e) {
                problem(ino, e.getMessage().replace(r.path() + ": ", ""));
                continue;
            }
            java.util.Set<Long> ids = new java.util.TreeSet<>(recorded.keySet());
            ids.addAll(usage[t].keySet());
            for (long id : ids) {
                long[] actual = usage[t].getOrDefault(id, new long[2]);
                QuotaFile.Usage rec = recorded.getOrDefault(id, new QuotaFile.Usage(0, 0));
                if (rec.inodes() != actual[0] || rec.space() != actual[1]) {
                    problem(ino, kinds[t] + " quota of id " + id + ": the quota file records " + rec.inodes() + " inodes and "
                            + rec.space() + " bytes, in use are " + actual[0] + " and " + actual[1]);
                }
            }
        }
    }

    private boolean isUsedSpecial(long ino, Inode in) {
        if (ino == Ext4Writer.RESIZE_INO) {
            return (r.sb.featureCompat & Features.COMPAT_RESIZE_INODE) != 0;
        }
        return ino == r.journalInode() || isSystemInode(ino) && in.mode != 0;
    }

    /** EXT2_DIND_BLOCK: the resize inode keeps everything under its double-indirect pointer. */
    private static final int DIND_BLOCK = 13;

    /**
     * The resize inode as e2fsck checks it: only its double-indirect pointer set; that block
     * lists the primary reserved GDT blocks (at index (descriptor blocks + j) mod pointers per
     * block); each of those, read as an indirect block, lists its backups in the groups with a
     * superblock copy. Its i_blocks counts all of them. Returns the sectors it uses.
     */
    private long checkResizeInode(Inode in) throws IOException {
        long ino = Ext4Writer.RESIZE_INO;
        int perBlock = r.blockSize / 4;
        long sectors = r.blockSize / 512;
        for (int i = 0; i < Inode.N_BLOCKS; i++) {
            if (i != DIND_BLOCK && Le.get32(in.block, 4 * i) != 0) {
                problem(ino, "the resize inode has illegal block(s): i_block[" + i + "] is set");
                return in.blocks512;
            }
        }
        long dind = Le.get32(in.block, 4 * DIND_BLOCK);
        long rsv = r.sb.reservedGdtBlocks;
        if (dind == 0) {
            if (rsv > 0) {
                problem(ino, "the resize inode is not valid: no double-indirect block for " + rsv + " reserved GDT blocks");
            }
            return in.blocks512;
        }
        if (dind < r.sb.firstDataBlock || dind >= r.blocksCount) {
            problem(ino, "the resize inode has illegal block(s): double-indirect block " + dind);
            return in.blocks512;
        }
        claim(dind, ino, "resize inode");
        long blocks = 1;
        byte[] d = r.readBlock(dind);
        long sbBlock = r.superblockBlock(0);
        List<Integer> backups = new ArrayList<>();
        for (int g = 1; g < r.groupCount; g++) {
            if (r.hasSuperBackup(g)) {
                backups.add(g);
            }
        }
        String invalid = null;
        for (int j = 0; j < rsv && invalid == null; j++) {
            long pblk = sbBlock + 1 + r.gdtBlocks.length + j;
            int at = (r.gdtBlocks.length + j) % perBlock;
            if (Le.get32(d, 4 * at) != pblk) {
                invalid = "double-indirect entry " + at + " is " + Le.get32(d, 4 * at) + ", not reserved GDT block " + pblk;
                break;
            }
            blocks++;
            byte[] ind = r.readBlock(pblk);
            for (int k = 0; k < backups.size(); k++) {
                long want = pblk + (long) backups.get(k) * r.sb.blocksPerGroup;
                if (k >= perBlock || Le.get32(ind, 4 * k) != want) {
                    invalid = "reserved GDT block " + pblk + " lists " + (k < perBlock ? Le.get32(ind, 4 * k) : "nothing")
                            + " for group " + backups.get(k) + "'s copy, not " + want;
                    break;
                }
                blocks++;
            }
            for (int k = backups.size(); k < perBlock && invalid == null; k++) {
                if (Le.get32(ind, 4 * k) != 0) {
                    invalid = "reserved GDT block " + pblk + " has an extra entry " + k + " (block "
                            + Le.get32(ind, 4 * k) + ")";
                }
            }
        }
        // Entries beyond the reserved blocks must be empty.
        for (int at = 0; at < perBlock && invalid == null; at++) {
            long v = Le.get32(d, 4 * at);
            int j = (at - r.gdtBlocks.length % perBlock + perBlock) % perBlock;
            if (v != 0 && j >= rsv) {
                invalid = "double-indirect entry " + at + " points to block " + v + " beyond the reserved GDT blocks";
            }
        }
        if (invalid != null) {
            problem(ino, "the resize inode is not valid: " + invalid);
            return in.blocks512;
        }
        long stored = in.blocks512;
        // As e2fsck counts it: every block once, then scaled to clusters (with bigalloc each block
        // of the resize inode counts as a whole cluster).
        long used = blocks * ratio * sectors;
        if (stored != used) {
            problem(ino, "i_blocks is " + stored + " but the resize inode uses " + used + " sectors");
        }
        return stored;
    }

    private static boolean allZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * The bad-blocks inode lists blocks the file system must never use, in its direct block
     * pointers: each is in use (so marked in the bitmap) and must lie inside the file system.
     */
    private void checkBadBlocksInode(Inode in) throws IOException {
        usedInodes.set(BAD_INO);
        if (allZero(in.raw)) {
            return;
        }
        if (r.csum && !in.checksumOk(r.inodeSeed(BAD_INO, in.generation))) {
            problem(BAD_INO, "the bad-blocks inode's checksum does not match");
        }
        if ((in.flags & (Inode.FLAG_EXTENTS | Inode.FLAG_INLINE_DATA)) != 0 || in.mode != 0 && in.mode != 0100000) {
            problem(BAD_INO, "the bad-blocks inode is invalid (mode " + Integer.toOctalString(in.mode) + ", flags 0x"
                    + Long.toHexString(in.flags) + ")");
            return;
        }
        for (int i = 0; i < Inode.N_BLOCKS; i++) {
            long b = Le.get32(in.block, 4 * i);
            if (b == 0) {
                continue;
            }
            if (i >= Inode.NDIR_BLOCKS || b < r.sb.firstDataBlock || b >= r.blocksCount) {
                problem(BAD_INO, "the bad-blocks inode lists block " + b + ", outside the file system or not a direct "
                        + "block");
                continue;
            }
            claim(b, BAD_INO, "bad");
        }
    }

    /**
     * A symlink as e2fsck checks it: a fast one keeps its target in i_block, shorter than the
     * 60 bytes there, and its size is the target's length.
     */
    private void checkSymlink(long ino, Inode in) {
        if ((in.flags & (Inode.FLAG_EXTENTS | Inode.FLAG_INLINE_DATA)) != 0 || !r.isFastSymlink(in)) {
            return;
        }
        int len = 0;
        while (len < in.block.length && in.block[len] != 0) {
            len++;
        }
        if (len != in.size) {
            problem(ino, "invalid fast symlink: size " + in.size + " but the target in the inode is " + len + " bytes");
        }
    }

    private boolean inodeMarked(long ino) throws IOException {
        int g = (int) ((ino - 1) / r.inodesPerGroup);
        if ((r.groups[g].flags & GroupDescriptor.FLAG_INODE_UNINIT) != 0) {
            return false;
        }
        byte[] b = r.readBlock(r.groups[g].inodeBitmap);
        int i = (int) ((ino - 1) % r.inodesPerGroup);
        return (b[i >>> 3] & (1 << (i & 7))) != 0;
    }

    private void checkLinks(long ino, Inode in) {
        FileType t = FileType.ofMode(in.mode);
        int expected;
        if (t == FileType.DIRECTORY) {
            expected = 2 + subdirs.getOrDefault(ino, 0);
            boolean nlink = (r.sb.featureRoCompat & Features.RO_COMPAT_DIR_NLINK) != 0;
            if (nlink && expected > 65000 && in.links == 1) {
                return;
            }
        } else {
            expected = refs.getOrDefault(ino, 0);
        }
        if (in.links != expected) {
            problem(ino, "link count " + in.links + " vs " + expected + " found");
        }
    }

    /** Checks an inode's blocks and returns the 512-byte sectors it uses. */
    private long checkInodeBlocks(long ino, Inode in) throws IOException {
        inodeClusters = ratio > 1 ? new java.util.HashSet<>() : null;
        long counted;
        try {
            counted = countInodeBlocks(ino, in);
            if (counted < 0) {
                return in.blocks512;
            }
            if (inodeClusters != null) {
                // bigalloc: an inode is charged whole clusters.
                if (in.fileAcl != 0) {
                    inodeClusters.add(in.fileAcl / ratio);
                }
                counted = inodeClusters.size() * ratio * (r.blockSize / 512);
            }
        } finally {
            inodeClusters = null;
        }
        long stored = in.blocks512;
        if ((in.flags & Inode.FLAG_HUGE_FILE) != 0 && (r.sb.featureRoCompat & Features.RO_COMPAT_HUGE_FILE) != 0) {
            stored *= r.blockSize / 512;
        }
        if (ino != Ext4Writer.RESIZE_INO && stored != counted) {
            problem(ino, "i_blocks is " + stored + " but the inode uses " + counted + " sectors");
        }
        return counted;
    }

    private long countInodeBlocks(long ino, Inode in) throws IOException {
        FileType t = FileType.ofMode(in.mode);
        long counted = 0;
        try {
            if (in.fileAcl != 0) {
                counted += r.blockSize / 512;
                checkXattrBlock(ino, in.fileAcl);
            }
            if (r.inodeSize > Inode.GOOD_OLD_SIZE) {
                r.xattrs(ino, in, true); // in-inode bounds and names
            }
            if (t == FileType.REGULAR && (in.flags & Inode.FLAG_INLINE_DATA) != 0) {
                int held = r.inlineData(ino, in).length;
                if (held < in.size) {
                    problem(ino, "inline data holds " + held + " bytes but i_size is " + in.size);
                }
            }
            boolean hasBlocks = switch (t) {
                case REGULAR, DIRECTORY -> (in.flags & Inode.FLAG_INLINE_DATA) == 0;
                case SYMLINK -> !r.isFastSymlink(in) && (in.flags & Inode.FLAG_INLINE_DATA) == 0;
                default -> false;
            };
            if (ino == Ext4Writer.RESIZE_INO) {
                return checkResizeInode(in);
            }
            if (hasBlocks) {
                Ext4Reader.BlockMap map = r.blockMap(ino, in);
                for (long b : map.metadataBlocks()) {
                    claim(b, ino, (in.flags & Inode.FLAG_EXTENTS) != 0 ? "extent tree" : "indirect");
                    counted += r.blockSize / 512;
                }
                long sizeBlocks = Layout.ceilDiv(in.size, r.blockSize);
                if (map instanceof ExtentMap em) {
                    for (long[] e : em.extents()) {
                        if (t == FileType.REGULAR && e[3] == 0 && e[0] + e[2] > sizeBlocks) {
                            problem(ino, "i_size is " + in.size + " but block " + (e[0] + e[2] - 1)
                                    + " is mapped (the size should be at least " + (e[0] + e[2]) * r.blockSize + ")");
                        }
                        for (long k = 0; k < e[2]; k++) {
                            claim(e[1] + k, ino, "data");
                        }
                        counted += e[2] * (r.blockSize / 512);
                        if (e[0] + e[2] > Layout.ceilDiv(in.size, r.blockSize) && t == FileType.DIRECTORY) {
                            problem(ino, "extent at logical block " + e[0] + " lies beyond the directory's size");
                        }
                    }
                } else if (map instanceof IndirectMap im) {
                    long max = Math.min(Layout.ceilDiv(in.size, r.blockSize), 12L + (long) (r.blockSize / 4)
                            * (1 + r.blockSize / 4 + (long) (r.blockSize / 4) * (r.blockSize / 4)));
                    for (long[] e : im.dataBlocks(max)) {
                        claim(e[1], ino, "data");
                        counted += r.blockSize / 512;
                    }
                }
            }
        } catch (CorruptImageException e) {
            problem(ino, e.getMessage().replace(r.path() + ": ", ""));
            return -1;
        }
        return counted;
    }

    private void checkXattrBlock(long ino, long blk) throws IOException {
        Long seen = xattrBlockRefs.get(blk);
        xattrBlockRefs.merge(blk, 1L, Long::sum);
        if (seen != null) {
            return; // shared block, checked once
        }
        claim(blk, ino, "xattr");
        byte[] b = r.readBlock(blk);
        if (Le.get32(b, 0) != Xattr.MAGIC) {
            problem(ino, String.format("xattr block %d: bad magic 0x%08X", blk, Le.get32(b, 0)));
            return;
        }
        if (r.csum) {
            byte[] copy = b.clone();
            long stored = Le.get32(copy, 16);
            Le.put32(copy, 16, 0);
            long c = r.seed().updateLe64(blk).update(copy).raw();
            if (c != stored) {
                problem(ino, String.format("xattr block %d: checksum 0x%08X vs expected 0x%08X", blk, stored, c));
            }
        }
        Xattr.Cursor c = new Xattr.Cursor(b, Xattr.BLOCK_HEADER, b.length);
        while (c.next()) {
            if (c.valueOffs + c.valueSize > b.length) {
                problem(ino, "xattr block " + blk + ": entry at offset " + c.offset + " overruns the block");
                return;
            }
            if (c.hash != 0 && c.valueInum == 0) {
                byte[] value = java.util.Arrays.copyOfRange(b, c.valueOffs, (int) (c.valueOffs + c.valueSize));
                long h = Xattr.entryHash(c.suffix(), value) & 0xFFFFFFFFL;
                if (h != c.hash) {
                    problem(ino, String.format("xattr block %d: entry hash 0x%08X vs expected 0x%08X", blk, c.hash, h));
                }
            }
        }
        if (c.damage != null) {
            problem(ino, "xattr block " + blk + ": " + c.damage);
        }
    }

    // ---------------------------------------------------------------- bitmaps and counts

    /**
     * The bytes of a bitmap block past the group's last bit are padding and must be all ones, as
     * e2fsprogs writes them and e2fsck checks them ("Padding at end of ... bitmap is not set").
     */
    private void checkPadding(int g, String kind, byte[] bitmap, int usedBytes) {
        for (int i = usedBytes; i < bitmap.length; i++) {
            if (bitmap[i] != (byte) 0xFF) {
                problem(0, "group " + g + ": padding at the end of the " + kind + " bitmap is not set (byte " + i + ")");
                return;
            }
        }
    }

    private void checkBitmapsAndCounts() throws IOException {
        for (Map.Entry<Long, Long> e : xattrBlockRefs.entrySet()) {
            byte[] b = r.readBlock(e.getKey());
            long rc = Le.get32(b, 4);
            if (rc != e.getValue()) {
                problem(0, "xattr block " + e.getKey() + ": reference count " + rc + " vs " + e.getValue() + " users");
            }
        }
        long totalFreeBlocks = 0;
        long totalFreeInodes = 0;
        int bpg = (int) r.sb.blocksPerGroup;
        // One bitmap bit per cluster (a block without bigalloc); counts are in clusters too.
        int cpg = (int) (bpg / ratio);
        for (int g = 0; g < r.groupCount; g++) {
            GroupDescriptor d = r.groups[g];
            long first = r.sb.firstDataBlock + (long) g * bpg;
            int n = (int) Math.min(cpg, Layout.ceilDiv(r.blocksCount - first, ratio));
            boolean blockUninit = (d.flags & GroupDescriptor.FLAG_BLOCK_UNINIT) != 0;
            byte[] bb = r.readBlock(d.blockBitmap);
            int free = 0;
            int extra = 0;
            int missing = 0;
            long firstExtra = -1;
            long firstMissing = -1;
            for (int i = 0; i < n; i++) {
                long b0 = first + i * ratio;
                int next = usedBlocks.nextSetBit((int) b0);
                boolean used = next >= 0 && next < b0 + ratio;
                if (!used) {
                    free++;
                }
                if (blockUninit) {
                    continue;
                }
                boolean marked = (bb[i >>> 3] & (1 << (i & 7))) != 0;
                if (marked && !used) {
                    extra++;
                    if (firstExtra < 0) {
                        firstExtra = b0;
                    }
                } else if (!marked && used) {
                    missing++;
                    if (firstMissing < 0) {
                        firstMissing = b0;
                    }
                }
            }
            String unit = ratio > 1 ? "cluster" : "block";
            if (extra > 0) {
                problem(0, "group " + g + ": block bitmap marks " + extra + " unused " + unit + "(s) as used, first "
                        + firstExtra);
            }
            if (missing > 0) {
                problem(0, "group " + g + ": block bitmap misses " + missing + " used " + unit + "(s), first " + firstMissing);
            }
            if (!blockUninit) {
                checkPadding(g, "block", bb, cpg / 8);
            }
            if (r.csum && !blockUninit) {
                long c = r.seed().update(bb, 0, cpg / 8).raw();
                long stored = d.blockBitmapCsum & (r.descSize >= 64 ? 0xFFFFFFFFL : 0xFFFF);
                if ((c & (r.descSize >= 64 ? 0xFFFFFFFFL : 0xFFFF)) != stored) {
                    problem(0, String.format("group %d: block bitmap checksum 0x%08X vs expected 0x%08X", g, stored, c));
                }
            }
            if (d.freeBlocks != free) {
                problem(0, "group " + g + ": free " + unit + "s count " + d.freeBlocks + " vs " + free + " counted");
            }
            totalFreeBlocks += free;

            boolean inodeUninit = (d.flags & GroupDescriptor.FLAG_INODE_UNINIT) != 0;
            byte[] ib = r.readBlock(d.inodeBitmap);
            int freeInodes = 0;
            int iExtra = 0;
            int iMissing = 0;
            long firstIMissing = -1;
            long firstIExtra = -1;
            for (int i = 0; i < r.inodesPerGroup; i++) {
                long ino = (long) g * r.inodesPerGroup + i + 1;
                boolean used = usedInodes.get((int) ino);
                if (!used) {
                    freeInodes++;
                }
                boolean marked = !inodeUninit && (ib[i >>> 3] & (1 << (i & 7))) != 0;
                if (marked && !used) {
                    iExtra++;
                    if (firstIExtra < 0) {
                        firstIExtra = ino;
                    }
                } else if (!marked && used) {
                    iMissing++;
                    if (firstIMissing < 0) {
                        firstIMissing = ino;
                    }
                }
            }
            if (iExtra > 0) {
                problem(0, "group " + g + ": inode bitmap marks " + iExtra + " unused inode(s) as used, first " + firstIExtra);
            }
            if (iMissing > 0) {
                problem(0, "group " + g + ": inode bitmap misses " + iMissing + " used inode(s), first " + firstIMissing);
            }
            if (!inodeUninit) {
                checkPadding(g, "inode", ib, (int) (r.inodesPerGroup / 8));
            }
            if (r.csum && !inodeUninit) {
                long c = r.seed().update(ib, 0, (int) (r.inodesPerGroup / 8)).raw();
                long mask = r.descSize >= 64 ? 0xFFFFFFFFL : 0xFFFF;
                if ((c & mask) != (d.inodeBitmapCsum & mask)) {
                    problem(0, String.format("group %d: inode bitmap checksum 0x%08X vs expected 0x%08X", g,
                            d.inodeBitmapCsum, c & mask));
                }
            }
            if (d.freeInodes != freeInodes) {
                problem(0, "group " + g + ": free inodes count " + d.freeInodes + " vs " + freeInodes + " counted");
            }
            totalFreeInodes += freeInodes;
        }
        if (r.sb.freeBlocksCount != totalFreeBlocks * ratio) {
            problem(0, "superblock: free blocks count " + r.sb.freeBlocksCount + " vs " + totalFreeBlocks * ratio
                    + " counted");
        }
        if (r.sb.freeInodesCount != totalFreeInodes) {
            problem(0, "superblock: free inodes count " + r.sb.freeInodesCount + " vs " + totalFreeInodes + " counted");
        }
    }
}
