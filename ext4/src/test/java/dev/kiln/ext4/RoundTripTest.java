package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Writer → reader round trips, and the entry semantics of the writer. */
@SuppressWarnings("try") // writers are closed early inside try blocks to read their summary
class RoundTripTest {
    @TempDir Path tmp;
    private static final Instant T = Instant.ofEpochSecond(1_700_000_000L);

    @ParameterizedTest
    @ValueSource(ints = {1024, 2048, 4096})
    void everythingRoundTrips(int blockSize) throws Exception {
        Path img = tmp.resolve("a.ext4");
        TestTree tree = TestTree.everything();
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).blockSize(blockSize).build())) {
            tree.writeTo(w);
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ReaderCheck.compare(r, tree);
            assertEquals(blockSize, r.blockSize());
            assertTrue(r.features().contains("metadata_csum"));
        }
    }

    private static InputStream bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (i * 31 + seed);
        }
        return new ByteArrayInputStream(b);
    }

    @Test
    void overwriteWritesIntoAnExistingFileAndNeverMakesOne() throws Exception {
        Path made = tmp.resolve("made.ext4");
        try (Ext4Writer w = Ext4Writer.create(made, Ext4Options.builder(16L << 20).build())) {
            TestTree.everything().writeTo(w);
        }
        Path existing = tmp.resolve("existing.ext4");
        byte[] junk = new byte[20 << 20]; // longer than the image and not zero: none of it may remain
        java.util.Arrays.fill(junk, (byte) 0x5a);
        java.nio.file.Files.write(existing, junk);
        try (Ext4Writer w = Ext4Writer.overwrite(existing, Ext4Options.builder(16L << 20).build())) {
            TestTree.everything().writeTo(w);
        }
        assertEquals(-1, java.nio.file.Files.mismatch(made, existing), "the same image as into a new file");
        Path gone = tmp.resolve("gone.ext4");
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> Ext4Writer.overwrite(gone, Ext4Options.builder(16L << 20).build()));
        assertFalse(java.nio.file.Files.exists(gone), "a removed file stays removed");
    }

    @Test
    void implicitParentsAreFixedUpByALaterEntry() throws Exception {
        Path img = tmp.resolve("a.ext4");
        Metadata late = new Metadata(0700, 5, 6, T, T, T, T, java.util.Map.of());
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.file("/a/b/c", Metadata.of(0644, T), 3, bytes(3, 1));
            w.directory("/a/b", late);
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            FileStat ab = r.stat("/a/b", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0700, ab.mode());
            assertEquals(5, ab.uid());
            assertEquals(0755, r.stat("/a", java.nio.file.LinkOption.NOFOLLOW_LINKS).mode());
            assertEquals(3, r.stat("/a/b/c", java.nio.file.LinkOption.NOFOLLOW_LINKS).size());
        }
    }

    @Test
    void replacingAFileFreesItsBlocks() throws Exception {
        Path a = tmp.resolve("a.ext4");
        Path b = tmp.resolve("b.ext4");
        long freeA;
        long freeB;
        try (Ext4Writer w = Ext4Writer.create(a, Ext4Options.builder(16L << 20).build())) {
            w.file("/f", Metadata.of(0644, T), 1 << 20, bytes(1 << 20, 1));
            w.file("/f", Metadata.of(0600, T), 10, bytes(10, 2));
            w.close();
            freeA = w.summary().freeBlocks();
        }
        try (Ext4Writer w = Ext4Writer.create(b, Ext4Options.builder(16L << 20).build())) {
            w.file("/f", Metadata.of(0600, T), 10, bytes(10, 2));
            w.close();
            freeB = w.summary().freeBlocks();
        }
        assertEquals(freeB, freeA);
        try (Ext4Reader r = Ext4Reader.open(a)) {
            assertEquals(10, r.stat("/f", java.nio.file.LinkOption.NOFOLLOW_LINKS).size());
            assertEquals(0600, r.stat("/f", java.nio.file.LinkOption.NOFOLLOW_LINKS).mode());
            assertEquals(TestTree.sha256(bytes(10, 2)), TestTree.sha256(r.open("/f")));
        }
    }

    @Test
    void removeIsRecursiveAndKeepsOtherHardLinks() throws Exception {
        Path img = tmp.resolve("a.ext4");
        long freeAfter;
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.file("/d/x/big", Metadata.of(0644, T), 1 << 20, bytes(1 << 20, 3));
            w.file("/d/y", Metadata.of(0644, T), 100, bytes(100, 4));
            w.hardLink("/keep", "/d/y");
            assertTrue(w.remove("/d"));
            assertFalse(w.remove("/d"));
            assertFalse(w.exists("/d/x/big"));
            w.close();
            freeAfter = w.summary().freeBlocks();
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals(0, r.lookupPath("/d", false));
            FileStat keep = r.stat("/keep", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(1, keep.links());
            assertEquals(TestTree.sha256(bytes(100, 4)), TestTree.sha256(r.open("/keep")));
        }
        // The 1 MiB file's blocks came back.
        assertTrue(freeAfter > (16L << 20) / 4096 - 4096 - 200, "free blocks " + freeAfter);
    }

    /** ext4 counts a file's links in 16 bits and allows 65,000; the 65,001st is an error, not a wrapped count. */
    @Test
    void linksPastExt4sLimitAreRefusedNotTruncated() throws Exception {
        Path img = tmp.resolve("links.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).inodeCount(1024).build())) {
            w.file("/f", Metadata.of(0644, T), 3, bytes(3, 0));
            for (int i = 1; i < 65_000; i++) {
                w.hardLink("/d" + (i % 10) + "/l" + i, "/f");
            }
            EntryException e = assertThrows(EntryException.class, () -> w.hardLink("/one-too-many", "/f"));
            assertTrue(e.getMessage().startsWith("/one-too-many: ") && e.getMessage().contains("65000"), e.getMessage());
            w.remove("/d3/l3");
            w.hardLink("/one-too-many", "/f"); // room again after a link is removed
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals(65_000, r.stat("/f").links());
            assertEquals(r.stat("/f").ino(), r.stat("/one-too-many").ino());
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
    }

    @Test
    void errorsNameThePath() throws Exception {
        Path img = tmp.resolve("a.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.file("/dir/f", Metadata.of(0644, T), 1, bytes(1, 0));
            EntryException e = assertThrows(EntryException.class, () -> w.hardLink("/l", "/missing"));
            assertTrue(e.getMessage().contains("/l") && e.getMessage().contains("/missing"), e.getMessage());
            e = assertThrows(EntryException.class, () -> w.file("/" + "n".repeat(256), Metadata.of(0644, T), 0,
                    InputStream.nullInputStream()));
            assertTrue(e.getMessage().contains("255"), e.getMessage());
            assertThrows(EntryException.class, () -> w.directory("/../etc", Metadata.of(0755, T)));
            assertThrows(EntryException.class, () -> w.directory("", Metadata.of(0755, T)));
            e = assertThrows(EntryException.class, () -> w.file("/dir", Metadata.of(0644, T), 0,
                    InputStream.nullInputStream()));
            assertTrue(e.getMessage().startsWith("/dir: cannot replace a non-empty directory"), e.getMessage());
            e = assertThrows(EntryException.class, () -> w.file("/dir/f/g", Metadata.of(0644, T), 0,
                    InputStream.nullInputStream()));
            assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
            assertThrows(EntryException.class, () -> w.hardLink("/l", "/dir"));
            assertThrows(EntryException.class, () -> w.symlink("/s", Metadata.of(0777, T), "x".repeat(5000)));
            assertThrows(EntryException.class, () -> w.file("/x", Metadata.of(0644, T).withXattrs(
                    java.util.Map.of("bogus.name", new byte[1])), 0, InputStream.nullInputStream()));
            // An empty directory may be replaced by a file.
            w.directory("/empty", Metadata.of(0755, T));
            w.file("/empty", Metadata.of(0644, T), 0, InputStream.nullInputStream());
            assertFalse(w.isDirectory("/empty"));
        }
    }

    @Test
    void truncatedContentIsAnError() throws Exception {
        Path img = tmp.resolve("a.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            java.io.EOFException e = assertThrows(java.io.EOFException.class,
                    () -> w.file("/short", Metadata.of(0644, T), 100, bytes(10, 0)));
            assertTrue(e.getMessage().contains("/short") && e.getMessage().contains("10 of 100"), e.getMessage());
        }
    }

    @Test
    void tooMuchContentReportsWhatIsNeeded() throws Exception {
        Path img = tmp.resolve("a.ext4");
        Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(8L << 20).build());
        w.file("/big", Metadata.of(0644, T), 20 << 20, bytes(20 << 20, 1));
        CapacityExceededException e = assertThrows(CapacityExceededException.class, w::close);
        assertTrue(e.blocksNeeded() > (20 << 20) / 4096, e.getMessage());
        assertEquals(2048, e.blocksAvailable());
        assertTrue(e.getMessage().contains("blocks"), e.getMessage());

        Ext4Writer w2 = Ext4Writer.create(img, Ext4Options.builder(8L << 20).inodeCount(16).build());
        for (int i = 0; i < 40; i++) {
            w2.file("/f" + i, Metadata.of(0644, T), 0, InputStream.nullInputStream());
        }
        e = assertThrows(CapacityExceededException.class, w2::close);
        assertTrue(e.inodesNeeded() >= 50 && e.inodesAvailable() < 50, e.getMessage());
    }

    @Test
    void rootMetadataComesFromAnEntryForSlash() throws Exception {
        Path img = tmp.resolve("a.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.directory("/", new Metadata(0750, 1, 2, T, T, T, T, java.util.Map.of()));
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            FileStat root = r.stat("/", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0750, root.mode());
            assertEquals(1, root.uid());
            assertEquals(List.of("lost+found"), r.list("/").stream().map(Ext4Reader.DirEntry::name).toList());
        }
    }

    @Test
    void entriesUnderASymlinkedDirectoryLandInItsTarget() throws Exception {
        // A usrmerged base: /bin -> usr/bin, /lib -> /usr/lib. Entries under them go where tar puts them.
        Path img = tmp.resolve("a.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.directory("/usr/bin", Metadata.of(0755, T));
            w.directory("/usr/lib", Metadata.of(0755, T));
            w.symlink("/bin", Metadata.of(0777, T), "usr/bin");
            w.symlink("/lib", Metadata.of(0777, T), "/usr/lib");
            w.symlink("/loop", Metadata.of(0777, T), "loop");
            w.file("/bin/agent", Metadata.of(0755, T), 5, bytes(5, 1));
            w.file("/lib/x86_64/libfoo.so", Metadata.of(0644, T), 3, bytes(3, 2));
            w.hardLink("/sbin-init", "/bin/agent");
            assertTrue(w.exists("/usr/bin/agent") && w.isFile("/bin/agent"));
            assertTrue(w.remove("/lib/x86_64/libfoo.so"));
            w.file("/lib/x86_64/libbar.so", Metadata.of(0644, T), 3, bytes(3, 2));
            EntryException e = assertThrows(EntryException.class,
                    () -> w.file("/loop/x", Metadata.of(0644, T), 0, InputStream.nullInputStream()));
            assertTrue(e.getMessage().contains("too many levels of symbolic links"), e.getMessage());
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertTrue(r.stat("/bin", java.nio.file.LinkOption.NOFOLLOW_LINKS).isSymlink());
            assertEquals(r.stat("/usr/bin/agent", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), r.stat("/sbin-init", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino());
            assertEquals(0, r.lookupPath("/usr/lib/x86_64/libfoo.so", false));
            assertEquals(3, r.stat("/usr/lib/x86_64/libbar.so", java.nio.file.LinkOption.NOFOLLOW_LINKS).size());
        }
    }

    @Test
    void symlinksResolveInsideTheImage() throws Exception {
        Path img = tmp.resolve("a.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.file("/usr/bin/busybox", Metadata.of(0755, T), 5, bytes(5, 1));
            w.symlink("/bin", Metadata.of(0777, T), "usr/bin");
            w.symlink("/usr/bin/sh", Metadata.of(0777, T), "/bin/busybox");
            w.symlink("/escape", Metadata.of(0777, T), "../../../../usr/bin/busybox");
            w.symlink("/loop1", Metadata.of(0777, T), "loop2");
            w.symlink("/loop2", Metadata.of(0777, T), "loop1");
        }
        try (Ext4Reader r = Ext4Reader.open(img)) {
            long bb = r.resolve("/usr/bin/busybox", true);
            assertEquals(bb, r.resolve("/bin/sh", true));
            assertEquals(bb, r.resolve("/escape", true));
            assertEquals(bb, r.resolve("/bin/../bin/busybox", true));
            assertTrue(r.stat("/bin/sh", java.nio.file.LinkOption.NOFOLLOW_LINKS).isSymlink());
            assertThrows(CorruptImageException.class, () -> r.resolve("/loop1", true));
        }
    }
}
