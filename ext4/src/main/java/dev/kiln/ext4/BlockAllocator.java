package dev.kiln.ext4;

import java.util.BitSet;

/**
 * First-fit block allocation over a bitmap of the whole file system. Deterministic: the same
 * sequence of requests gets the same blocks. A cursor remembers the lowest block that may be
 * free, so streaming allocation stays linear; frees move it back.
 */
final class BlockAllocator {
    private final BitSet used;
    private final long blocksCount;
    private long cursor;
    private long usedCount;
    /**
     * A run [freeFrom, freeTo) known to be free when it was found, less what allocateRun has
     * taken from its front since. Without it every one-block file scanned the bitmap up to the
     * next group's metadata (nextSetBit over up to 16 groups of blocks): 7 % of a build of a
     * million small files.
     */
    private long freeFrom = -1;
    private long freeTo = -1;

    BlockAllocator(BitSet fixed, long blocksCount) {
        this.used = (BitSet) fixed.clone();
        this.blocksCount = blocksCount;
        this.usedCount = used.cardinality();
        this.cursor = used.nextClearBit(0);
    }

    /** The first free run at or after the cursor, at most {@code max} blocks: {start, length}. */
    long[] allocateRun(long max) {
        long start = used.nextClearBit((int) cursor);
        if (start >= blocksCount) {
            return null;
        }
        long end;
        if (start >= freeFrom && start < freeTo) {
            end = freeTo;
        } else {
            int nextUsed = used.nextSetBit((int) start);
            end = nextUsed < 0 ? blocksCount : Math.min(nextUsed, blocksCount);
            freeFrom = start;
            freeTo = end;
        }
        long len = Math.min(max, end - start);
        used.set((int) start, (int) (start + len));
        usedCount += len;
        cursor = start + len;
        return new long[] {start, len};
    }

    /** The first free contiguous run of exactly {@code len} blocks at or after {@code goal}. */
    long allocateContiguous(long goal, long len) {
        long start = goal;
        while (true) {
            start = used.nextClearBit((int) start);
            if (start + len > blocksCount) {
                return -1;
            }
            int nextUsed = used.nextSetBit((int) start);
            long end = nextUsed < 0 ? blocksCount : nextUsed;
            if (end - start >= len) {
                used.set((int) start, (int) (start + len));
                freeFrom = freeTo = -1;
                usedCount += len;
                if (start == cursor) {
                    cursor = start + len;
                }
                return start;
            }
            start = end;
        }
    }

    long allocateOne() {
        long[] r = allocateRun(1);
        return r == null ? -1 : r[0];
    }

    void free(long start, long len) {
        used.clear((int) start, (int) (start + len));
        freeFrom = freeTo = -1; // blocks taken after the freed ones would lie inside the run
        usedCount -= len;
        if (start < cursor) {
            cursor = start;
        }
    }

    boolean isUsed(long block) {
        return used.get((int) block);
    }

    long freeCount() {
        return blocksCount - usedCount;
    }

    BitSet bitmap() {
        return used;
    }
}
