package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ext4 library as a user gets it: a small program, compiled and run against the packaged jar
 * alone on the module path, writes an image, reads it back and verifies it; the internals the
 * module does not export stay closed; e2fsck finds the image clean.
 */
class LibraryModuleIT {
    @TempDir Path tmp;

    private static Path libraryJar() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("target"))) {
            return s.filter(p -> p.getFileName().toString().matches("kiln-ext4-[^-]+(-SNAPSHOT)?\\.jar")).findFirst()
                    .orElse(null);
        }
    }

    @Test
    void aProgramOnTheModulePathWritesReadsAndVerifies() throws Exception {
        Path jar = libraryJar();
        assertNotNull(jar, "the packaged library jar in target/ (failsafe runs after package)");
        Path src = Files.createDirectories(tmp.resolve("src/demo"));
        Files.writeString(tmp.resolve("src/module-info.java"), "module demo { requires dev.kiln.ext4; }\n");
        Files.writeString(src.resolve("Main.java"), """
                package demo;

                import dev.kiln.ext4.Ext4Options;
                import dev.kiln.ext4.Ext4Reader;
                import dev.kiln.ext4.Ext4Verifier;
                import dev.kiln.ext4.Ext4Writer;
                import dev.kiln.ext4.Metadata;
                import java.nio.charset.StandardCharsets;
                import java.nio.file.LinkOption;
                import java.nio.file.Path;
                import java.time.Instant;

                public class Main {
                    public static void main(String[] args) throws Exception {
                        Path img = Path.of(args[0]);
                        Instant t = Instant.parse("2026-01-01T00:00:00Z");
                        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
                            w.directory("/etc", Metadata.of(0755, t));
                            w.file("/etc/hostname", Metadata.of(0644, t), "nex\\n".getBytes(StandardCharsets.UTF_8));
                            w.symlink("/etc/name", Metadata.of(0777, t), "hostname");
                        }
                        try (Ext4Reader r = Ext4Reader.open(img)) {
                            System.out.print(new String(r.readAllBytes("/etc/name"), StandardCharsets.UTF_8));
                            System.out.println(r.stat("/etc/name", LinkOption.NOFOLLOW_LINKS).isSymlink());
                            System.out.println(Ext4Verifier.verify(r).size() + " problems");
                        }
                        try {
                            Class.forName("dev.kiln.ext4.Inode").getDeclaredConstructors()[0].setAccessible(true);
                            System.out.println("internals open");
                        } catch (RuntimeException e) {
                            System.out.println("internals closed");
                        }
                    }
                }
                """);
        Path bin = Path.of(System.getProperty("java.home"), "bin");
        Path out = tmp.resolve("out");
        Process javac = new ProcessBuilder(bin.resolve("javac").toString(), "--release", "17", "--module-path",
                jar.toString(), "-d", out.toString(), tmp.resolve("src/module-info.java").toString(),
                src.resolve("Main.java").toString()).redirectErrorStream(true).start();
        String compiled = new String(javac.getInputStream().readAllBytes());
        assertEquals(0, javac.waitFor(), "the program compiles against the library jar alone: " + compiled);
        Path img = tmp.resolve("lib.ext4");
        Process p = new ProcessBuilder(bin.resolve("java").toString(), "--module-path", jar + java.io.File.pathSeparator + out, "-m",
                "demo/demo.Main", img.toString()).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), output);
        assertEquals(List.of("nex", "true", "0 problems", "internals closed"), output.lines().toList());
        ExternalTools.assertFsckClean(img);
    }
}
