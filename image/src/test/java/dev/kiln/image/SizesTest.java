package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Locale;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Sizes as kiln prints them, compared with what the JDK's Formatter prints for the same value. */
class SizesTest {
    /** What human() printed before it stopped using the Formatter (the oracle). */
    private static String formatted(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return u == 0 ? bytes + " B" : String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    @Test
    void humanSizesRoundAsPercentPointOneFDoes() {
        long seed = Long.getLong("kiln.test.seed", 20261205L);
        SplittableRandom rnd = new SplittableRandom(seed);
        // Every unit's edges, the half-way points that round up, and random values of every magnitude.
        for (int shift = 0; shift <= 50; shift += 10) {
            long unit = 1L << shift;
            for (long d = -2; d <= 2; d++) {
                for (long k : new long[] {1, 2, 1023, 1024, 1025}) {
                    long v = k * unit + d;
                    if (v >= 0) {
                        assertEquals(formatted(v), Sizes.human(v), "seed " + seed + ": " + v);
                    }
                }
                long half = unit + unit / 20 + d; // x.05 of the unit, where half-up and half-even differ
                assertEquals(formatted(half), Sizes.human(half), "seed " + seed + ": " + half);
            }
        }
        for (int i = 0; i < 50_000; i++) {
            long v = rnd.nextLong(1L << rnd.nextInt(1, 62));
            assertEquals(formatted(v), Sizes.human(v), "seed " + seed + ": " + v);
        }
        assertEquals(formatted(Long.MAX_VALUE), Sizes.human(Long.MAX_VALUE));
        assertEquals("41.0 MiB", Sizes.human(41L << 20));
    }
}
