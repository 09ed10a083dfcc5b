package dev.kiln.ext4;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * An inode's extent tree, loaded and checked: magic, entry counts against eh_max, depth within
 * the format's limit and decreasing by one per level, children inside the file system and
 * visited once, leaf extents in increasing logical order without overlap.
 */
final class ExtentMap implements Ext4Reader.BlockMap {
    private final long[] logical;
    private final long[] physical;
    private final int[] length;
    private final boolean[] unwritten;
    private final List<Long> nodes;
    private int last;

    private ExtentMap(List<long[]> leaves, List<Long> nodes) {
        int n = leaves.size();
        logical = new long[n];
        physical = new long[n];
        length = new int[n];
        unwritten = new boolean[n];
        for (int i = 0; i < n; i++) {
            long[] e = leaves.get(i);
            logical[i] = e[0];
            physical[i] = e[1];
            length[i] = (int) e[2];
            unwritten[i] = e[3] != 0;
        }
        this.nodes = nodes;
    }

    static ExtentMap load(Ext4Reader r, long ino, Inode in) throws IOException {
        List<long[]> leaves = new ArrayList<>();
        List<Long> nodes = new ArrayList<>();
        Set<Long> seen = new HashSet<>();
        walk(r, ino, in.block, 0, 60, -1, leaves, nodes, seen, "i_block");
        for (int i = 1; i < leaves.size(); i++) {
            long[] a = leaves.get(i - 1);
            long[] b = leaves.get(i);
            if (b[0] < a[0] + a[2]) {
                throw new CorruptImageException(String.format("%s: inode %d: extent at logical block %d overlaps "
                        + "the previous one (%d+%d)", r.path(), ino, b[0], a[0], a[2]));
            }
        }
        return new ExtentMap(leaves, nodes);
    }

    private static void walk(Ext4Reader r, long ino, byte[] b, int off, int size, int expectDepth,
            List<long[]> leaves, List<Long> nodes, Set<Long> seen, String where) throws IOException {
        int magic = Le.get16(b, off);
        int entries = Le.get16(b, off + 2);
        int max = Le.get16(b, off + 4);
        int depth = Le.get16(b, off + 6);
        String at = r.path() + ": inode " + ino + ": extent node at " + where;
        if (magic != ExtentTree.MAGIC) {
            throw new CorruptImageException(String.format("%s: bad magic 0x%04X vs expected 0x%04X", at, magic,
                    ExtentTree.MAGIC));
        }
        int capacity = (size - ExtentTree.HEADER) / ExtentTree.ENTRY;
        if (max > capacity || entries > max) {
            throw new CorruptImageException(at + ": " + entries + " entries, max " + max + ", room for " + capacity);
        }
        if (depth > ExtentTree.MAX_DEPTH || (expectDepth >= 0 && depth != expectDepth)) {
            throw new CorruptImageException(at + ": depth " + depth + (expectDepth >= 0 ? " where " + expectDepth
                    + " was expected" : " beyond the format's limit of " + ExtentTree.MAX_DEPTH));
        }
        for (int i = 0; i < entries; i++) {
            int p = off + ExtentTree.HEADER + i * ExtentTree.ENTRY;
            long lblk = Le.get32(b, p);
            if (depth == 0) {
                int len = Le.get16(b, p + 4);
                long start = (long) Le.get16(b, p + 6) << 32 | Le.get32(b, p + 8);
                boolean uninit = len > Layout.MAX_EXTENT_LEN;
                if (uninit) {
                    len -= Layout.MAX_EXTENT_LEN;
                }
                if (len == 0) {
                    throw new CorruptImageException(at + ": zero-length extent at logical block " + lblk);
                }
                r.checkBlock(start, "extent start (inode " + ino + ", logical " + lblk + ")");
                r.checkBlock(start + len - 1, "extent end (inode " + ino + ", logical " + lblk + ")");
                leaves.add(new long[] {lblk, start, len, uninit ? 1 : 0});
            } else {
                long child = Le.get32(b, p + 4) | (long) Le.get16(b, p + 8) << 32;
                r.checkBlock(child, "extent index child (inode " + ino + ")");
                if (!seen.add(child) || seen.size() > r.blocksCount) {
                    throw new CorruptImageException(at + ": extent tree block " + child + " is referenced twice");
                }
                nodes.add(child);
                byte[] cb = r.readBlock(child);
                if (Le.get16(cb, 0) == ExtentTree.MAGIC && Le.get16(cb, 2) > 0
                        && Le.get32(cb, ExtentTree.HEADER) != lblk) {
                    // The index entry's start must be its child's first start (e2fsck: "Logical start
                    // does not match logical start at next level").
                    throw new CorruptImageException(at + ": index entry starts at logical block " + lblk
                            + " but its child (block " + child + ") starts at " + Le.get32(cb, ExtentTree.HEADER));
                }
                if (r.csum) {
                    int tail = ExtentTree.HEADER + Le.get16(cb, 4) * ExtentTree.ENTRY;
                    if (tail + 4 <= cb.length) {
                        Inode in = r.readInode(ino);
                        long c = r.inodeSeed(ino, in.generation).update(cb, 0, tail).raw();
                        if (c != Le.get32(cb, tail)) {
                            throw new CorruptImageException(String.format("%s: inode %d: extent block %d has bad "
                                    + "checksum 0x%08X vs expected 0x%08X", r.path(), ino, child, Le.get32(cb, tail), c));
                        }
                    }
                }
                walk(r, ino, cb, 0, cb.length, depth - 1, leaves, nodes, seen, "block " + child);
            }
        }
    }

    /**
     * The byte ranges that written extents cover below {@code size}, as {@code {offset,
     * length}} pairs in order, touching ones merged; the rest of the file reads as zeros.
     */
    long[] dataRegions(int blockSize, long size) {
        long[] out = new long[logical.length * 2];
        int n = 0;
        for (int i = 0; i < logical.length; i++) {
            long from = logical[i] * blockSize;
            if (unwritten[i] || from >= size) {
                continue;
            }
            long to = Math.min(size, (logical[i] + length[i]) * blockSize);
            if (n > 0 && out[n - 2] + out[n - 1] == from) {
                out[n - 1] = to - out[n - 2];
            } else {
                out[n++] = from;
                out[n++] = to - from;
            }
        }
        return java.util.Arrays.copyOf(out, n);
    }

    @Override
    public long physical(long lb) {
        int n = logical.length;
        if (n == 0) {
            return 0;
        }
        int i = last;
        if (!(i < n && logical[i] <= lb && lb < logical[i] + length[i])) {
            int lo = 0;
            int hi = n - 1;
            i = -1;
            while (lo <= hi) {
                int mid = (lo + hi) >>> 1;
                if (logical[mid] <= lb) {
                    i = mid;
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            if (i < 0 || lb >= logical[i] + length[i]) {
                return 0;
            }
            last = i;
        }
        return unwritten[i] ? 0 : physical[i] + (lb - logical[i]);
    }

    @Override
    public List<Long> metadataBlocks() {
        return nodes;
    }

    /** Data extents as {logical, physical, length, unwritten}. */
    List<long[]> extents() {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < logical.length; i++) {
            out.add(new long[] {logical[i], physical[i], length[i], unwritten[i] ? 1 : 0});
        }
        return out;
    }
}
