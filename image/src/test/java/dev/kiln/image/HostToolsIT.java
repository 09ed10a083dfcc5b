package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.ExternalTools;
import dev.kiln.ext4.FileStat;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Archives and trees made by host tools (GNU tar, mkfifo, setfattr), built into images. */
class HostToolsIT {
    @TempDir Path tmp;

    private Path build(Source s) throws Exception {
        Path img = tmp.resolve("out.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
            s.applyTo(w);
        }
        ExternalTools.assertFsckClean(img);
        return img;
    }

    /** A host tree with a sparse file, a hard link, a symlink, a FIFO and xattrs. */
    private Path hostTree() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.createDirectories(src.resolve("etc/conf.d"));
        Files.writeString(src.resolve("etc/hostname"), "nex\n");
        try (RandomAccessFile f = new RandomAccessFile(src.resolve("sparse.img").toFile(), "rw")) {
            f.setLength(8L << 20);
            f.seek(3L << 20);
            f.write("in the middle".getBytes());
            f.seek((8L << 20) - 3);
            f.write("end".getBytes());
        }
        Files.createLink(src.resolve("etc/hostname.link"), src.resolve("etc/hostname"));
        Files.createSymbolicLink(src.resolve("etc/localtime"), Path.of("../usr/share/zoneinfo/UTC"));
        assertEquals(0, ExternalTools.run(List.of("mkfifo", src.resolve("fifo").toString())).exit());
        UserDefinedFileAttributeView v = Files.getFileAttributeView(src.resolve("etc/hostname"),
                UserDefinedFileAttributeView.class);
        v.write("origin", ByteBuffer.wrap(new byte[] {0, (byte) 0x80, (byte) 0xFF}));
        Files.setPosixFilePermissions(src.resolve("etc/conf.d"), java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-x---"));
        Files.setLastModifiedTime(src.resolve("etc/hostname"), FileTime.from(Instant.ofEpochSecond(1_600_000_000L, 123_456_789)));
        return src;
    }

    private static void checkHostTree(Ext4Reader r, boolean nanos) throws Exception {
        checkHostTree(r, nanos, true);
    }

    private static void checkHostTree(Ext4Reader r, boolean nanos, boolean xattrs) throws Exception {
        FileStat h = r.stat("/etc/hostname", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        assertEquals(Instant.ofEpochSecond(1_600_000_000L, nanos ? 123_456_789 : 0), h.mtime());
        assertEquals("nex\n", new String(r.open(h.ino()).readAllBytes()));
        assertEquals(h.ino(), r.stat("/etc/hostname.link", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
        assertEquals(2, h.links());
        assertEquals("../usr/share/zoneinfo/UTC", r.readLink(r.resolve("/etc/localtime", false)));
        assertEquals(dev.kiln.ext4.FileType.FIFO, r.stat("/fifo", java.nio.file.LinkOption.NOFOLLOW_LINKS).type());
        assertEquals(0750, r.stat("/etc/conf.d", java.nio.file.LinkOption.NOFOLLOW_LINKS).mode());
        FileStat sp = r.stat("/sparse.img", java.nio.file.LinkOption.NOFOLLOW_LINKS);
        assertEquals(8L << 20, sp.size());
        assertTrue(sp.blocks512() < 64, "holes stay holes: " + sp.blocks512() + " sectors");
        byte[] all = r.open(sp.ino()).readAllBytes();
        assertEquals("in the middle", new String(all, 3 << 20, 13));
        assertEquals("end", new String(all, (8 << 20) - 3, 3));
        if (xattrs) {
            assertTrue(java.util.Arrays.equals(new byte[] {0, (byte) 0x80, (byte) 0xFF},
                    r.xattrs(h.ino()).get("user.origin")));
        }
    }

    @Test
    void directorySource() throws Exception {
        Path src = hostTree();
        Path img = build(new DirSource(src));
        try (Ext4Reader r = Ext4Reader.open(img)) {
            checkHostTree(r, true);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gnu", "posix", "oldgnu"})
    void gnuTarArchivesIncludingSparseFiles(String format) throws Exception {
        Path src = hostTree();
        Path tar = tmp.resolve("t.tar");
        boolean pax = format.equals("posix");
        List<String> cmd = new java.util.ArrayList<>(List.of("tar", "--sparse", "--format=" + format));
        if (pax) {
            cmd.addAll(List.of("--xattrs", "--xattrs-include=*"));
        }
        cmd.addAll(List.of("-C", src.toString(), "-cf", tar.toString(), "."));
        var r = ExternalTools.run(cmd);
        assertEquals(0, r.exit(), r.out());
        Path img = build(new TarSource(tar));
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            checkHostTree(rd, pax, pax);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gzip", "xz", "zstd", "bzip2"})
    void compressedByHostTools(String tool) throws Exception {
        Path src = hostTree();
        Path tar = tmp.resolve("t.tar");
        assertEquals(0, ExternalTools.run(List.of("tar", "--format=posix", "--xattrs", "--xattrs-include=*",
                "-C", src.toString(), "-cf", tar.toString(), ".")).exit());
        var c = ExternalTools.run(List.of(tool, "-k", "-f", tar.toString()));
        assertEquals(0, c.exit(), c.out());
        String ext = switch (tool) {
            case "gzip" -> ".gz";
            case "xz" -> ".xz";
            case "zstd" -> ".zst";
            default -> ".bz2";
        };
        Path img = build(new TarSource(Path.of(tar + ext)));
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            checkHostTree(rd, true);
        }
    }

    /**
     * The pure-Java zstd codec against the zstd tool: a multi-frame stream (two files compressed
     * separately and concatenated, which zstd -d accepts) decodes to the same bytes, damage is a
     * clean ZipException, and what kiln encodes, zstd -d decodes.
     */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void zstdAgreesWithTheZstdTool(boolean pureJava) throws Exception {
        ExternalTools.require("zstd");
        java.util.Random rnd = new java.util.Random(Long.getLong("kiln.zstd.seed", 20261203L));
        byte[] a = new byte[3 << 20];
        byte[] b = new byte[1 << 20];
        for (int i = 0; i < a.length; i++) {
            a[i] = (byte) (rnd.nextInt(8) == 0 ? rnd.nextInt() : i / 4096);
        }
        rnd.nextBytes(b);
        Path fa = Files.write(tmp.resolve("a"), a);
        Path fb = Files.write(tmp.resolve("b"), b);
        assertEquals(0, ExternalTools.run(List.of("zstd", "-q", "-19", "-f", fa.toString())).exit());
        assertEquals(0, ExternalTools.run(List.of("zstd", "-q", "-1", "-f", fb.toString())).exit());
        Path cat = tmp.resolve("ab.zst");
        Files.write(cat, Files.readAllBytes(Path.of(fa + ".zst")));
        Files.write(cat, Files.readAllBytes(Path.of(fb + ".zst")), java.nio.file.StandardOpenOption.APPEND);
        byte[] ours;
        // The tests have zstd-jni on the class path, so both decoders are exercised here.
        assertTrue(Compression.usesNativeZstd(), "zstd-jni (test scope) is picked up when present");
        try (java.io.InputStream in = pureJava ? Compression.pureZstdInput(new java.io.BufferedInputStream(
                Files.newInputStream(cat))) : Compression.decompress(Files.newInputStream(cat))) {
            ours = in.readAllBytes();
        }
        var theirs = ExternalTools.run(List.of("sh", "-c", "zstd -dc " + cat + " | sha256sum"));
        assertEquals(theirs.out().split(" ")[0], java.util.HexFormat.of().formatHex(
                java.security.MessageDigest.getInstance("SHA-256").digest(ours)), "both frames, as zstd -d decodes them");

        byte[] damaged = Files.readAllBytes(cat);
        for (int i = 40; i < 400; i += 7) {
            damaged[i] ^= 0x5A;
        }
        Path bad = Files.write(tmp.resolve("bad.zst"), damaged);
        assertTrue(ExternalTools.run(List.of("sh", "-c", "zstd -dc " + bad + " >/dev/null")).exit() != 0,
                "zstd itself refuses the damaged stream");
        org.junit.jupiter.api.Assertions.assertThrows(java.util.zip.ZipException.class, () -> {
            try (java.io.InputStream in = pureJava ? Compression.pureZstdInput(new java.io.ByteArrayInputStream(damaged))
                    : Compression.decompress(new java.io.ByteArrayInputStream(damaged))) {
                in.readAllBytes();
            }
        });

        Path enc = tmp.resolve("enc.zst");
        try (java.io.OutputStream out = Compression.zstdOutput(Files.newOutputStream(enc))) {
            out.write(a);
        }
        var back = ExternalTools.run(List.of("sh", "-c", "zstd -dc " + enc + " | cmp - " + fa));
        assertEquals(0, back.exit(), "zstd -d decodes what kiln encodes: " + back.out());
    }
}
