package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.io.ByteArrayInputStream;
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
                    BlockOutput out = new BlockOutput(ch, direct ? f : null)) {
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
}
