package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ReaderCheck;
import dev.kiln.ext4.TestTree;
import java.io.ByteArrayOutputStream;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImageCommandsTest {
    @TempDir Path tmp;
    Path img;
    TestTree tree;

    @BeforeEach
    void image() throws Exception {
        img = tmp.resolve("img.ext4");
        tree = TestTree.everything();
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).label("nex-root").build())) {
            tree.writeTo(w);
        }
    }

    @Test
    void inspectTextAndJson() {
        var r = CliRunner.run("inspect", img.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("label:        nex-root"), r.out());
        assertTrue(r.out().contains("metadata_csum"), r.out());
        assertTrue(r.out().contains("/usr/lib/libc.so"), "largest files: " + r.out());
        var j = CliRunner.run("inspect", "--json", img.toString());
        assertEquals(0, j.exit());
        assertTrue(j.out().contains("\"blockSize\":4096") && j.out().contains("\"label\":\"nex-root\"")
                && j.out().contains("\"symlinks\":4"), j.out());
    }

    @Test
    void lsLongAndRecursive() {
        var r = CliRunner.run("ls", "-l", img.toString(), "/usr/bin");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("-rwsr-xr-x   1     0     0      50000 2023-11-14 22:13 sudo"), r.out());
        assertTrue(r.out().contains("-rwxr-sr-x"), r.out());
        var dev = CliRunner.run("ls", "-l", img.toString(), "/dev");
        assertTrue(dev.out().contains("crw-rw-rw-") && dev.out().contains("1, 3 "), dev.out());
        var root = CliRunner.run("ls", "-l", img.toString());
        assertTrue(root.out().contains("bin -> usr/bin"), root.out());
        var rec = CliRunner.run("ls", "-R", img.toString(), "/home");
        assertTrue(rec.out().contains("/home/nex:") && rec.out().contains("big-uid"), rec.out());
        var missing = CliRunner.run("ls", img.toString(), "/nope");
        assertEquals(3, missing.exit());
        assertTrue(missing.err().startsWith("error: /nope: no such file"), missing.err());
    }

    @Test
    void catFollowsSymlinksAndRefusesDirectories() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        var old = ImageCommands.Cat.stdout;
        ImageCommands.Cat.stdout = out;
        try {
            assertEquals(0, CliRunner.run("cat", img.toString(), "/usr/lib/libc.so.6").exit());
            assertEquals(TestTree.sha256(TestTree.content(tree.nodes().get("/usr/lib/libc.so"))),
                    TestTree.sha256(new java.io.ByteArrayInputStream(out.toByteArray())));
            assertEquals(2, CliRunner.run("cat", img.toString(), "/etc").exit());
        } finally {
            ImageCommands.Cat.stdout = old;
        }
    }

    @Test
    void gzipImagesAreReadDirectly() throws Exception {
        Path gz = tmp.resolve("img.ext4.gz");
        try (var in = Files.newInputStream(img); var out = new java.util.zip.GZIPOutputStream(Files.newOutputStream(gz))) {
            in.transferTo(out);
        }
        var v = CliRunner.run("verify", gz.toString());
        assertEquals(0, v.exit(), v.out() + v.err());
        var ls = CliRunner.run("ls", gz.toString(), "/usr/bin");
        assertTrue(ls.out().contains("sudo"), ls.out());
        Files.write(tmp.resolve("bad.ext4.gz"), new byte[] {0x1F, (byte) 0x8B, 1, 2, 3});
        assertEquals(3, CliRunner.run("inspect", tmp.resolve("bad.ext4.gz").toString()).exit());
    }

    @Test
    void verifyCleanAndDamaged() throws Exception {
        var ok = CliRunner.run("verify", img.toString());
        assertEquals(0, ok.exit(), ok.out());
        assertTrue(ok.out().contains("clean"));
        try (Ext4Reader r = Ext4Reader.open(img); RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            long ino = r.resolve("/etc/passwd", false);
            f.seek(r.inodeOffset(ino) + 0x10);
            f.write(0x55);
        }
        var bad = CliRunner.run("verify", img.toString());
        assertEquals(3, bad.exit());
        assertTrue(bad.out().contains("(/etc/passwd): inode checksum does not match"), bad.out());
        var notImage = CliRunner.run("verify", tmp.resolve("nothing").toString());
        assertEquals(3, notImage.exit());
    }

    @Test
    void lsAndVerifyJsonAreDocumentsWithEveryAttribute() throws Exception {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var ls = CliRunner.run("ls", "--json", img.toString(), "/usr/bin");
        assertEquals(0, ls.exit(), ls.err());
        var doc = mapper.readTree(ls.out());
        var text = CliRunner.run("ls", img.toString(), "/usr/bin");
        assertEquals(text.out().lines().count(), doc.path("entries").size(), "the same entries as the text listing");
        for (var e : doc.path("entries")) {
            assertTrue(e.path("path").asText().startsWith("/usr/bin/"), e.toString());
            for (String field : new String[] {"type", "mode", "uid", "gid", "links", "size", "mtime", "inode"}) {
                assertTrue(e.has(field), field + " in " + e);
            }
            try (Ext4Reader r = Ext4Reader.open(img)) {
                var st = r.stat(e.path("path").asText(), java.nio.file.LinkOption.NOFOLLOW_LINKS);
                assertEquals(st.size(), e.path("size").asLong(), e.toString());
                assertEquals(st.ino(), e.path("inode").asLong(), e.toString());
                if (st.isSymlink()) {
                    assertEquals(r.readLink(st.ino()), e.path("target").asText());
                }
            }
        }
        var clean = mapper.readTree(CliRunner.run("verify", "--json", img.toString()).out());
        assertTrue(clean.path("clean").asBoolean());
        assertEquals(0, clean.path("problems").size());
        try (Ext4Reader r = Ext4Reader.open(img); RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            long ino = r.resolve("/etc/passwd", false);
            f.seek(r.inodeOffset(ino) + 0x10);
            f.write(0x55);
        }
        var bad = CliRunner.run("verify", "--json", img.toString());
        assertEquals(3, bad.exit());
        var damaged = mapper.readTree(bad.out());
        assertEquals(false, damaged.path("clean").asBoolean());
        boolean named = false;
        for (var p : damaged.path("problems")) {
            named |= p.path("path").asText().equals("/etc/passwd") && p.path("message").asText().contains("checksum");
        }
        assertTrue(named, "the damaged inode is named with its path: " + damaged);
    }

    @Test
    void extractTarRebuildsTheSameTree() throws Exception {
        Path tar = tmp.resolve("out.tar");
        var r = CliRunner.run("extract", img.toString(), "--tar", tar.toString());
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("skipped 1 socket"), r.err());
        Path rebuilt = tmp.resolve("rebuilt.ext4");
        var b = CliRunner.run("build", "--image", "tar:" + tar, "-o", rebuilt.toString(), "--size", "32M", "-q");
        assertEquals(0, b.exit(), b.err());
        // Tar has no creation time GNU tar reads silently, so the rebuilt tree's is the modification time.
        TestTree noSocket = TestTree.everything().filtered(n -> n.kind() != TestTree.Kind.SOCK,
                md -> new dev.kiln.ext4.Metadata(md.mode(), md.uid(), md.gid(), md.atime(), md.mtime(), md.ctime(),
                        md.mtime(), md.xattrs()));
        try (Ext4Reader rd = Ext4Reader.open(rebuilt)) {
            ReaderCheck.compare(rd, noSocket);
        }
    }

    @Test
    void ext4SourceCopiesEverything() throws Exception {
        Path copy = tmp.resolve("copy.ext4");
        var b = CliRunner.run("build", "--image", "ext4:" + img, "-o", copy.toString(), "--size", "48M", "-q");
        assertEquals(0, b.exit(), b.err());
        try (Ext4Reader rd = Ext4Reader.open(copy)) {
            ReaderCheck.compare(rd, tree);
        }
    }

    @Test
    void extractToDirectory() throws Exception {
        Path out = tmp.resolve("tree");
        var r = CliRunner.run("extract", img.toString(), "--to", out.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("usr/bin", Files.readSymbolicLink(out.resolve("bin")).toString());
        assertEquals(TestTree.sha256(TestTree.content(tree.nodes().get("/etc/passwd"))),
                TestTree.sha256(Files.newInputStream(out.resolve("etc/passwd"))));
        assertEquals(Files.getAttribute(out.resolve("usr/lib/libc.so"), "unix:ino"),
                Files.getAttribute(out.resolve("usr/lib/libc.so.6"), "unix:ino"));
        assertEquals(04755, (Integer) Files.getAttribute(out.resolve("usr/bin/sudo"), "unix:mode") & 07777);
        assertEquals(tree.nodes().get("/etc/passwd").md().mtime(),
                Files.getLastModifiedTime(out.resolve("etc/passwd")).toInstant());
        assertTrue(Files.exists(out.resolve("run/initctl"), java.nio.file.LinkOption.NOFOLLOW_LINKS));
        if ("root".equals(System.getProperty("user.name"))) {
            // As root: numeric owners (32-bit ones too), device nodes and every xattr namespace.
            assertEquals(4_000_000_000L, ((Integer) Files.getAttribute(out.resolve("home/nex/big-uid"), "unix:uid",
                    java.nio.file.LinkOption.NOFOLLOW_LINKS)) & 0xFFFFFFFFL);
            long rdev = (Long) Files.getAttribute(out.resolve("dev/null"), "unix:rdev", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0x103, rdev);
            var caps = dev.kiln.ext4.ExternalTools.run(java.util.List.of("getfattr", "-n", "security.capability", "-e", "hex",
                    out.resolve("usr/bin/ping").toString()));
            assertTrue(caps.out().contains("security.capability=0x0100000280200000"), caps.out());
        }
        var again = CliRunner.run("extract", img.toString(), "--to", out.toString());
        assertEquals(2, again.exit(), "a non-empty target is refused");
    }
}
