package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What kiln publishes is on the device before it has its name: the build's system calls, as
 * strace sees them, flush the file that is then renamed into place (the raw image, or the .gz
 * and not the raw image it was made from), and {@code --no-sync} flushes nothing.
 */
class DurableOutputIT {
    @TempDir Path tmp;

    @Test
    void theFileRenamedIntoPlaceWasFlushedBefore() throws Exception {
        ExternalTools.require("strace");
        Path src = Files.createDirectories(tmp.resolve("src/etc"));
        Files.writeString(src.resolve("hostname"), "kiln\n");
        for (String out : new String[] {"raw.ext4", "packed.ext4.gz"}) {
            List<String> calls = traced(tmp.resolve(out), List.of());
            int flush = -1;
            String flushed = null;
            int rename = -1;
            for (int i = 0; i < calls.size(); i++) {
                Matcher m = Pattern.compile("fdatasync\\((\\d+)<([^>]*)>").matcher(calls.get(i));
                if (m.find()) {
                    flush = i;
                    flushed = m.group(2);
                }
                if (calls.get(i).contains("rename(") && calls.get(i).contains("\"" + tmp.resolve(out) + "\"")) {
                    rename = i;
                }
            }
            assertTrue(flush >= 0 && rename > flush, out + ": a flush, then the rename: " + calls);
            String temp = calls.get(rename).replaceAll(".*rename\\(\"([^\"]+)\".*", "$1");
            assertEquals(temp, flushed, out + ": the file flushed is the one renamed into place");
            assertEquals(1, calls.stream().filter(c -> c.contains("fdatasync(")).count(),
                    out + ": one flush (a .gz's raw image is deleted, not flushed): " + calls);
        }
        List<String> noSync = traced(tmp.resolve("fast.ext4"), List.of("--no-sync"));
        assertFalse(noSync.stream().anyMatch(c -> c.contains("fdatasync(") || c.contains("fsync(")), "--no-sync: " + noSync);
    }

    /**
     * A build with more content than the writer flushes in one step: the image is flushed in the
     * background as it grows and once more after its last write, before the rename; a .gz's raw
     * image, deleted afterwards, is never flushed, whatever its size.
     */
    @Test
    void aLargeImageIsFlushedAsItGrowsAndAgainAfterItsLastWrite() throws Exception {
        ExternalTools.require("strace");
        Path src = Files.createDirectories(tmp.resolve("big"));
        java.util.Random r = new java.util.Random(Long.getLong("kiln.test.seed", 20261203L));
        for (int i = 0; i < 12; i++) {
            byte[] b = new byte[4 << 20]; // 48 MiB in all: three flush steps of 16 MiB
            r.nextBytes(b);
            Files.write(src.resolve("f" + i), b);
        }
        Path raw = tmp.resolve("big.ext4");
        List<String> calls = traced(src, raw, "96M", List.of(), "pwrite64,");
        int rename = -1;
        for (int i = 0; i < calls.size(); i++) {
            if (calls.get(i).contains("rename(") && calls.get(i).contains("\"" + raw + "\"")) {
                rename = i;
            }
        }
        assertTrue(rename >= 0, "renamed into place: " + calls);
        String temp = calls.get(rename).replaceAll(".*rename\\(\"([^\"]+)\".*", "$1");
        int lastWrite = -1;
        int lastFlush = -1;
        int flushes = 0;
        for (int i = 0; i < rename; i++) {
            String c = calls.get(i);
            if (c.contains("pwrite64")) {
                lastWrite = i; // a call's start (with the path) or its completion ("resumed")
            }
            if (c.contains("fdatasync(") && c.contains("<" + temp + ">")) {
                lastFlush = i;
                flushes++;
            }
        }
        assertTrue(flushes >= 2, "flushed in the background as it grew, then at the end: " + flushes + " flushes");
        assertTrue(lastWrite >= 0 && lastFlush > lastWrite, "the last flush starts after the last write returned");
        // The last flush returned before the rename: strace writes the call's line, or its
        // "resumed" line, when it returns.
        int returned = -1;
        for (int i = lastFlush; i < rename; i++) {
            if (calls.get(i).matches(".*(fdatasync\\(.*\\) += 0|fdatasync resumed.*= 0).*")) {
                returned = i;
            }
        }
        assertTrue(returned >= lastFlush, "the last flush returned before the rename: " + calls.subList(lastFlush, rename + 1));

        List<String> gz = traced(src, tmp.resolve("big.ext4.gz"), "96M", List.of(), "");
        assertEquals(1, gz.stream().filter(c -> c.contains("fdatasync(")).count(),
                "only the .gz is flushed, not the raw image it is made from: " + gz);
    }

    /** The fdatasync, fsync and rename calls of a build to {@code out}, in order. */
    private List<String> traced(Path out, List<String> extra) throws Exception {
        return traced(tmp.resolve("src"), out, "16M", extra, "");
    }

    /** The calls of a build of {@code src} to {@code out}: fdatasync, fsync, rename and {@code more}. */
    private List<String> traced(Path src, Path out, String size, List<String> extra, String more) throws Exception {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), "the runnable jar is built before integration tests: " + jar);
        Path log = tmp.resolve(out.getFileName() + ".strace");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-y", "-e",
                "trace=" + more + "fdatasync,fsync,rename,renameat,renameat2",
                "-o", log.toString(), "java", "-jar", jar.toString(), "build", "--image", "dir:" + src,
                "-o", out.toString(), "--size", size, "-q"));
        cmd.addAll(extra);
        var run = ExternalTools.run(cmd);
        assertEquals(0, run.exit(), run.out());
        assertTrue(Files.exists(out), out.toString());
        List<String> calls = new ArrayList<>();
        for (String line : Files.readAllLines(log)) {
            if (line.contains("fdatasync") || line.contains("fsync(") || line.contains("rename")
                    || (!more.isEmpty() && line.contains("pwrite64"))) {
                calls.add(line);
            }
        }
        return calls;
    }
}
