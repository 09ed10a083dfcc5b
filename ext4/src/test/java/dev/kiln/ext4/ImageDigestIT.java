package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayInputStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The writer's image digest (holes hashed from memory, written regions read back from the page
 * cache, or directly when written with O_DIRECT) against sha256sum over the whole file, on
 * images with holes, odd sizes and 1 KiB blocks.
 */
class ImageDigestIT {
    @TempDir Path tmp;

    private void check(String name, Ext4Options opts, int files, long seed) throws Exception {
        Path img = tmp.resolve(name);
        Random rnd = new Random(seed);
        Ext4Writer w = Ext4Writer.create(img, opts);
        try (w) {
            Metadata md = Metadata.of(0644, Instant.EPOCH);
            for (int i = 0; i < files; i++) {
                byte[] b = new byte[rnd.nextInt(3) == 0 ? rnd.nextInt(200_000) : rnd.nextInt(5000)];
                if (rnd.nextBoolean()) {
                    rnd.nextBytes(b); // else zeros: a sparse file
                }
                w.file("/d" + (i % 7) + "/f" + i, md, b.length, new ByteArrayInputStream(b));
            }
        }
        String ours = HexFormat.of().formatHex(w.sha256());
        var r = ExternalTools.run(List.of("sha256sum", img.toString()));
        assertEquals(0, r.exit(), r.out());
        assertEquals(r.out().split(" ")[0], ours, name + ": the digest equals sha256sum's");
        ExternalTools.assertFsckClean(img);
    }

    @Test
    void digestEqualsSha256sum() throws Exception {
        long seed = Long.getLong("kiln.digest.seed", 20261203L);
        check("4k.ext4", Ext4Options.builder(64L << 20).build(), 300, seed);
        check("4k-direct.ext4", Ext4Options.builder(64L << 20).directIo(true).build(), 300, seed + 4);
        check("1k-odd.ext4", Ext4Options.builder((33L << 20) + 3072).blockSize(1024).build(), 200, seed + 1);
        check("empty.ext4", Ext4Options.builder(16L << 20).build(), 0, seed + 2);
        check("nojournal.ext4", Ext4Options.builder(40L << 20).journal(false).sparseFiles(false).build(), 50, seed + 3);
    }

    @Test
    void aLargeWrittenVolumeReadInLargerPiecesGivesTheSameDigest() throws Exception {
        // Over 512 MiB written: the reader's 4 MiB pieces (1 MiB below that, as above).
        Path img = tmp.resolve("large.ext4");
        Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(700L << 20).sparseFiles(false).build());
        Random rnd = new Random(Long.getLong("kiln.digest.seed", 20261203L));
        try (w) {
            Metadata md = Metadata.of(0644, Instant.EPOCH);
            byte[] b = new byte[3 << 20];
            for (int i = 0; i < 200; i++) { // 600 MiB, every fifth piece random, the others zeros written out
                java.util.Arrays.fill(b, (byte) 0);
                if (i % 5 == 0) {
                    rnd.nextBytes(b);
                }
                w.file("/f" + i, md, b.length - rnd.nextInt(5000), new ByteArrayInputStream(b));
            }
        }
        String ours = HexFormat.of().formatHex(w.sha256());
        var r = ExternalTools.run(List.of("sha256sum", img.toString()));
        assertEquals(0, r.exit(), r.out());
        assertEquals(r.out().split(" ")[0], ours, "the digest equals sha256sum's");
        ExternalTools.assertFsckClean(img);
    }

    @Test
    void notBeforeClose() throws Exception {
        try (Ext4Writer w = Ext4Writer.create(tmp.resolve("open.ext4"), Ext4Options.builder(16L << 20).build())) {
            assertThrows(IllegalStateException.class, w::sha256);
        }
    }
}
