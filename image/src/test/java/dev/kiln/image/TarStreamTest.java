package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link TarStream} ends entries itself (no 8 KiB array per entry); it must step through an
 * archive exactly as commons-compress's own reader does. Archives are made by GNU tar in every
 * format it writes, with sizes around the 512-byte record boundaries, long names and a sparse
 * file; each is read whole, with contents left unread, and cut at every byte of its tail (the
 * last entry's data, its padding, the end blocks): same entries, same bytes, same failures.
 */
class TarStreamTest {
    private static final long SEED = Long.getLong("kiln.tarstream.seed", 20261203L);

    @TempDir Path tmp;

    @Test
    void stepsThroughEveryGnuFormatAsCommonsCompressDoes() throws Exception {
        Random r = new Random(SEED);
        Path src = Files.createDirectories(tmp.resolve("src"));
        int[] sizes = {0, 1, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 8191, 8192, 8193, 70_000};
        for (int i = 0; i < 60; i++) {
            int size = i < sizes.length ? sizes[i] : r.nextInt(20_000);
            byte[] b = new byte[size];
            r.nextBytes(b);
            Path d = Files.createDirectories(src.resolve("d" + (i % 5)));
            Files.write(d.resolve((i % 7 == 0 ? "long-".repeat(25) : "f") + i), b);
        }
        Files.createSymbolicLink(src.resolve("link"), Path.of("d0/f1"));
        Files.createLink(src.resolve("hard"), src.resolve("d1/f1"));
        try (var ch = java.nio.channels.FileChannel.open(src.resolve("sparse"),
                java.nio.file.StandardOpenOption.CREATE_NEW, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap("data".getBytes(StandardCharsets.US_ASCII)), 3 << 20);
            ch.write(java.nio.ByteBuffer.wrap(new byte[777]), 9 << 20);
        }
        // A small tree for the cuts (each cut is a whole parse): boundary sizes and a long name.
        Path small = Files.createDirectories(tmp.resolve("small"));
        for (int size : new int[] {0, 1, 511, 512, 513, 8193}) {
            byte[] b = new byte[size];
            r.nextBytes(b);
            Files.write(small.resolve("f" + size), b);
        }
        Files.write(small.resolve("long-".repeat(25) + "z"), new byte[700]);
        for (String format : new String[] {"gnu", "oldgnu", "posix", "ustar", "v7"}) {
            byte[] all = archive(src, format);
            for (boolean readContent : new boolean[] {true, false}) {
                assertEquals(steps(all, false, readContent), steps(all, true, readContent), format + " whole, content read " + readContent);
            }
            // Every cut in the last 3 KiB of the small tree's archive: the end blocks, the
            // last padding, the last data.
            byte[] tail = archive(small, format);
            for (int cut = Math.max(0, tail.length - 3 * 1024); cut < tail.length; cut++) {
                byte[] part = Arrays.copyOf(tail, cut);
                boolean readContent = (cut & 1) == 0;
                assertEquals(steps(part, false, readContent), steps(part, true, readContent), format + " cut at " + cut);
            }
        }
    }

    private byte[] archive(Path dir, String format) throws Exception {
        Path tar = tmp.resolve(dir.getFileName() + "-" + format + ".tar");
        List<String> cmd = new ArrayList<>(List.of("tar", "--format=" + format, "-C", dir.toString(), "-cf", tar.toString()));
        if (!format.equals("ustar") && !format.equals("v7")) {
            cmd.add("--sparse");
        }
        cmd.add(".");
        var made = ExternalTools.run(cmd);
        // ustar and v7 cannot hold the long names: GNU tar skips them, says so and exits 2.
        assertTrue(made.exit() == 0 || format.equals("ustar") || format.equals("v7"), format + ": " + made.out());
        return Files.readAllBytes(tar);
    }

    @Test
    void endingAnEntryAllocatesNoBufferPerEntry() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("many"));
        for (int i = 0; i < 2000; i++) {
            Files.write(src.resolve("f" + i), new byte[100 + i % 300]);
        }
        Path tar = tmp.resolve("many.tar");
        assertEquals(0, ExternalTools.run(List.of("tar", "-C", src.toString(), "-cf", tar.toString(), ".")).exit());
        byte[] all = Files.readAllBytes(tar);
        steps(all, true, true); // warm
        var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        long id = Thread.currentThread().getId();
        long before = mx.getThreadAllocatedBytes(id);
        steps(all, true, false);
        long perEntry = (mx.getThreadAllocatedBytes(id) - before) / 2000;
        // commons-compress's own stepping allocates two 8 KiB arrays per entry here (16 KiB);
        // the entry object, its name and the result list are well under 4 KiB.
        assertTrue(perEntry < 4096, "bytes allocated per entry: " + perEntry);
    }

    /** Each entry's name, size and content digest, or the failure that ended the walk. */
    private static List<String> steps(byte[] archive, boolean ours, boolean readContent) {
        List<String> out = new ArrayList<>();
        PaxRecords.Recorder rec = new PaxRecords.Recorder(new ByteArrayInputStream(archive));
        try (TarArchiveInputStream tar = ours ? new TarStream(rec, "ISO-8859-1") : new TarArchiveInputStream(rec, "ISO-8859-1")) {
            for (TarArchiveEntry e = tar.getNextEntry(); e != null; e = tar.getNextEntry()) {
                String line = e.getName() + " " + e.getRealSize() + " " + e.isSparse();
                if (readContent) {
                    line += " " + Arrays.hashCode(readAll(tar));
                }
                out.add(line);
            }
            out.add("end at " + rec.position());
        } catch (IOException | RuntimeException ex) {
            out.add("failed: " + ex.getClass().getSimpleName() + ": " + ex.getMessage());
        }
        return out;
    }

    private static byte[] readAll(InputStream in) throws IOException {
        return in.readAllBytes();
    }
}
