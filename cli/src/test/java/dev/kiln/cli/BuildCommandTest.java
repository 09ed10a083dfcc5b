package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Reader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BuildCommandTest {
    @TempDir Path tmp;

    private Path sourceDir() throws IOException {
        Path d = Files.createDirectories(tmp.resolve("root/etc"));
        Files.writeString(d.resolve("hostname"), "nex\n");
        Files.writeString(d.resolve("motd"), "welcome\n".repeat(1000));
        return d.getParent();
    }

    private static void assertNoOutput(Path dir, String name) throws IOException {
        try (var s = Files.list(dir)) {
            assertFalse(s.anyMatch(p -> p.getFileName().toString().contains(name)),
                    "no output or temporary file may remain for " + name);
        }
    }

    @Test
    void buildsFromADirectoryWithChecksumAndJson() throws Exception {
        Path out = tmp.resolve("rootfs.ext4");
        var r = CliRunner.run("build", "--image", "dir:" + sourceDir(), "-o", out.toString(), "--size", "32M", "--json");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("\"sha256\":\"" + dev.kiln.image.Build.sha256(out) + "\""), r.out());
        assertTrue(r.out().contains("\"files\":2"), r.out());
        assertEquals(32L << 20, Files.size(out));
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        String sum = Files.readString(tmp.resolve("rootfs.ext4.sha256"));
        assertEquals(dev.kiln.image.Build.sha256(out) + "  rootfs.ext4\n", sum);
        try (Ext4Reader rd = Ext4Reader.open(out)) {
            assertEquals("nex\n", new String(rd.open("/etc/hostname").readAllBytes()));
        }
        assertTrue(r.err().contains("kiln: wrote"), r.err());
        assertTrue(r.err().contains("kiln: [1/1] dir:") && r.err().contains("kiln: computing sha256"), r.err());
        var verified = CliRunner.run("build", "--image", "dir:" + tmp.resolve("root"), "-o", out.toString(), "--size", "32M",
                "--verify");
        assertEquals(0, verified.exit(), verified.err());
        assertTrue(verified.err().contains("kiln: verifying"), verified.err());
        var quiet = CliRunner.run("build", "--image", "dir:" + tmp.resolve("root"), "-o", out.toString(), "--size", "32M", "-q");
        assertEquals("", quiet.err());
    }

    @Test
    void gzipOutputIsTheSameImageAndReproducible() throws Exception {
        Path src = sourceDir();
        Path plain = tmp.resolve("a.ext4");
        Path gz = tmp.resolve("b.ext4.gz");
        Path gz2 = tmp.resolve("c.ext4.gz");
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src, "-o", plain.toString(), "--size", "16M", "-q").exit());
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src, "-o", gz.toString(), "--size", "16M", "-q").exit());
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src, "-o", gz2.toString(), "--size", "16M", "-q").exit());
        byte[] unzipped;
        try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
            unzipped = in.readAllBytes();
        }
        assertArrayEquals(Files.readAllBytes(plain), unzipped);
        assertArrayEquals(Files.readAllBytes(gz), Files.readAllBytes(gz2));
        assertTrue(Files.size(gz) < Files.size(plain) / 10);
        assertTrue(Files.readString(tmp.resolve("b.ext4.gz.sha256")).endsWith("  b.ext4.gz\n"));
    }

    @Test
    void sourceDateEpochSetsSuperblockTimes() throws Exception {
        Path out = tmp.resolve("t.ext4");
        assertEquals(0, CliRunner.run("build", "--image", "scratch", "-o", out.toString(), "--size", "16M",
                "--source-date-epoch", "1700000000", "-q").exit());
        try (Ext4Reader r = Ext4Reader.open(out)) {
            assertEquals(1_700_000_000L, r.stat("/lost+found", java.nio.file.LinkOption.NOFOLLOW_LINKS).mtime().getEpochSecond());
        }
    }

    @Test
    void uuidAndHashSeedAreSettable() throws Exception {
        Path out = tmp.resolve("u.ext4");
        String u = "0d2c5e44-0000-4000-8000-00000000abcd";
        assertEquals(0, CliRunner.run("build", "--image", "scratch", "-o", out.toString(), "--size", "16M", "-q",
                "--uuid", u, "--hash-seed", "11111111-2222-4333-8444-555555555555").exit());
        var r = CliRunner.run("inspect", out.toString());
        assertTrue(r.out().contains("uuid:         " + u), r.out());
        assertEquals(2, CliRunner.run("build", "--image", "scratch", "-o", out.toString(), "--uuid", "nope").exit());
    }

    @Test
    void clampTimesCapsNewerInodeTimesAtTheSourceDateEpoch() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("clamp"));
        Files.writeString(src.resolve("new"), "n");
        Files.writeString(src.resolve("old"), "o");
        Files.setLastModifiedTime(src.resolve("new"), java.nio.file.attribute.FileTime.from(java.time.Instant.parse("2030-01-01T00:00:00Z")));
        Files.setLastModifiedTime(src.resolve("old"), java.nio.file.attribute.FileTime.from(java.time.Instant.parse("2001-01-01T00:00:00Z")));
        Path out = tmp.resolve("c.ext4");
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src, "-o", out.toString(), "--size", "16M", "-q",
                "--source-date-epoch", "1700000000", "--clamp-times").exit());
        try (Ext4Reader r = Ext4Reader.open(out)) {
            assertEquals(java.time.Instant.ofEpochSecond(1_700_000_000L), r.stat("/new", java.nio.file.LinkOption.NOFOLLOW_LINKS).mtime());
            assertEquals(java.time.Instant.parse("2001-01-01T00:00:00Z"), r.stat("/old", java.nio.file.LinkOption.NOFOLLOW_LINKS).mtime());
        }
        Path unclamped = tmp.resolve("u.ext4");
        assertEquals(0, CliRunner.run("build", "--image", "dir:" + src, "-o", unclamped.toString(), "--size", "16M", "-q",
                "--source-date-epoch", "1700000000").exit());
        try (Ext4Reader r = Ext4Reader.open(unclamped)) {
            assertEquals(java.time.Instant.parse("2030-01-01T00:00:00Z"), r.stat("/new", java.nio.file.LinkOption.NOFOLLOW_LINKS).mtime());
        }
    }

    @Test
    void noSyncStillWritesACompleteImage() throws Exception {
        Path img = tmp.resolve("nosync.ext4");
        var r = CliRunner.run("build", "--image", "scratch", "-o", img.toString(), "--size", "16M", "-q", "--no-sync");
        assertEquals(0, r.exit(), r.err());
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            assertTrue(dev.kiln.ext4.Ext4Verifier.verify(rd).isEmpty());
        }
        dev.kiln.ext4.ExternalTools.assertFsckClean(img);
    }

    @Test
    void usageErrorsExitTwo() throws Exception {
        var r = CliRunner.run("build", "--image", "scratch", "-o", tmp.resolve("x.ext4").toString(), "--size", "lots");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("error: Invalid value for option '--size': not a size: 'lots'"), r.err());
        assertEquals(2, CliRunner.run("build", "--no-such-option").exit());
        assertEquals(2, CliRunner.run("build", "--image", "scratch", "--block-size", "3000", "-o",
                tmp.resolve("y.ext4").toString()).exit());
        assertEquals(2, CliRunner.run().exit());
        assertNoOutput(tmp, "x.ext4");
    }

    @Test
    void missingOrCorruptInputExitsThree() throws Exception {
        var r = CliRunner.run("build", "--image", "tar:" + tmp.resolve("nope.tar"), "-o", tmp.resolve("o.ext4").toString());
        assertEquals(3, r.exit());
        assertTrue(r.err().startsWith("error: " + tmp.resolve("nope.tar") + ": no such file"), r.err());
        Path junk = tmp.resolve("junk.tar");
        Files.write(junk, new byte[] {0x1F, (byte) 0x8B, 8, 0, 1, 2, 3, 4, 5, 6, 7});
        r = CliRunner.run("build", "--image", "tar:" + junk, "-o", tmp.resolve("o.ext4").toString());
        assertEquals(3, r.exit(), r.err());
        assertEquals(1, r.err().lines().filter(l -> l.startsWith("error:")).count(), r.err());
        assertTrue(r.err().contains("error: tar:" + junk + ": not a readable tar archive"), r.err());
        assertNoOutput(tmp, "o.ext4");
        r = CliRunner.run("build", "--image", "scratch", "-o", tmp.toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("is a directory; give the image's file name"), r.err());
        // Not a source prefix and not a valid registry reference: refused without any network access.
        r = CliRunner.run("build", "--image", "Bogus:thing!", "-o", tmp.resolve("o.ext4").toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("unknown prefix 'Bogus:'") && r.err().contains("tar:FILE"), r.err());
        r = CliRunner.run("build", "--image", "Bogus/thing!", "-o", tmp.resolve("o.ext4").toString());
        assertEquals(3, r.exit(), r.err());
        assertTrue(r.err().contains("is not a valid image reference"), r.err());
    }

    @Test
    void contentThatDoesNotFitExitsFiveAndLeavesNothing() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("big"));
        byte[] noise = new byte[12 << 20];
        new java.util.Random(1).nextBytes(noise);
        Files.write(src.resolve("noise"), noise);
        Path out = tmp.resolve("small.ext4");
        Files.writeString(out, "an older image that must survive a failed build");
        var r = CliRunner.run("build", "--image", "dir:" + src, "-o", out.toString(), "--size", "8M");
        assertEquals(5, r.exit(), r.err());
        assertTrue(r.err().contains("needs about") && r.err().contains("--size"), r.err());
        assertEquals("an older image that must survive a failed build", Files.readString(out));
        try (var s = Files.list(tmp)) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().endsWith(".tmp")).count());
        }
    }

    @Test
    void progressBar() {
        assertEquals("[>                   ]   0%", ProgressDisplay.bar(0));
        assertEquals("[==========>         ]  50%", ProgressDisplay.bar(0.5));
        assertEquals("[====================] 100%", ProgressDisplay.bar(1));
    }

    @Test
    void versionAndHelp() {
        var v = CliRunner.run("--version");
        assertEquals(0, v.exit());
        assertTrue(v.out().startsWith("kiln "), v.out());
        var h = CliRunner.run("build", "--help");
        assertEquals(0, h.exit());
        assertTrue(h.out().contains("--image") && h.out().contains("--size"), h.out());
        var top = CliRunner.run("--help");
        assertTrue(top.out().contains("Exit codes") && top.out().contains("5"), top.out());
        assertTrue(h.out().trim().endsWith("Print version information and exit."), "-h/-V listed last: " + h.out());
    }

    @Test
    void everySubcommandPrintsTheVersion() {
        String version = CliRunner.run("--version").out();
        for (String[] args : new String[][] {{"build", "-V"}, {"cache", "ls", "--version"}, {"push", "-V"}, {"verify", "-V"}}) {
            var r = CliRunner.run(args);
            assertEquals(0, r.exit(), String.join(" ", args));
            assertEquals(version, r.out(), String.join(" ", args));
        }
    }
}
