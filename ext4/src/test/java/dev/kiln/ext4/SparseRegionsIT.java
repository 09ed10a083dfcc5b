package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Files given as data regions (what {@code SEEK_DATA}/{@code SEEK_HOLE} report) make the same
 * image, byte for byte, as the same files streamed whole: regions that start and end inside
 * blocks, regions that share a block, regions wider than the data, zero blocks inside regions,
 * files that end in a hole. e2fsck checks the image and debugfs dumps every file, compared
 * with the host file it came from. The seed ({@code -Dkiln.sparse.seed}) picks the layouts.
 */
class SparseRegionsIT {
    @TempDir Path tmp;

    private record HostFile(Path path, long size, long[] regions) {}

    /** A host file holding random data in random places, and regions covering at least that data. */
    private HostFile make(Random rnd, int index, long size, int pieces) throws Exception {
        Path p = tmp.resolve("host-" + index);
        List<long[]> regions = new ArrayList<>();
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.setLength(size);
            long at = 0;
            for (int i = 0; i < pieces && at < size; i++) {
                long start = Math.min(size - 1, at + (rnd.nextInt(4) == 0 ? 0 : (long) (rnd.nextDouble() * size / pieces)));
                int len = (int) Math.min(size - start, 1 + rnd.nextInt(rnd.nextBoolean() ? 700 : 300_000));
                byte[] b = new byte[len];
                rnd.nextBytes(b);
                if (len > 10_000 && rnd.nextBoolean()) {
                    // Zero blocks inside a region stay holes, as when streamed.
                    java.util.Arrays.fill(b, len / 3, Math.min(len, len / 3 + 9000), (byte) 0);
                }
                f.seek(start);
                f.write(b);
                // Sometimes the region reported is wider than the data (file systems report whole blocks).
                long from = rnd.nextBoolean() ? Math.max(0, start - rnd.nextInt(5000)) : start;
                long to = rnd.nextBoolean() ? Math.min(size, start + len + rnd.nextInt(5000)) : start + len;
                if (!regions.isEmpty() && from <= regions.get(regions.size() - 1)[1]) {
                    regions.get(regions.size() - 1)[1] = Math.max(to, regions.get(regions.size() - 1)[1]);
                } else {
                    regions.add(new long[] {from, to});
                }
                at = start + len;
            }
        }
        long[] flat = new long[regions.size() * 2];
        for (int i = 0; i < regions.size(); i++) {
            flat[2 * i] = regions.get(i)[0];
            flat[2 * i + 1] = regions.get(i)[1] - regions.get(i)[0];
        }
        return new HostFile(p, size, flat);
    }

    /** The regions' bytes one after the other, as a sparse tar entry stores them. */
    private static InputStream regionBytes(Path p, long[] regions) throws Exception {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "r")) {
            for (int i = 0; i < regions.length; i += 2) {
                byte[] b = new byte[(int) regions[i + 1]];
                f.seek(regions[i]);
                f.readFully(b);
                out.writeBytes(b);
            }
        }
        return new java.io.ByteArrayInputStream(out.toByteArray());
    }

    private static Metadata md() {
        return Metadata.of(0644, Instant.ofEpochSecond(1_700_000_000L));
    }

    @ParameterizedTest
    @CsvSource({"4096, true", "1024, true", "4096, false"})
    void regionsMakeTheImageTheWholeContentMakes(int blockSize, boolean sparse) throws Exception {
        long seed = Long.getLong("kiln.sparse.seed", 22);
        Random rnd = new Random(seed + blockSize);
        List<HostFile> files = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            long size = 1 + (long) (rnd.nextDouble() * (i < 6 ? 64 << 10 : 6 << 20));
            files.add(make(rnd, i, size, 1 + rnd.nextInt(6)));
        }
        // One long mostly-hole file, data at both ends and in the middle.
        files.add(make(rnd, 99, 300L << 20, 3));
        Ext4Options opts = Ext4Options.builder(sparse ? 128L << 20 : 512L << 20).blockSize(blockSize)
                .sparseFiles(sparse).build();
        Path byRegions = tmp.resolve("regions.ext4");
        Path byStream = tmp.resolve("stream.ext4");
        byte[] d1;
        byte[] d2;
        // Closed by hand, not by try-with-resources: the summary exists only once the image is.
        Ext4Writer w1 = Ext4Writer.create(byRegions, opts);
        try {
            for (int i = 0; i < files.size(); i++) {
                HostFile f = files.get(i);
                w1.file("/f" + i, md(), f.size(), f.regions(), regionBytes(f.path(), f.regions()));
            }
        } finally {
            w1.close();
        }
        d1 = w1.contentDigest();
        long skipped = w1.summary().holesSkipped();
        assertTrue(sparse ? skipped > 290L << 20 : skipped == 0, "holes not read: " + skipped);
        Ext4Writer w2 = Ext4Writer.create(byStream, opts);
        try {
            for (int i = 0; i < files.size(); i++) {
                HostFile f = files.get(i);
                try (InputStream in = Files.newInputStream(f.path())) {
                    w2.file("/f" + i, md(), f.size(), in);
                }
            }
        } finally {
            w2.close();
        }
        d2 = w2.contentDigest();
        assertArrayEquals(d2, d1, "content digest, seed " + seed);
        assertEquals(-1, Files.mismatch(byRegions, byStream), "the images differ, seed " + seed);
        ExternalTools.assertFsckClean(byRegions);
        Path dump = tmp.resolve("dump");
        for (int i = 0; i < files.size(); i++) {
            Files.deleteIfExists(dump);
            ExternalTools.debugfs(byRegions, "dump /f" + i + " " + dump);
            assertEquals(-1, Files.mismatch(files.get(i).path(), dump), "/f" + i + " as debugfs reads it, seed " + seed);
        }
        if (sparse) {
            // The long file's holes are holes in the image too: far fewer blocks than its size.
            String stat = ExternalTools.debugfs(byRegions, "stat /f12");
            long blocks = Long.parseLong(stat.replaceAll("(?s).*Blockcount: (\\d+).*", "$1"));
            assertTrue(blocks * 512 < 8L << 20, "300 MiB of mostly holes took " + blocks * 512 + " bytes: " + stat);
        }
    }

    @org.junit.jupiter.api.Test
    void regionsOutOfOrderOrOverlappingAreRefused() throws Exception {
        Path p = tmp.resolve("x");
        Files.write(p, new byte[200]);
        try (Ext4Writer w = Ext4Writer.create(tmp.resolve("bad.ext4"), Ext4Options.builder(16L << 20).build())) {
            for (long[] regions : List.of(new long[] {0, 10, 5, 3}, new long[] {100, 10, 50, 10}, new long[] {-1, 4},
                    new long[] {0})) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> w.file("/x", md(), 200, regions, InputStream.nullInputStream()));
                assertTrue(e.getMessage().startsWith("/x: data regions"), e.getMessage());
            }
        }
    }

    @org.junit.jupiter.api.Test
    void aFileShorterThanItsRegionsSaysWhereItEnded() throws Exception {
        Path p = tmp.resolve("short");
        Files.write(p, new byte[] {1, 2, 3});
        try (Ext4Writer w = Ext4Writer.create(tmp.resolve("short.ext4"), Ext4Options.builder(16L << 20).build());
                InputStream in = Files.newInputStream(p)) {
            java.io.EOFException e = assertThrows(java.io.EOFException.class,
                    () -> w.file("/short", md(), 100_000, new long[] {0, 100_000}, in));
            assertEquals("/short: content ended after 3 of 100000 bytes", e.getMessage());
        }
    }
}
