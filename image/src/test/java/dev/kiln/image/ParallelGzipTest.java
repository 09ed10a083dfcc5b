package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.zip.Deflater;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Parallel gzip: the same bytes back, the same output for any number of threads, a valid gzip file. */
class ParallelGzipTest {
    @TempDir Path tmp;

    private static byte[] sample(int size, long seed) {
        Random r = new Random(seed);
        byte[] b = new byte[size];
        int i = 0;
        while (i < size) {
            int run = Math.min(size - i, 1 + r.nextInt(200_000));
            switch (r.nextInt(3)) {
                case 0 -> { } // zeros, like an image's holes
                case 1 -> {
                    byte[] x = new byte[run];
                    r.nextBytes(x);
                    System.arraycopy(x, 0, b, i, run);
                }
                default -> {
                    byte[] text = ("line " + r.nextInt(1000) + " of some repetitive text\n").getBytes();
                    for (int k = 0; k < run; k++) {
                        b[i + k] = text[k % text.length];
                    }
                }
            }
            i += run;
        }
        return b;
    }

    private static byte[] gzip(byte[] data, int threads) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ParallelGzip.compress(new ByteArrayInputStream(data), out, Deflater.DEFAULT_COMPRESSION, pool, threads * 2);
            return out.toByteArray();
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void roundTripsAndIsIndependentOfThreads() throws Exception {
        int c = ParallelGzip.CHUNK;
        for (int size : new int[] {0, 1, 1000, c - 1, c, c + 1, 3 * c + c / 2}) {
            byte[] data = sample(size, size);
            byte[] one = gzip(data, 1);
            byte[] four = gzip(data, 4);
            assertArrayEquals(one, four, "size " + size + ": the output does not depend on the threads");
            try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(one))) {
                assertArrayEquals(data, in.readAllBytes(), "size " + size);
            }
        }
    }

    @Test
    void zeroChunksGiveWhatDeflatingThemGives() throws Exception {
        // An image's holes: whole chunks of zeros after zeros take the cached output; it must be
        // the bytes zlib gives for them, and the stream must stay one that gunzip reads.
        int c = ParallelGzip.CHUNK;
        byte[] data = new byte[6 * c + 4321];
        byte[] head = sample(c + 999, 5);
        System.arraycopy(head, 0, data, 0, head.length);
        byte[] middle = sample(50_000, 6);
        System.arraycopy(middle, 0, data, 4 * c + 100, middle.length);
        ParallelGzip.Slot cached = new ParallelGzip.Slot(Deflater.DEFAULT_COMPRESSION);
        ParallelGzip.Slot zeros = new ParallelGzip.Slot(Deflater.DEFAULT_COMPRESSION);
        zeros.length = c;
        zeros.dict(zeros); // all zeros, the full 32 KiB
        cached.length = c;
        cached.dict(zeros);
        cached.deflate(false, new ParallelGzip.ZeroChunk(Deflater.DEFAULT_COMPRESSION));
        Deflater d = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        try {
            int n = ParallelGzip.deflateInto(d, zeros.in, c, zeros.dict, zeros.dictLength, false, zeros);
            assertArrayEquals(java.util.Arrays.copyOf(zeros.out, n), java.util.Arrays.copyOf(cached.out, cached.outLength));
        } finally {
            d.end();
            cached.deflater.end();
            zeros.deflater.end();
        }
        byte[] one = gzip(data, 1);
        assertArrayEquals(one, gzip(data, 3), "the output does not depend on the threads");
        try (GZIPInputStream in = new GZIPInputStream(new ByteArrayInputStream(one))) {
            assertArrayEquals(data, in.readAllBytes());
        }
        ExternalTools.require("gzip");
        Path gz = tmp.resolve("zeros.gz");
        Files.write(gz, one);
        var t = ExternalTools.run(List.of("gzip", "-t", gz.toString()));
        assertEquals(0, t.exit(), t.out());
    }

    @Test
    void compressesAboutAsWellAsOneStream() throws Exception {
        byte[] data = sample(6 * ParallelGzip.CHUNK, 9);
        ByteArrayOutputStream plain = new ByteArrayOutputStream();
        try (var gz = new java.util.zip.GZIPOutputStream(plain)) {
            gz.write(data);
        }
        int parallel = gzip(data, 2).length;
        assertTrue(parallel < plain.size() * 1.01 + 1024, parallel + " vs " + plain.size() + ": the dictionaries keep the ratio");
    }

    @Test
    void gunzipAcceptsIt() throws Exception {
        ExternalTools.require("gzip");
        byte[] data = sample(2 * ParallelGzip.CHUNK + 77, 4);
        Path in = tmp.resolve("x");
        Files.write(in, data);
        Path out = Files.createFile(tmp.resolve("x.gz"));
        String sha = ParallelGzip.compress(in, out, Deflater.DEFAULT_COMPRESSION);
        var s = ExternalTools.run(List.of("sha256sum", out.toString()));
        assertEquals(s.out().split(" ")[0], sha, "the digest computed while writing is sha256sum's of the file");
        var t = ExternalTools.run(List.of("gzip", "-t", out.toString()));
        assertEquals(0, t.exit(), t.out());
        var l = ExternalTools.run(List.of("gzip", "-l", out.toString()));
        assertTrue(l.out().contains(Integer.toString(data.length)), l.out());
    }
}
