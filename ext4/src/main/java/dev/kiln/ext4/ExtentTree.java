package dev.kiln.ext4;

import java.util.ArrayList;
import java.util.List;

/**
 * Extent trees ({@code Documentation/filesystems/ext4/ifork.rst}). Every node starts with a
 * 12-byte header (magic 0xF30A, entries, max, depth, generation), followed by 12-byte entries:
 * leaves (logical block u32, length u16, physical hi u16, physical lo u32) at depth 0, indexes
 * (logical block u32, child lo u32, child hi u16, unused u16) above. The root lives in the
 * inode's 60-byte i_block (up to 4 entries); a node in its own block holds (B-12)/12 entries
 * and, with metadata_csum, a crc32c tail right after them.
 */
final class ExtentTree {
    static final int MAGIC = 0xF30A;
    static final int HEADER = 12;
    static final int ENTRY = 12;
    static final int ROOT_MAX = 4;
    static final int MAX_DEPTH = 5;

    private ExtentTree() {}

    /** Allocates tree blocks; the writer passes its allocator. */
    interface BlockSource {
        long allocate();
    }

    /** A tree block that must be written at the given physical block. */
    record NodeBlock(long block, byte[] data) {}

    /**
     * Builds the tree for the given extents (each {logical, physical, length}), fills the
     * inode's i_block with the root, and returns the blocks to write.
     */
    static List<NodeBlock> build(List<long[]> extents, byte[] iblock, int blockSize, BlockSource alloc,
            long ino, byte[] uuid, boolean csum) {
        List<NodeBlock> out = new ArrayList<>();
        int perBlock = (blockSize - HEADER) / ENTRY;
        // level entries: {firstLogical, a, b} where for leaves a=physical, b=len; for indexes a=child
        List<long[]> level = extents;
        int depth = 0;
        boolean leaves = true;
        while (level.size() > ROOT_MAX) {
            List<long[]> parents = new ArrayList<>();
            for (int i = 0; i < level.size(); i += perBlock) {
                List<long[]> chunk = level.subList(i, Math.min(level.size(), i + perBlock));
                long blk = alloc.allocate();
                byte[] data = new byte[blockSize];
                writeNode(data, 0, chunk, perBlock, depth, leaves);
                if (csum) {
                    int tail = HEADER + perBlock * ENTRY;
                    long c = Crc32c.inodeSeeded(uuid, ino, 0).update(data, 0, tail).raw();
                    Le.put32(data, tail, c);
                }
                out.add(new NodeBlock(blk, data));
                parents.add(new long[] {chunk.get(0)[0], blk, 0});
            }
            level = parents;
            depth++;
            leaves = false;
            if (depth > MAX_DEPTH) {
                throw new IllegalStateException("extent tree deeper than " + MAX_DEPTH);
            }
        }
        writeNode(iblock, 0, level, ROOT_MAX, depth, leaves);
        return out;
    }

    private static void writeNode(byte[] b, int off, List<long[]> entries, int max, int depth, boolean leaves) {
        Le.put16(b, off, MAGIC);
        Le.put16(b, off + 2, entries.size());
        Le.put16(b, off + 4, max);
        Le.put16(b, off + 6, depth);
        Le.put32(b, off + 8, 0);
        int p = off + HEADER;
        for (long[] e : entries) {
            Le.put32(b, p, e[0]);
            if (leaves) {
                Le.put16(b, p + 4, (int) e[2]);
                Le.put16(b, p + 6, (int) (e[1] >>> 32));
                Le.put32(b, p + 8, e[1]);
            } else {
                Le.put32(b, p + 4, e[1]);
                Le.put16(b, p + 8, (int) (e[1] >>> 32));
                Le.put16(b, p + 10, 0);
            }
            p += ENTRY;
        }
    }

    /** Number of tree blocks (outside the inode) needed for this many extents. */
    static long treeBlocks(long extents, int blockSize) {
        int perBlock = (blockSize - HEADER) / ENTRY;
        long total = 0;
        long n = extents;
        while (n > ROOT_MAX) {
            n = Layout.ceilDiv(n, perBlock);
            total += n;
        }
        return total;
    }
}
