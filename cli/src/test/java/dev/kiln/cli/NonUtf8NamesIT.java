package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * File names are bytes: names that are not UTF-8 (Latin-1 café, stray 0xFF bytes, two names
 * that differ only in invalid bytes, a symlink target with them) go byte-exact through GNU and
 * PAX tarballs made by GNU tar, dir: and ext4: sources, the image (checked with debugfs), and
 * back out through extract --to and extract --tar (read back by GNU tar).
 */
class NonUtf8NamesIT {
    @TempDir Path tmp;

    /** The tree's names and link targets as bytes, one line each, sorted (find -printf). */
    private static Set<String> listing(Path dir) throws Exception {
        var r = ExternalTools.run(List.of("sh", "-c", "cd '" + dir + "' && find . -path ./lost+found -prune -o -printf "
                + "'%P|%y|%l\\n'"));
        assertEquals(0, r.exit(), r.out());
        // ExternalTools decodes as UTF-8; re-read the raw bytes instead.
        Process p = new ProcessBuilder("sh", "-c", "cd '" + dir + "' && find . -path ./lost+found -prune -o -printf "
                + "'%P|%y|%l\\n'").start();
        String raw = new String(p.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
        p.waitFor();
        Set<String> out = new TreeSet<>(List.of(raw.split("\n")));
        out.remove("|d|");
        return out;
    }

    private Path source() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        var r = ExternalTools.run(List.of("bash", "-c", "cd '" + src + "' && touch \"$(printf 'caf\\351')\" "
                + "\"$(printf 'caf\\303\\251')\" \"$(printf 'bad\\377\\376')\" \"$(printf 'bad\\377\\375')\" "
                + "&& mkdir \"$(printf 'dir\\200')\" && echo inner > \"$(printf 'dir\\200')/inner\" "
                + "&& ln -s \"$(printf 't\\377rget')\" \"$(printf 'link\\376')\""));
        assertEquals(0, r.exit(), r.out());
        Set<String> names = listing(src);
        assertEquals(7, names.size(), "seven names, two of them differing only in an invalid byte: " + names);
        return src;
    }

    private Path build(String image, String name, String... extra) {
        Path out = tmp.resolve(name);
        List<String> args = new java.util.ArrayList<>(List.of("build", "--image", image, "-o", out.toString(), "--size",
                "16M", "-q"));
        args.addAll(List.of(extra));
        var b = CliRunner.run(args.toArray(String[]::new));
        assertEquals(0, b.exit(), b.err());
        return out;
    }

    private void assertRoundTrips(Path img, Set<String> expected, String what) throws Exception {
        ExternalTools.assertFsckClean(img);
        // debugfs sees the bytes in the directory entries.
        Process p = new ProcessBuilder("debugfs", "-R", "ls -p /", img.toString()).redirectError(
                ProcessBuilder.Redirect.DISCARD).start();
        String raw = new String(p.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
        p.waitFor();
        for (String line : expected) {
            String top = line.substring(0, line.indexOf('|')).split("/")[0];
            assertTrue(raw.contains("/" + top + "/"), what + ": debugfs does not list " + top + " in /: " + raw);
        }
        Path to = tmp.resolve("to-" + System.nanoTime());
        var x = CliRunner.run("extract", img.toString(), "--to", to.toString());
        assertEquals(0, x.exit(), x.err());
        assertEquals(expected, listing(to), what + ": extract --to");
        Path tar = tmp.resolve("x-" + System.nanoTime() + ".tar");
        x = CliRunner.run("extract", img.toString(), "--tar", tar.toString());
        assertEquals(0, x.exit(), x.err());
        Path gnu = Files.createDirectories(tmp.resolve("gnu-" + System.nanoTime()));
        var t = ExternalTools.run(List.of("tar", "-xf", tar.toString(), "-C", gnu.toString()));
        assertEquals(0, t.exit(), t.out());
        assertEquals("", t.out().trim(), "GNU tar reads kiln's archive silently");
        assertEquals(expected, listing(gnu), what + ": extract --tar, read by GNU tar");
    }

    @Test
    void namesThatAreNotUtf8RoundTripByteExact() throws Exception {
        ExternalTools.require("debugfs");
        Path src = source();
        Set<String> expected = listing(src);
        for (String format : List.of("gnu", "pax")) {
            Path tar = tmp.resolve(format + ".tar");
            var r = ExternalTools.run(List.of("tar", "--format=" + format, "-cf", tar.toString(), "-C", src.toString(), "."));
            assertEquals(0, r.exit(), r.out());
            assertRoundTrips(build("tar:" + tar, format + ".ext4"), expected, "GNU tar --format=" + format);
        }
        Path fromDir = build("dir:" + src, "dir.ext4");
        assertRoundTrips(fromDir, expected, "dir:");
        assertRoundTrips(build("ext4:" + fromDir, "ext4.ext4"), expected, "ext4:");
        var ls = CliRunner.run("ls", fromDir.toString());
        assertTrue(ls.out().contains("caf\\xe9") && ls.out().contains("bad\\xff\\xfe") && ls.out().contains("café"),
                "ls escapes what is not UTF-8: " + ls.out());
        if (ExternalTools.isRoot()) {
            ExternalTools.require("busybox");
            Path withShell = Files.createDirectories(tmp.resolve("shell/bin"));
            Files.copy(ExternalTools.require("busybox"), withShell.resolve("busybox"));
            Files.setPosixFilePermissions(withShell.resolve("busybox"),
                    java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            Files.createSymbolicLink(withShell.resolve("sh"), Path.of("busybox"));
            Path script = tmp.resolve("s.sh");
            Files.writeString(script, "echo staged\n");
            Path staged = build("ext4:" + fromDir, "staged.ext4", "--add", withShell + ":/bin", "--script",
                    script.toString(), "--no-boot-check");
            Path to = tmp.resolve("staged-out");
            assertEquals(0, CliRunner.run("extract", staged.toString(), "--to", to.toString()).exit());
            Set<String> got = listing(to);
            assertTrue(got.containsAll(expected), "names survive the script stage: " + got);
            try (var left = Files.list(tmp)) {
                List<Path> stages = left.filter(f -> f.getFileName().toString().startsWith(".kiln-stage")).toList();
                assertEquals(List.of(), stages, "the staging tree, names the JVM cannot spell included, is removed");
            }
        }
    }
}
