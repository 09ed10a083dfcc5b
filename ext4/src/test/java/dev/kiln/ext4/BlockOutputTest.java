package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The gathering, background, optionally O_DIRECT output gives exactly the bytes written. */
class BlockOutputTest {
    @TempDir Path tmp;

    @Test
    void writesLandWhereAndInTheOrderTheyWereMade() throws Exception {
        Random r = new Random(7);
        int size = 3 * BlockOutput.BUFFER_BYTES + 12345;
        byte[] expected = new byte[size];
        for (boolean direct : new boolean[] {false, true}) {
            Path f = tmp.resolve("out-" + direct);
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.READ);
                    BlockOutput out = new BlockOutput(ch, direct ? f : null, false)) {
                r.setSeed(7);
                java.util.Arrays.fill(expected, (byte) 0);
                // Sequential runs (gathered), jumps backwards and forwards, rewrites of earlier
                // bytes, writes larger than a buffer, unaligned ones.
                for (int i = 0; i < 400; i++) {
                    int len = r.nextInt(5) == 0 ? r.nextInt(BlockOutput.BUFFER_BYTES + 5000) : r.nextInt(3) * 4096 + 4096;
                    int pos = r.nextInt(3) == 0 ? r.nextInt(size - len) : Math.min(size - len, (i * 8192) % (size - len));
                    if (r.nextBoolean()) {
                        pos &= ~4095;
                    }
                    byte[] b = new byte[len];
                    r.nextBytes(b);
                    out.write(b, 0, len, pos);
                    System.arraycopy(b, 0, expected, pos, len);
                    if (i % 97 == 0) {
                        out.drain();
                        byte[] got = new byte[len];
                        ch.read(java.nio.ByteBuffer.wrap(got), pos);
                        assertArrayEquals(b, got, "drained writes are readable");
                    }
                }
                out.drain();
            }
            byte[] got = Files.readAllBytes(f);
            org.junit.jupiter.api.Assertions.assertTrue(got.length <= expected.length, "nothing beyond the last write");
            assertArrayEquals(expected, java.util.Arrays.copyOf(got, expected.length), "direct=" + direct);
        }
    }

    /**
     * Copies from a host file ({@link BlockOutput#transfer}) land in order with the writes
     * around them: each may overwrite what the other wrote before it, buffered or not yet; the
     * source is closed once the copies queued before {@link BlockOutput#closeAfter} are done.
     */
    @Test
    void transfersLandInTheOrderTheyWereMadeAmongTheWrites() throws Exception {
        Random r = new Random(Long.getLong("kiln.test.seed", 23));
        int size = 3 * BlockOutput.BUFFER_BYTES + 12345;
        byte[] source = new byte[size];
        r.nextBytes(source);
        Path s = tmp.resolve("source");
        Files.write(s, source);
        for (boolean direct : new boolean[] {false, true}) {
            Path f = tmp.resolve("mixed-" + direct);
            byte[] expected = new byte[size];
            FileChannel src = FileChannel.open(s);
            try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.READ);
                    BlockOutput out = new BlockOutput(ch, direct ? f : null, false)) {
                for (int i = 0; i < 300; i++) {
                    int len = r.nextInt(4) == 0 ? r.nextInt(BlockOutput.BUFFER_BYTES + 5000) + 1 : r.nextInt(3) * 4096 + 4096;
                    int pos = r.nextInt(3) == 0 ? r.nextInt(size - len) : Math.min(size - len, (i * 8192) % (size - len));
                    if (r.nextBoolean()) {
                        pos &= ~4095;
                    }
                    if (r.nextBoolean()) {
                        byte[] b = new byte[len];
                        r.nextBytes(b);
                        out.write(b, 0, len, pos);
                        System.arraycopy(b, 0, expected, pos, len);
                    } else {
                        int from = r.nextInt(size - len);
                        out.transfer(src, "source", from, len, pos);
                        System.arraycopy(source, from, expected, pos, len);
                    }
                    if (i % 97 == 0) {
                        out.drain();
                        byte[] got = new byte[size];
                        ch.read(ByteBuffer.wrap(got), 0);
                        assertArrayEquals(expected, got, "drained writes and copies are readable (direct=" + direct + ")");
                    }
                }
                out.closeAfter(src);
                out.drain();
                org.junit.jupiter.api.Assertions.assertFalse(src.isOpen(), "the source is closed after its copies");
            }
            byte[] got = Files.readAllBytes(f);
            org.junit.jupiter.api.Assertions.assertTrue(got.length <= expected.length, "nothing beyond the last write");
            assertArrayEquals(expected, java.util.Arrays.copyOf(got, expected.length), "direct=" + direct);
        }
    }

    @Test
    void aSourceShorterThanItsCopyFailsTheOutputNamingIt() throws Exception {
        Path s = tmp.resolve("short");
        Files.write(s, new byte[10000]);
        Path f = tmp.resolve("out");
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ);
                BlockOutput out = new BlockOutput(ch, null, false);
                FileChannel src = FileChannel.open(s)) {
            out.transfer(src, "/usr/lib/big.so", 0, 50000, 4096);
            // Bad input, as a stream that ends early is (exit 3), not a failed write.
            IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.EOFException.class, out::drain);
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("/usr/lib/big.so")
                    && e.getMessage().contains("changed during the build"), e.getMessage());
            // A failed output closes what it is handed at once: nothing is queued behind a failure.
            FileChannel other = FileChannel.open(s);
            out.closeAfter(other);
            org.junit.jupiter.api.Assertions.assertFalse(other.isOpen());
        }
    }

    @Test
    void directAndBufferedImagesAreTheSameBytes() throws Exception {
        byte[][] images = new byte[2][];
        for (int k = 0; k < 2; k++) {
            Path f = tmp.resolve("img" + k);
            Ext4Options o = Ext4Options.builder(32L << 20).directIo(k == 1).build();
            try (Ext4Writer w = Ext4Writer.create(f, o)) {
                Random r = new Random(3);
                for (int i = 0; i < 300; i++) {
                    byte[] b = new byte[r.nextInt(20000)];
                    r.nextBytes(b);
                    w.file("/d" + (i % 7) + "/f" + i, Metadata.of(0644, Instant.EPOCH), b.length, new ByteArrayInputStream(b));
                }
            }
            images[k] = Files.readAllBytes(f);
        }
        assertArrayEquals(images[0], images[1]);
    }

    @Test
    void whatGoesThroughThePageCacheIsFlushedAsItIsWrittenWhenAsked() throws Exception {
        int size = (int) (2 * BlockOutput.FLUSH_AHEAD_BYTES + BlockOutput.BUFFER_BYTES);
        for (boolean ahead : new boolean[] {false, true}) {
            Path f = tmp.resolve("ahead-" + ahead);
            try (Counting ch = new Counting(f, null); BlockOutput out = new BlockOutput(ch, null, ahead)) {
                byte[] expected = writeSequentially(out, size);
                out.drainAndFlushes();
                if (ahead) {
                    org.junit.jupiter.api.Assertions.assertTrue(ch.forces.get() >= 1,
                            "a background fdatasync for " + size + " bytes written: " + ch.forces);
                } else {
                    org.junit.jupiter.api.Assertions.assertEquals(0, ch.forces.get(), "no flush unless asked");
                }
                assertArrayEquals(expected, Files.readAllBytes(f));
            }
        }
    }

    @Test
    void writesPastThePageCacheAreNotFlushedAhead() throws Exception {
        Path f = tmp.resolve("direct");
        try (Counting ch = new Counting(f, null); BlockOutput out = new BlockOutput(ch, f, true)) {
            org.junit.jupiter.api.Assumptions.assumeTrue(out.direct(), "the temporary directory's file system refuses O_DIRECT");
            byte[] expected = writeSequentially(out, (int) (2 * BlockOutput.FLUSH_AHEAD_BYTES));
            out.drainAndFlushes();
            org.junit.jupiter.api.Assertions.assertEquals(0, ch.forces.get(), "O_DIRECT writes are at the device already");
            assertArrayEquals(expected, Files.readAllBytes(f));
        }
    }

    @Test
    void aBackgroundFlushThatFailsFailsTheOutput() throws Exception {
        Path f = tmp.resolve("failing");
        IOException eio = new IOException("Input/output error (injected)");
        try (Counting ch = new Counting(f, eio); BlockOutput out = new BlockOutput(ch, null, true)) {
            writeSequentially(out, (int) (BlockOutput.FLUSH_AHEAD_BYTES + BlockOutput.BUFFER_BYTES));
            // The write-back error is reported once by the kernel: the output keeps it.
            IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class, out::drainAndFlushes);
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("injected"), e.getMessage());
        }
    }

    private static byte[] writeSequentially(BlockOutput out, int size) throws IOException {
        byte[] expected = new byte[size];
        new Random(11).nextBytes(expected);
        for (int pos = 0; pos < size; pos += 65536) {
            out.write(expected, pos, Math.min(65536, size - pos), pos);
        }
        return expected;
    }

    /** A file channel that counts {@code force} calls, or fails them. */
    private static final class Counting extends FileChannel {
        final java.util.concurrent.atomic.AtomicInteger forces = new java.util.concurrent.atomic.AtomicInteger();
        private final FileChannel ch;
        private final IOException failure;

        Counting(Path f, IOException failure) throws IOException {
            this.ch = FileChannel.open(f, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.READ);
            this.failure = failure;
        }

        @Override
        public void force(boolean metaData) throws IOException {
            forces.incrementAndGet();
            if (failure != null) {
                throw failure;
            }
            ch.force(metaData);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return ch.read(dst);
        }

        @Override
        public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
            return ch.read(dsts, offset, length);
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            return ch.write(src);
        }

        @Override
        public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
            return ch.write(srcs, offset, length);
        }

        @Override
        public long position() throws IOException {
            return ch.position();
        }

        @Override
        public FileChannel position(long p) throws IOException {
            ch.position(p);
            return this;
        }

        @Override
        public long size() throws IOException {
            return ch.size();
        }

        @Override
        public FileChannel truncate(long size) throws IOException {
            ch.truncate(size);
            return this;
        }

        @Override
        public long transferTo(long position, long count, java.nio.channels.WritableByteChannel target) throws IOException {
            return ch.transferTo(position, count, target);
        }

        @Override
        public long transferFrom(java.nio.channels.ReadableByteChannel src, long position, long count) throws IOException {
            return ch.transferFrom(src, position, count);
        }

        @Override
        public int read(ByteBuffer dst, long position) throws IOException {
            return ch.read(dst, position);
        }

        @Override
        public int write(ByteBuffer src, long position) throws IOException {
            return ch.write(src, position);
        }

        @Override
        public java.nio.MappedByteBuffer map(MapMode mode, long position, long size) throws IOException {
            return ch.map(mode, position, size);
        }

        @Override
        public java.nio.channels.FileLock lock(long position, long size, boolean shared) throws IOException {
            return ch.lock(position, size, shared);
        }

        @Override
        public java.nio.channels.FileLock tryLock(long position, long size, boolean shared) throws IOException {
            return ch.tryLock(position, size, shared);
        }

        @Override
        protected void implCloseChannel() throws IOException {
            ch.close();
        }
    }
}
