package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dir: walker's read-ahead: small files go through one 8 MiB ring that the writer frees in
 * walk order, and entries are handed over in batches. A tree whose files are close to the 1 MiB
 * read-ahead limit wraps the ring many times (a file that does not fit before its end starts
 * again at 0); hard-linked files are read ahead with their first name. Content is read back
 * with kiln's reader, the image checked by e2fsck, and two builds must be byte-identical
 * whatever the two threads' timing was.
 */
class DirSourceIT {
    private static final long SEED = Long.getLong("kiln.dirsource.seed", 20261203L);

    @TempDir Path tmp;

    @Test
    void theReadAheadRingWrapsWithoutMixingFilesAndHardLinksKeepTheirContent() throws Exception {
        ExternalTools.require("e2fsck");
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(SEED);
        List<String> names = new ArrayList<>();
        List<byte[]> data = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            // Sizes from a few bytes to just under, at and just over the 1 MiB limit: ~45 MiB in all.
            int size = switch (i % 4) {
                case 0 -> (1 << 20) - r.nextInt(3);
                case 1 -> 700_000 + r.nextInt(300_000);
                case 2 -> r.nextInt(5000);
                default -> (1 << 20) + r.nextInt(2);
            };
            byte[] b = new byte[size];
            r.nextBytes(b);
            String name = "/d" + (i % 7) + "/f" + i;
            Files.createDirectories(src.resolve("d" + (i % 7)));
            Files.write(src.resolve(name.substring(1)), b);
            names.add(name);
            data.add(b);
        }
        // Hard links whose first name (in walk order: d0 < d6 < z) is a small file, a file
        // near the limit and a streamed one.
        Files.createLink(src.resolve("z-small"), src.resolve("d2/f2"));
        Files.createLink(src.resolve("z-near"), src.resolve("d1/f1"));
        Files.createLink(src.resolve("z-large"), src.resolve("d3/f3"));
        Path a = build(src, "a.img");
        Path b = build(src, "b.img");
        ExternalTools.assertFsckClean(a);
        assertEquals(-1L, Files.mismatch(a, b), "two builds of the same tree are identical");
        try (Ext4Reader rd = Ext4Reader.open(a)) {
            for (int i = 0; i < names.size(); i++) {
                assertArrayEquals(data.get(i), rd.readAllBytes(names.get(i)), names.get(i));
            }
            for (String[] link : new String[][] {{"/z-small", "/d2/f2"}, {"/z-near", "/d1/f1"}, {"/z-large", "/d3/f3"}}) {
                assertEquals(rd.stat(link[1]).ino(), rd.stat(link[0]).ino(), link[0] + " is a link to " + link[1]);
                assertArrayEquals(rd.readAllBytes(link[1]), rd.readAllBytes(link[0]), link[0]);
            }
        }
    }

    private Path build(Path src, String name) throws Exception {
        Path img = tmp.resolve(name);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(128L << 20).build())) {
            new DirSource(src).applyTo(w);
        }
        return img;
    }
}
