package dev.kiln.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ext4.Ext4Options;
import dev.kiln.ext4.Ext4Reader;
import dev.kiln.ext4.Ext4Writer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The dir: source's walker thread: order, content of small and large files, hard links, failures. */
class DirSourceTest {
    @TempDir Path tmp;

    @Test
    void walkedTreeArrivesWhole() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(5);
        byte[][] data = new byte[400][];
        for (int i = 0; i < data.length; i++) {
            // Mostly small (read ahead by the walker), some over the 1 MiB prefetch limit (streamed).
            data[i] = new byte[i % 50 == 0 ? (1 << 20) + r.nextInt(100_000) : r.nextInt(3000)];
            r.nextBytes(data[i]);
            Path d = Files.createDirectories(src.resolve("d" + (i % 13)));
            Files.write(d.resolve("f" + i), data[i]);
        }
        Files.createLink(src.resolve("d0/hard"), src.resolve("d1/f1"));
        Files.createSymbolicLink(src.resolve("link"), Path.of("d2/f2"));
        Path img = tmp.resolve("img");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
            new DirSource(src).applyTo(w);
        }
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            for (int i = 0; i < data.length; i++) {
                try (var in = rd.open("/d" + (i % 13) + "/f" + i)) {
                    assertArrayEquals(data[i], in.readAllBytes(), "f" + i);
                }
            }
            assertEquals(rd.stat("/d1/f1", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), rd.stat("/d0/hard", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), "hard links stay one inode");
            assertEquals("d2/f2", rd.readLink(rd.resolve("/link", false)));
        }
        assertFalse(walkerAlive(), "the walker thread ends with the walk");
    }

    @Test
    void aTreeDeeperThanTheDescriptorsKeptIsWalkedByPathBelowThem() throws Exception {
        // The walk keeps the descriptor of every directory it is in, down to OPEN_DIRECTORIES
        // levels; deeper, it goes by path. Both halves must give the same tree.
        Path src = Files.createDirectories(tmp.resolve("src"));
        int depth = DirSource.OPEN_DIRECTORIES + 12;
        Path d = src;
        StringBuilder image = new StringBuilder();
        for (int i = 0; i < depth; i++) {
            d = Files.createDirectory(d.resolve("d" + (i % 10)));
            image.append("/d").append(i % 10);
            Files.writeString(d.resolve("f"), "level " + i);
            if (i % 20 == 0) {
                Files.createLink(d.resolve("h"), src.resolve("d0/f"));
            }
        }
        Path img = tmp.resolve("img");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            new DirSource(src).applyTo(w);
        }
        // Only descriptors of the tree count: other tests' background work (in this JVM) opens
        // and closes descriptors of its own meanwhile.
        assertEquals(List.of(), openUnder(src), "every descriptor the walk opened in the tree is closed");
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            String at = "";
            long first = rd.stat("/d0/f", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino();
            for (int i = 0; i < depth; i++) {
                at += "/d" + (i % 10);
                try (var in = rd.open(at + "/f")) {
                    assertEquals("level " + i, new String(in.readAllBytes()), at);
                }
                if (i % 20 == 0) {
                    assertEquals(first, rd.stat(at + "/h", java.nio.file.LinkOption.NOFOLLOW_LINKS).ino(), at + "/h");
                }
            }
            assertEquals(image.toString(), at);
        }
        dev.kiln.ext4.ExternalTools.assertFsckClean(img);
    }

    @Test
    void aFailureStopsTheWalkerAndReachesTheCaller() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        for (int i = 0; i < 3000; i++) {
            Files.write(src.resolve(String.format("a%05d", i)), new byte[100]);
        }
        // A symlink target longer than a 1 KiB block cannot be stored: the writer refuses it
        // while the walker is still busy with the files after it.
        Files.createSymbolicLink(src.resolve("a00010-long"), Path.of("x".repeat(2000)));
        Path img = tmp.resolve("img");
        var e = assertThrows(InvalidSourceException.class, () -> {
            try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).blockSize(1024).build())) {
                new DirSource(src).applyTo(w);
            }
        });
        assertTrue(e.getMessage().contains("a00010-long"), e.getMessage());
        for (int i = 0; i < 50 && walkerAlive(); i++) {
            Thread.sleep(20);
        }
        assertFalse(walkerAlive(), "the walker thread stops when the build fails");
        // The files the walk had read ahead of the failure were handed over open (their
        // xattrs and close are the writer thread's): the failed build closes them.
        assertEquals(List.of(), openUnder(src), "no descriptor into the tree outlives the failed build");
    }

    @Test
    void aSourceGivenAsASymbolicLinkIsTheDirectoryItNames() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Files.writeString(src.resolve("f"), "content");
        Files.setPosixFilePermissions(src, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-x---"));
        var view = Files.getFileAttributeView(src, java.nio.file.attribute.UserDefinedFileAttributeView.class);
        boolean xattrs = true;
        try {
            view.write("kiln", java.nio.ByteBuffer.wrap("root".getBytes()));
        } catch (java.io.IOException e) {
            xattrs = false; // the temporary directory's file system keeps none
        }
        Path link = Files.createSymbolicLink(tmp.resolve("link"), src);
        Path img = tmp.resolve("img");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            new DirSource(link).applyTo(w);
        }
        try (Ext4Reader rd = Ext4Reader.open(img)) {
            var root = rd.stat("/", java.nio.file.LinkOption.NOFOLLOW_LINKS);
            assertEquals(0750, root.mode(), "the directory's mode, not the link's");
            try (var in = rd.open("/f")) {
                assertEquals("content", new String(in.readAllBytes()));
            }
            if (xattrs) {
                assertArrayEquals("root".getBytes(), rd.xattrs(root.ino()).get("user.kiln"), "the directory's xattrs");
            }
        }
        assertTrue(new DirSource(link).estimate()[1] >= 2, "--size auto counts the directory's entries");
    }

    @Test
    void aWalkStartedBeforeTheWriterEndsWhenTheBuildFailsFirst() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        Random r = new Random(7);
        for (int i = 0; i < 4; i++) {
            // Read ahead whole (up to 1 MiB): four of them fill the ring, where the walker waits.
            byte[] b = new byte[(1 << 20) - 100];
            r.nextBytes(b);
            Files.write(src.resolve("big" + i), b);
        }
        Path out = Files.createDirectories(tmp.resolve("out")).resolve("rootfs.ext4");
        // Too small for its inode tables: the writer refuses the options once the walk has begun.
        Build b = Build.builder().source(new DirSource(src)).output(out)
                .options(Ext4Options.builder(4L << 20).inodeCount(200_000).build()).build();
        assertThrows(dev.kiln.ext4.CapacityExceededException.class, b::run);
        for (int i = 0; i < 50 && walkerAlive(); i++) {
            Thread.sleep(20);
        }
        assertFalse(walkerAlive(), "the walker thread stops when the writer could not be made");
        assertEquals(List.of(), openUnder(src), "the files it read and handed over are closed");
        try (var left = Files.list(out.getParent())) {
            assertEquals(java.util.List.of(), left.toList(), "no output, no temporary file");
        }
    }

    @Test
    @org.junit.jupiter.api.Timeout(60) // a second applyTo that reused the ended walk waited forever
    void oneSourceAppliedTwiceWalksTheTreeTwice() throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src/d"));
        Files.writeString(src.resolve("f"), "first");
        DirSource source = new DirSource(tmp.resolve("src"));
        source.start(); // as Build does before it makes the writer
        Path a = tmp.resolve("a.img");
        try (Ext4Writer w = Ext4Writer.create(a, Ext4Options.builder(16L << 20).build())) {
            source.applyTo(w);
        }
        Files.writeString(src.resolve("g"), "second");
        Path b = tmp.resolve("b.img");
        try (Ext4Writer w = Ext4Writer.create(b, Ext4Options.builder(16L << 20).build())) {
            source.applyTo(w);
        }
        try (Ext4Reader ra = Ext4Reader.open(a); Ext4Reader rb = Ext4Reader.open(b)) {
            assertFalse(ra.exists("/d/g"), "the first walk was before g");
            try (var in = rb.open("/d/g")) {
                assertEquals("second", new String(in.readAllBytes()), "the second walk saw g");
            }
            try (var in = rb.open("/d/f")) {
                assertEquals("first", new String(in.readAllBytes()));
            }
        }
        assertFalse(walkerAlive(), "no walker left behind");
    }

    private static boolean walkerAlive() {
        return Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("kiln-dir-walk") && t.isAlive());
    }

    /** The process's open descriptors that name a file in {@code tree}. */
    private static List<String> openUnder(Path tree) throws IOException {
        String prefix = tree.toRealPath().toString();
        List<String> out = new ArrayList<>();
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.equals(prefix) || target.startsWith(prefix + "/")) {
                        out.add(fd.getFileName() + " -> " + target);
                    }
                } catch (IOException e) {
                    // closed meanwhile (the listing's own descriptor, another thread's)
                }
            }
        }
        return out;
    }
}
