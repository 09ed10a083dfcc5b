package dev.kiln.ext4;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * ext2/ext3 block maps ({@code Documentation/filesystems/ext4/blockmap.rst}): i_block[0..11]
 * point at data, [12] at a block of pointers, [13] at a block of pointer blocks, [14] one
 * level deeper. A zero pointer is a hole.
 */
final class IndirectMap implements Ext4Reader.BlockMap {
    private final Ext4Reader r;
    private final long ino;
    private final long[] direct = new long[15];
    private final int apb;
    private long cachedBlock = -1;
    private byte[] cached;

    IndirectMap(Ext4Reader r, long ino, Inode in) {
        this.r = r;
        this.ino = ino;
        for (int i = 0; i < 15; i++) {
            direct[i] = Le.get32(in.block, i * 4);
        }
        this.apb = r.blockSize / 4;
    }

    private long pointer(long blk, long index) throws IOException {
        if (blk == 0) {
            return 0;
        }
        r.checkBlock(blk, "indirect block of inode " + ino);
        if (blk != cachedBlock) {
            cached = r.readBlock(blk);
            cachedBlock = blk;
        }
        return Le.get32(cached, (int) index * 4);
    }

    @Override
    public long physical(long lb) throws IOException {
        long result;
        if (lb < 12) {
            result = direct[(int) lb];
        } else {
            long x = lb - 12;
            if (x < apb) {
                result = pointer(direct[12], x);
            } else {
                x -= apb;
                long apb2 = (long) apb * apb;
                if (x < apb2) {
                    result = pointer(pointer(direct[13], x / apb), x % apb);
                } else {
                    x -= apb2;
                    if (x >= apb2 * apb) {
                        return 0;
                    }
                    result = pointer(pointer(pointer(direct[14], x / apb2), (x / apb) % apb), x % apb);
                }
            }
        }
        if (result != 0) {
            r.checkBlock(result, "data block of inode " + ino + " (logical " + lb + ")");
        }
        return result;
    }

    /** Every indirect block reachable from the inode (for usage accounting). */
    @Override
    public List<Long> metadataBlocks() {
        List<Long> out = new ArrayList<>();
        try {
            collect(direct[12], 1, out);
            collect(direct[13], 2, out);
            collect(direct[14], 3, out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }

    private void collect(long blk, int level, List<Long> out) throws IOException {
        if (blk == 0) {
            return;
        }
        r.checkBlock(blk, "indirect block of inode " + ino);
        out.add(blk);
        if (out.size() > r.blocksCount) {
            throw new CorruptImageException(r.path() + ": inode " + ino + ": indirect blocks loop");
        }
        if (level == 1) {
            return;
        }
        byte[] b = r.readBlock(blk);
        for (int i = 0; i < apb; i++) {
            collect(Le.get32(b, i * 4), level - 1, out);
        }
    }

    /**
     * Data blocks mapped by the inode below {@code maxLogical}: {logical, physical} pairs. Walks
     * the pointer tree rather than every logical block, so a damaged size costs nothing.
     */
    List<long[]> dataBlocks(long maxLogical) throws IOException {
        List<long[]> out = new ArrayList<>();
        for (int i = 0; i < 12 && i < maxLogical; i++) {
            if (direct[i] != 0) {
                r.checkBlock(direct[i], "data block of inode " + ino);
                out.add(new long[] {i, direct[i]});
            }
        }
        long apb1 = apb;
        long base = 12;
        long[] span = {1, apb1, apb1 * apb1};
        for (int level = 1; level <= 3; level++) {
            walkData(direct[11 + level], level, base, span, maxLogical, out);
            base += span[level - 1] * apb1;
        }
        return out;
    }

    private void walkData(long blk, int level, long base, long[] span, long maxLogical, List<long[]> out)
            throws IOException {
        if (blk == 0 || base >= maxLogical) {
            return;
        }
        r.checkBlock(blk, "indirect block of inode " + ino);
        byte[] b = r.readBlock(blk);
        long step = span[level - 1];
        for (int i = 0; i < apb; i++) {
            long p = Le.get32(b, i * 4);
            long lb = base + i * step;
            if (p == 0 || lb >= maxLogical) {
                continue;
            }
            if (level == 1) {
                r.checkBlock(p, "data block of inode " + ino);
                out.add(new long[] {lb, p});
                if (out.size() > r.blocksCount) {
                    throw new CorruptImageException(r.path() + ": inode " + ino + " maps more blocks than the file system has");
                }
            } else {
                walkData(p, level - 1, lb, span, maxLogical, out);
            }
        }
    }
}
