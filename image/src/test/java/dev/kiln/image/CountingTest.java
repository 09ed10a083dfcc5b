package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ExternalTools;
import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The progress counter: what it counts, and what it answers for available() without asking the file. */
class CountingTest {
    @TempDir Path tmp;

    /** A stream that counts how often it is asked what is available (a file channel's stream answers with two syscalls). */
    private static final class Asked extends FilterInputStream {
        int asked;

        Asked(InputStream in) {
            super(in);
        }

        @Override
        public int available() throws IOException {
            asked++;
            return super.available();
        }
    }

    @Test
    void aKnownLengthAnswersAvailableFromTheCountNotTheFile() throws Exception {
        byte[] data = new byte[100_000];
        new Random(Long.getLong("testSeed", 11)).nextBytes(data);
        Path f = Files.write(tmp.resolve("x.tar"), data);
        Counting.Progress progress = new Counting.Progress();
        Asked file = new Asked(Files.newInputStream(f));
        try (Counting c = new Counting(file, progress, Files.size(f))) {
            assertEquals(data.length, c.available());
            c.read();
            assertEquals(data.length - 1, c.available());
            c.readNBytes(999);
            assertEquals(data.length - 1000, c.available());
            assertEquals(5000, c.skip(5000));
            assertEquals(data.length - 6000, c.available());
            c.readAllBytes();
            assertEquals(0, c.available());
            assertEquals(data.length, progress.read);
        }
        assertEquals(0, file.asked, "the file is never asked");
    }

    @Test
    void anUnknownLengthAsksTheStreamBelow() throws Exception {
        Asked below = new Asked(new ByteArrayInputStream(new byte[10]));
        try (Counting c = new Counting(below, new Counting.Progress())) {
            assertEquals(10, c.available());
        }
        assertEquals(1, below.asked);
    }

    @Test
    void aTarSourceSkippingEntriesAsksTheFileNothing() throws Exception {
        // GNU tar's archive of many small files, read as TarSource reads a tar: file, counter, buffer.
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(Long.getLong("testSeed", 11));
        for (int i = 0; i < 300; i++) {
            Files.write(src.resolve("f" + i), new byte[r.nextInt(3000)]);
        }
        Path tar = tmp.resolve("t.tar");
        assertEquals(0, ExternalTools.run(List.of("tar", "-C", src.toString(), "-cf", tar.toString(), ".")).exit());
        Asked file = new Asked(Files.newInputStream(tar));
        Path img = tmp.resolve("t.ext4");
        try (InputStream in = new java.io.BufferedInputStream(
                        new Counting(file, new Counting.Progress(), Files.size(tar)), 1 << 16);
                Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            TarSource.apply(in, w, tar.toString(), null, Files.size(tar));
        }
        // Before, commons-compress's skip asked twice an entry, each an fstat and an lseek.
        assertEquals(0, file.asked, "moving past 300 entries asked the file what is available");
        try (Ext4Reader reader = Ext4Reader.open(img)) {
            for (int i = 0; i < 300; i++) {
                assertEquals(Files.size(src.resolve("f" + i)), reader.stat("/f" + i, java.nio.file.LinkOption.NOFOLLOW_LINKS).size());
            }
        }
        ExternalTools.assertFsckClean(img);
    }
}
