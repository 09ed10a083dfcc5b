package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The allocator against a plain first-fit model over a boolean array: the same requests must
 * get the same blocks, whatever mix of runs, contiguous requests and frees (the allocator
 * remembers the free run it last found; a free or a contiguous allocation must forget it).
 * Fixed seed; {@code -Dkiln.test.seed=N} tries another.
 */
class BlockAllocatorTest {
    private static final long SEED = Long.getLong("kiln.test.seed", 20261203L);

    /** First fit from a cursor, as documented: the lowest free block at or after it. */
    private static final class Model {
        final boolean[] used;
        long cursor;

        Model(BitSet fixed, int blocks) {
            used = new boolean[blocks];
            for (int i = fixed.nextSetBit(0); i >= 0 && i < blocks; i = fixed.nextSetBit(i + 1)) {
                used[i] = true;
            }
            cursor = firstClear(0);
        }

        int firstClear(long from) {
            int i = (int) from;
            while (i < used.length && used[i]) {
                i++;
            }
            return i;
        }

        long[] allocateRun(long max) {
            int start = firstClear(cursor);
            if (start >= used.length) {
                return null;
            }
            int end = start;
            while (end < used.length && !used[end] && end - start < max) {
                used[end++] = true;
            }
            cursor = end;
            return new long[] {start, end - start};
        }

        long allocateContiguous(long goal, long len) {
            for (long s = firstClear(goal); s + len <= used.length; s = firstClear(s + 1)) {
                boolean free = true;
                for (long i = s; i < s + len; i++) {
                    free &= !used[(int) i];
                }
                if (free) {
                    for (long i = s; i < s + len; i++) {
                        used[(int) i] = true;
                    }
                    if (s == cursor) {
                        cursor = s + len;
                    }
                    return s;
                }
            }
            return -1;
        }

        void free(long start, long len) {
            for (long i = start; i < start + len; i++) {
                used[(int) i] = false;
            }
            cursor = Math.min(cursor, start);
        }
    }

    @Test
    void takesTheBlocksFirstFitTakes() {
        Random rnd = new Random(SEED);
        for (int round = 0; round < 60; round++) {
            int blocks = 64 + rnd.nextInt(4000);
            BitSet fixed = new BitSet();
            for (int g = 0; g < blocks; g += 1 + rnd.nextInt(700)) { // group metadata islands
                fixed.set(g, Math.min(blocks, g + 1 + rnd.nextInt(20)));
            }
            BlockAllocator a = new BlockAllocator(fixed, blocks);
            Model m = new Model(fixed, blocks);
            List<long[]> taken = new ArrayList<>();
            for (int op = 0; op < 400; op++) {
                String where = "seed " + SEED + " round " + round + " op " + op;
                int what = rnd.nextInt(10);
                if (what < 6) {
                    long max = 1 + rnd.nextInt(rnd.nextBoolean() ? 3 : 300);
                    long[] got = a.allocateRun(max);
                    assertArrayEquals(m.allocateRun(max), got, where);
                    if (got != null) {
                        taken.add(got);
                    }
                } else if (what < 8) {
                    long goal = rnd.nextInt(blocks);
                    long len = 1 + rnd.nextInt(50);
                    long got = a.allocateContiguous(goal, len);
                    assertEquals(m.allocateContiguous(goal, len), got, where);
                    if (got >= 0) {
                        taken.add(new long[] {got, len});
                    }
                } else if (!taken.isEmpty()) {
                    long[] t = taken.remove(rnd.nextInt(taken.size()));
                    a.free(t[0], t[1]);
                    m.free(t[0], t[1]);
                }
                long free = 0;
                for (int i = 0; i < blocks; i++) {
                    assertEquals(m.used[i], a.isUsed(i), where + " block " + i);
                    free += m.used[i] ? 0 : 1;
                }
                assertEquals(free, a.freeCount(), where);
            }
        }
    }
}
