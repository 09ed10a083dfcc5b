package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.ExternalTools;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Defects found trying kiln as a new user: environment errors, exit codes, counts, tar output, failed extractions. */
class NewUserDefectsIT {
    @TempDir Path tmp;

    private Path mountTmpfs(String name, String options) throws Exception {
        TestKernel.need(ExternalTools.isRoot(), "mounting a small tmpfs needs root (CI runs as root)");
        Path m = Files.createDirectories(tmp.resolve(name));
        var r = ExternalTools.run(List.of("mount", "-t", "tmpfs", "-o", options, "kiln-it", m.toString()));
        assertEquals(0, r.exit(), r.out());
        return m;
    }

    private static void umount(Path m) throws Exception {
        ExternalTools.run(List.of("umount", m.toString()));
    }

    @Test
    void aFullDiskNamesTheOutputAndExitsSix() throws Exception {
        Path full = mountTmpfs("full", "size=4m");
        try {
            Path big = tmp.resolve("big.bin");
            byte[] data = new byte[12 << 20];
            new java.util.Random(12).nextBytes(data);
            Files.write(big, data);
            Path out = full.resolve("rootfs.ext4");
            var r = CliRunner.run("build", "--image", "scratch", "--add", big + ":/big", "-o", out.toString(), "--size",
                    "64M", "-q");
            assertEquals(6, r.exit(), r.err());
            assertTrue(r.err().startsWith("error: " + out + ": no space left on the device"), r.err());
            assertTrue(r.err().contains("free there"), r.err());
            try (var s = Files.list(full)) {
                assertEquals(0, s.count(), "no partial output");
            }
        } finally {
            umount(full);
        }
    }

    @Test
    void aReadOnlyOutputDirectoryNamesTheOutputNotTheTemporaryFile() throws Exception {
        Path ro = mountTmpfs("ro", "ro,size=1m");
        try {
            Path out = ro.resolve("rootfs.ext4");
            var r = CliRunner.run("build", "--image", "scratch", "-o", out.toString(), "--size", "16M", "-q");
            assertEquals(6, r.exit(), r.err());
            assertEquals("error: " + out + ": cannot write in " + ro + " (read-only file system); choose a writable "
                    + "directory with -o", r.err().trim());
            assertFalse(r.err().contains(".tmp"), r.err());
        } finally {
            umount(ro);
        }
    }

    @Test
    void onlyOptionErrorsExitTwo() {
        assertEquals(Kiln.INTERNAL, Errors.code(new IllegalArgumentException("a bug")));
        assertEquals(Kiln.USAGE, Errors.code(new Errors.UsageException("--size: not a size")));
        assertEquals(Kiln.CANNOT_WRITE, Errors.code(new dev.kiln.image.OutputException("x", null)));
        var r = CliRunner.run("build", "--image", "scratch", "--runlevel", "bad name!", "--agent", "/bin/true", "-o",
                tmp.resolve("x.ext4").toString());
        assertEquals(2, r.exit(), "a bad --runlevel is an option error: " + r.err());
    }

    @Test
    void anAgentThatIsADirectorySaysSo() {
        var r = CliRunner.run("build", "--image", "scratch", "--agent", tmp.toString(), "--agent-init", "pid1", "-o",
                tmp.resolve("x.ext4").toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains(tmp + ": is a directory; give --agent the agent binary itself"), r.err());
    }

    @Test
    void theBuildSummaryAndInspectCountTheSameFiles() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.writeString(src.resolve("a"), "one\n");
        Files.createLink(src.resolve("b"), src.resolve("a"));
        Files.writeString(src.resolve("c"), "two\n");
        Path out = tmp.resolve("r.ext4");
        var b = CliRunner.run("build", "--image", "dir:" + src, "-o", out.toString(), "--size", "16M");
        assertEquals(0, b.exit(), b.err());
        Matcher m = Pattern.compile("wrote .*: (\\d+) files").matcher(b.err());
        assertTrue(m.find(), b.err());
        var i = CliRunner.run("inspect", out.toString());
        assertEquals(0, i.exit(), i.err());
        assertTrue(i.out().contains("content:      " + m.group(1) + " files (3 names)"), "inspect counts inodes as the build "
                + "does, and says how many names: " + i.out() + " / " + b.err());
    }

    @Test
    void extractTarWritesNothingGnuTarWarnsAbout() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src/etc"));
        Files.writeString(src.resolve("hostname"), "nex\n");
        Path img = tmp.resolve("r.ext4");
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src.getParent(), "-o", img.toString(), "--size", "16M",
                "-q").exit());
        Path tar = tmp.resolve("r.tar");
        var x = CliRunner.run("extract", img.toString(), "--tar", tar.toString());
        assertEquals(0, x.exit(), x.err());
        var t = ExternalTools.run(List.of("tar", "--numeric-owner", "-tvf", tar.toString()));
        assertEquals(0, t.exit(), t.out());
        assertFalse(t.out().contains("Ignoring unknown extended header keyword"), t.out());
        assertFalse(t.out().toLowerCase(java.util.Locale.ROOT).contains("warning"), t.out());
        assertTrue(t.out().contains("./etc/hostname"), t.out());
    }

    @Test
    void aFailedExtractionLeavesNoDirectoryBehind() throws Exception {
        ExternalTools.require("debugfs");
        Path src = Files.createDirectories(tmp.resolve("src/etc"));
        byte[] data = new byte[50_000];
        new java.util.Random(7).nextBytes(data);
        Files.write(src.resolve("data"), data);
        Path img = tmp.resolve("r.ext4");
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src.getParent(), "-o", img.toString(), "--size", "16M",
                "-q").exit());
        var d = ExternalTools.run(List.of("debugfs", "-w", "-R", "set_inode_field /etc/data block[5] 0x7fffffff",
                img.toString()));
        assertEquals(0, d.exit(), d.out());
        Path to = tmp.resolve("out");
        var x = CliRunner.run("extract", img.toString(), "--to", to.toString());
        assertEquals(3, x.exit(), x.err());
        assertFalse(Files.exists(to), "the directory kiln made is gone: " + x.err());
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertEquals(3, CliRunner.run("extract", img.toString(), "--to", empty.toString()).exit());
        try (var s = Files.list(empty)) {
            assertEquals(0, s.count(), "a directory that was empty is empty again");
        }
    }

    @Test
    void aSkippedTestSaysWhyOnTheConsole() {
        var old = System.err;
        var buf = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(buf, true));
        try {
            org.junit.jupiter.api.Assertions.assertThrows(org.opentest4j.TestAbortedException.class,
                    () -> ExternalTools.skip("the reason"));
        } finally {
            System.setErr(old);
        }
        assertTrue(buf.toString().contains("SKIPPED NewUserDefectsIT.aSkippedTestSaysWhyOnTheConsole: the reason"),
                buf.toString());
    }
}
