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

    /** The fdatasync, fsync and rename calls of a build to {@code out}, in order. */
    private List<String> traced(Path out, List<String> extra) throws Exception {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), "the runnable jar is built before integration tests: " + jar);
        Path log = tmp.resolve(out.getFileName() + ".strace");
        List<String> cmd = new ArrayList<>(List.of("strace", "-f", "-y", "-e", "trace=fdatasync,fsync,rename,renameat,renameat2",
                "-o", log.toString(), "java", "-jar", jar.toString(), "build", "--image", "dir:" + tmp.resolve("src"),
                "-o", out.toString(), "--size", "16M", "-q"));
        cmd.addAll(extra);
        var run = ExternalTools.run(cmd);
        assertEquals(0, run.exit(), run.out());
        assertTrue(Files.exists(out), out.toString());
        List<String> calls = new ArrayList<>();
        for (String line : Files.readAllLines(log)) {
            if (line.contains("fdatasync(") || line.contains("fsync(") || line.contains("rename")) {
                calls.add(line);
            }
        }
        return calls;
    }
}
