package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An interrupted build (SIGTERM, as Ctrl-C's SIGINT) exits 130 and leaves no file behind. */
class InterruptIT {
    @TempDir Path tmp;

    @Test
    void interruptedBuildLeavesNothing() throws Exception {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), "the runnable jar is built before integration tests: " + jar);
        Path src = Files.createDirectories(tmp.resolve("src"));
        try (RandomAccessFile f = new RandomAccessFile(src.resolve("huge").toFile(), "rw")) {
            f.setLength(64L << 30); // 64 GiB of holes: reading them keeps the build busy
        }
        Path out = Files.createDirectories(tmp.resolve("out"));
        Process p = new ProcessBuilder("java", "-jar", jar.toString(), "build", "--image", "dir:" + src, "-o",
                out.resolve("rootfs.ext4").toString(), "--size", "1G", "-q").redirectErrorStream(true)
                .redirectOutput(tmp.resolve("log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            try (var s = Files.list(out)) {
                if (s.findAny().isPresent()) {
                    break;
                }
            }
            Thread.sleep(50);
        }
        p.destroy(); // SIGTERM
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        String output = Files.readString(tmp.resolve("log"));
        assertEquals(130, p.exitValue(), output);
        assertTrue(output.contains("error: interrupted"), output);
        try (var s = Files.list(out)) {
            assertEquals(0, s.count(), "temporary files removed");
        }
    }
}
