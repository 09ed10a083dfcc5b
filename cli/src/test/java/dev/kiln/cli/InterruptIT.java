package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An interrupted build leaves no file behind and exits 130 for SIGINT (Ctrl-C), 143 for SIGTERM. */
class InterruptIT {
    @TempDir Path tmp;

    @Test
    void sigintExits130() throws Exception {
        interruptedBuildLeavesNothing("INT", 130, "error: interrupted");
    }

    @Test
    void sigtermExits143() throws Exception {
        interruptedBuildLeavesNothing("TERM", 143, "error: terminated");
    }

    private void interruptedBuildLeavesNothing(String signal, int code, String message) throws Exception {
        Path jar = Path.of("target/kiln.jar").toAbsolutePath();
        assertTrue(Files.exists(jar), "the runnable jar is built before integration tests: " + jar);
        Path src = Files.createDirectories(tmp.resolve("src"));
        try (RandomAccessFile f = new RandomAccessFile(src.resolve("huge").toFile(), "rw")) {
            f.setLength(64L << 30); // 64 GiB of holes: reading them keeps the build busy
        }
        Path out = Files.createDirectories(tmp.resolve("out"));
        List<String> cmd = new java.util.ArrayList<>(Unprivileged.DEFAULT_SIGINT);
        cmd.addAll(List.of("java", "-jar", jar.toString(), "build", "--image", "dir:" + src, "-o",
                out.resolve("rootfs.ext4").toString(), "--size", "1G", "-q"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
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
        var kill = new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).start();
        assertEquals(0, kill.waitFor());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        String output = Files.readString(tmp.resolve("log"));
        assertEquals(code, p.exitValue(), output);
        assertTrue(output.contains(message), output);
        try (var s = Files.list(out)) {
            assertEquals(0, s.count(), "temporary files removed");
        }
    }
}
