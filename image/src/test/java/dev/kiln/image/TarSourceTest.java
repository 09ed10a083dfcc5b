package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import dev.kiln.ext4.Metadata;
import dev.kiln.ext4.ReaderCheck;
import dev.kiln.ext4.TestTree;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class TarSourceTest {
    @TempDir Path tmp;

    /** The test tree without what a format cannot carry (sockets; long names and big ids in ustar). */
    private static TestTree treeFor(TarFixtures.Format f) {
        boolean pax = f == TarFixtures.Format.PAX;
        return TestTree.everything().filtered(n -> {
            boolean ustarUnsafe = n.path().length() > 99 || n.md().uid() > 2097151 || n.md().gid() > 2097151
                    || (n.target() != null && n.target().length() > 99) || n.major() > 2097151;
            long mtime = n.md().mtime().getEpochSecond();
            boolean octalTime = mtime >= 0 && mtime < 8589934591L;
            return n.kind() != TestTree.Kind.SOCK && (pax || octalTime)
                    && !(f == TarFixtures.Format.USTAR && ustarUnsafe);
        }, md -> {
            if (pax) {
                return md;
            }
            // ustar and GNU headers keep whole seconds of mtime only, and no xattrs.
            Instant m = Instant.ofEpochSecond(md.mtime().getEpochSecond());
            return new Metadata(md.mode(), md.uid(), md.gid(), m, m, m, m, Map.of());
        });
    }

    private Ext4Reader build(Path tar) throws Exception {
        Path img = tmp.resolve("out.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
            TarSource s = new TarSource(tar);
            assertTrue(s.fraction() < 0, "unknown before the build starts");
            s.applyTo(w);
            assertEquals(1.0, s.fraction(), "the whole archive was read");
        }
        return Ext4Reader.open(img);
    }

    @ParameterizedTest
    @EnumSource(TarFixtures.Format.class)
    void everyHeaderFormat(TarFixtures.Format format) throws Exception {
        TestTree tree = treeFor(format);
        Path tar = TarFixtures.write(tree, tmp.resolve("t.tar"), format, TarFixtures.Codec.NONE);
        try (Ext4Reader r = build(tar)) {
            ReaderCheck.compare(r, tree);
        }
    }

    @ParameterizedTest
    @EnumSource(TarFixtures.Codec.class)
    void everyCompressionIsDetectedFromTheBytes(TarFixtures.Codec codec) throws Exception {
        TestTree tree = treeFor(TarFixtures.Format.PAX);
        // A misleading name: detection must not look at it.
        Path tar = TarFixtures.write(tree, tmp.resolve("archive.bin"), TarFixtures.Format.PAX, codec);
        try (Ext4Reader r = build(tar)) {
            ReaderCheck.compare(r, tree);
        }
    }

    @Test
    void binaryXattrValuesSurvive() throws Exception {
        TestTree tree = new TestTree();
        Map<String, byte[]> x = new TreeMap<>();
        byte[] all = new byte[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) i;
        }
        x.put("security.capability", new byte[] {1, 0, 0, 2, (byte) 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
        x.put("user.all-bytes", all);
        x.put("user.newline", "a\nb=c\n".getBytes());
        tree.file("/bin/ping", TestTree.md(0755, 0, 0, 1_700_000_000L, 0).withXattrs(x), 10, 1, 0);
        Path tar = TarFixtures.write(tree, tmp.resolve("x.tar"), TarFixtures.Format.PAX, TarFixtures.Codec.GZIP);
        try (Ext4Reader r = build(tar)) {
            ReaderCheck.compare(r, tree);
        }
    }

    @Test
    void notATarIsInvalidInput() throws Exception {
        Path junk = tmp.resolve("junk.tar");
        Files.write(junk, "this is not a tar archive at all, just text that goes on".repeat(20).getBytes());
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> build(junk).close());
        assertTrue(e.getMessage().startsWith("tar:" + junk), e.getMessage());
    }

    @Test
    void truncatedArchiveIsInvalidInput() throws Exception {
        TestTree tree = treeFor(TarFixtures.Format.PAX);
        Path tar = TarFixtures.write(tree, tmp.resolve("t.tar"), TarFixtures.Format.PAX, TarFixtures.Codec.NONE);
        byte[] b = Files.readAllBytes(tar);
        Path cut = tmp.resolve("cut.tar");
        Files.write(cut, java.util.Arrays.copyOf(b, b.length / 2));
        Exception e = assertThrows(Exception.class, () -> build(cut).close());
        assertTrue(e instanceof java.io.EOFException || e instanceof InvalidSourceException, e.toString());
    }

    @Test
    void hostilePathsAreRejectedOrContained() throws Exception {
        TestTree tree = new TestTree();
        tree.file("/ok", TestTree.md(0644, 0, 0, 1, 0), 1, 1, 0);
        Path tar = tmp.resolve("evil.tar");
        try (var out = new org.apache.commons.compress.archivers.tar.TarArchiveOutputStream(Files.newOutputStream(tar))) {
            var e = new org.apache.commons.compress.archivers.tar.TarArchiveEntry("../../etc/passwd");
            e.setSize(1);
            out.putArchiveEntry(e);
            out.write('x');
            out.closeArchiveEntry();
        }
        InvalidSourceException e = assertThrows(InvalidSourceException.class, () -> build(tar).close());
        assertTrue(e.getMessage().contains("escapes the image root"), e.getMessage());
        assertEquals(false, Files.exists(tmp.resolve("../etc/passwd")));
    }
}
