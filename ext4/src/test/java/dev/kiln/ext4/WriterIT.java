package dev.kiln.ext4;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Images checked by e2fsck, debugfs and (as root) the kernel. */
@SuppressWarnings("try") // writers are closed early inside try blocks to read their summary
class WriterIT {
    @TempDir Path tmp;

    private Path write(TestTree tree, Ext4Options opts) throws Exception {
        Path img = tmp.resolve("image-" + opts.blockSize() + ".ext4");
        try (Ext4Writer w = Ext4Writer.create(img, opts)) {
            tree.writeTo(w);
        }
        return img;
    }

    @ParameterizedTest
    @ValueSource(ints = {1024, 2048, 4096})
    void everyEntryTypeRoundTrips(int blockSize) throws Exception {
        TestTree tree = TestTree.everything();
        Path img = write(tree, Ext4Options.builder(64L << 20).blockSize(blockSize).build());
        ExternalTools.assertFsckClean(img);
        ImageCheck.withDebugfs(img, tree, Files.createDirectories(tmp.resolve("dbg")));
        ImageCheck.withMount(img, tree, tmp);
    }

    /**
     * A hashed directory holding names whose major hashes collide, which the htree orders by
     * minor hash and marks with the collision bit where such a run crosses a leaf: e2fsck
     * checks each leaf's hash range, and every name is found again.
     */
    @Test
    void namesWithCollidingHashesMakeACleanHashedDirectory() throws Exception {
        int[] seed = StructuresTest.testSeed();
        byte[] seedBytes = StructuresTest.seedBytes(seed);
        List<byte[]> names = StructuresTest.collidingNames(seed);
        assertTrue(names.size() >= 2, "a collision to test");
        for (int i = 0; i < 4000; i++) {
            names.add(("n" + (300_000 + i)).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        }
        Path img = tmp.resolve("collisions.ext4");
        Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(32L << 20).blockSize(1024).inodeCount(8192).hashSeed(seedBytes)
                .build())) {
            for (byte[] n : names) {
                w.file("/d/" + new String(n, java.nio.charset.StandardCharsets.US_ASCII), md, 0,
                        new ByteArrayInputStream(new byte[0]));
            }
        }
        ExternalTools.assertFsckClean(img);
        String htree = ExternalTools.debugfs(img, "htree /d");
        assertTrue(htree.contains("Number of entries"), htree.lines().limit(5).toList().toString());
        try (Ext4Reader r = Ext4Reader.open(img)) {
            assertEquals(names.size(), r.list("/d").size());
            for (byte[] n : names) {
                String name = new String(n, java.nio.charset.StandardCharsets.US_ASCII);
                assertTrue(r.exists("/d/" + name), name);
            }
        }
    }

    /**
     * Empty components, "." and ".." are resolved by the path's text, as tar extraction does;
     * debugfs, not kiln's reader, says where the entries landed.
     */
    @Test
    void pathsAreNormalizedByTheirText() throws Exception {
        Path img = tmp.resolve("paths.ext4");
        Metadata file = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(16L << 20).build())) {
            w.file("//a/./b//c/../f", file, 2, new ByteArrayInputStream(new byte[2]));
            w.directory("d/e/", TestTree.md(0700, 0, 0, 1_700_000_000L, 0));
            w.file("./d/e/..//e/./g.", file, 1, new ByteArrayInputStream(new byte[1]));
            w.file("/d/.../x", file, 0, InputStream.nullInputStream());
            org.junit.jupiter.api.Assertions.assertThrows(EntryException.class,
                    () -> w.file("/d/../../x", file, 0, InputStream.nullInputStream()));
        }
        ExternalTools.assertFsckClean(img);
        // ".." takes back the component before it in the text: no "c" is made.
        assertEquals(List.of("f"), names(ExternalTools.debugfs(img, "ls -l /a/b")));
        assertEquals(List.of("...", "e"), names(ExternalTools.debugfs(img, "ls -l /d")));
        assertEquals(List.of("g."), names(ExternalTools.debugfs(img, "ls -l /d/e")));
        assertTrue(ExternalTools.debugfs(img, "stat /d/e").contains("Mode:  0700"));
        assertTrue(ExternalTools.debugfs(img, "stat /a/b/f").contains("Size: 2"));
    }

    /** The names in debugfs's {@code ls -l} output, without "." and "..", sorted. */
    private static List<String> names(String ls) {
        return ls.lines().map(String::trim).filter(l -> !l.isEmpty() && !l.startsWith("debugfs"))
                .map(l -> l.substring(l.lastIndexOf(' ') + 1))
                .filter(n -> !n.equals(".") && !n.equals("..")).sorted().toList();
    }

    @Test
    void inlineDataKeepsSmallFilesInTheInode() throws Exception {
        TestTree tree = TestTree.everything();
        for (int i = 0; i <= 61; i += 10) {
            tree.file("/small/f" + i, TestTree.md(0644, 0, 0, 1_700_000_000L, i), i, i, 0);
        }
        Path img = write(tree, Ext4Options.builder(64L << 20).inlineData(true).build());
        ExternalTools.assertFsckClean(img);
        String stat = ExternalTools.debugfs(img, "stat /small/f30");
        assertTrue(stat.contains("Flags: 0x10000000") && stat.contains("Size of inline data: 60"), stat);
        assertTrue(ExternalTools.run(List.of("dumpe2fs", "-h", img.toString())).out().contains("inline_data"));
        ImageCheck.withDebugfs(img, tree, Files.createDirectories(tmp.resolve("dbg-inline")));
        ImageCheck.withMount(img, tree, tmp);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ReaderCheck.compare(r, tree);
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
    }

    @Test
    void identicalXattrBlocksAreShared() throws Exception {
        java.util.Map<String, byte[]> big = java.util.Map.of("user.acl-like", new byte[400], "security.label",
                "system_u:object_r:etc_t:s0".getBytes());
        Path img = tmp.resolve("shared.ext4");
        long free1;
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).build())) {
            for (int i = 0; i < 1100; i++) {
                w.file("/etc/f" + i, Metadata.of(0644, Instant.EPOCH).withXattrs(big), 0, InputStream.nullInputStream());
            }
            w.file("/etc/other", Metadata.of(0644, Instant.EPOCH).withXattrs(java.util.Map.of("user.x", new byte[300])), 0,
                    InputStream.nullInputStream());
            w.close();
            free1 = w.summary().freeBlocks();
        }
        ExternalTools.assertFsckClean(img);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            java.util.Map<Long, Integer> users = new java.util.TreeMap<>();
            for (int i = 0; i < 1100; i++) {
                users.merge(r.readInode(r.resolve("/etc/f" + i, false)).fileAcl, 1, Integer::sum);
            }
            // 1,024 users at most per block, as the kernel shares them: two blocks for 1,100 files.
            assertEquals(2, users.size(), users.toString());
            assertTrue(users.containsValue(1024) && users.containsValue(76), users.toString());
            assertTrue(!users.containsKey(r.readInode(r.resolve("/etc/other", false)).fileAcl));
            assertEquals(400, r.xattrs(r.resolve("/etc/f1099", false)).get("user.acl-like").length);
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
        long free0;
        try (Ext4Writer w = Ext4Writer.create(tmp.resolve("plain.ext4"), Ext4Options.builder(64L << 20).build())) {
            for (int i = 0; i < 1100; i++) {
                w.file("/etc/f" + i, Metadata.of(0644, Instant.EPOCH), 0, InputStream.nullInputStream());
            }
            w.file("/etc/other", Metadata.of(0644, Instant.EPOCH), 0, InputStream.nullInputStream());
            w.close();
            free0 = w.summary().freeBlocks();
        }
        assertEquals(3, free0 - free1, "1,101 files with xattr blocks use 3 blocks, not 1,101");
    }

    @Test
    void defaultFeaturesAreExactlyMkfsExt4s() throws Exception {
        Path img = write(new TestTree(), Ext4Options.builder(150L << 20).build());
        String out = ExternalTools.run(List.of("dumpe2fs", "-h", img.toString())).out();
        String features = out.lines().filter(l -> l.startsWith("Filesystem features:")).findFirst().orElseThrow();
        assertEquals("has_journal ext_attr resize_inode dir_index filetype extent 64bit flex_bg sparse_super "
                + "large_file huge_file dir_nlink extra_isize metadata_csum",
                features.substring("Filesystem features:".length()).trim());
        assertTrue(out.contains("Journal checksum type:    crc32c"), out);
        assertTrue(out.contains("Filesystem state:         clean"), out);
        assertTrue(out.contains("Total journal blocks:     4096"), out);
        assertTrue(out.contains("Reserved GDT blocks:      18"), out);
        ExternalTools.assertFsckClean(img);
        String lpf = ExternalTools.debugfs(img, "stat /lost+found");
        assertTrue(lpf.contains("Mode:  0700") && lpf.contains("Size: 16384"), lpf);
    }

    @Test
    void outputIsSparse() throws Exception {
        Path img = write(TestTree.everything(), Ext4Options.builder(1L << 30).build());
        long allocated = (Long) Files.getAttribute(img, "unix:size");
        assertEquals(1L << 30, allocated);
        var du = ExternalTools.run(List.of("du", "-k", "--apparent-size", img.toString()));
        var real = ExternalTools.run(List.of("du", "-k", img.toString()));
        long realKb = Long.parseLong(real.out().split("\\s+")[0]);
        assertTrue(realKb < 64 * 1024, "a 1 GiB image with little content uses " + realKb + " KiB: " + du.out());
    }

    @Test
    void sameEntriesGiveSameBytes() throws Exception {
        Path a = tmp.resolve("a.ext4");
        Path b = tmp.resolve("b.ext4");
        for (Path p : List.of(a, b)) {
            try (Ext4Writer w = Ext4Writer.create(p, Ext4Options.builder(64L << 20).build())) {
                TestTree.everything().writeTo(w);
            }
        }
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        // A different tree gives a different UUID (derived from the content).
        Path c = tmp.resolve("c.ext4");
        try (Ext4Writer w = Ext4Writer.create(c, Ext4Options.builder(64L << 20).build())) {
            TestTree.everything().writeTo(w);
            w.remove("/etc/passwd");
        }
        String ua = ExternalTools.run(List.of("dumpe2fs", "-h", a.toString())).out();
        String uc = ExternalTools.run(List.of("dumpe2fs", "-h", c.toString())).out();
        assertTrue(!uuid(ua).equals(uuid(uc)), "UUIDs should differ");
    }

    /**
     * A file's content given as a buffer ({@link Ext4Writer#file(String, Metadata,
     * java.nio.ByteBuffer)}: the {@code dir:} walk's read-ahead) makes the image its content given
     * as a stream makes, byte for byte, off the heap and on it, whatever the buffer's position and
     * limit (left as they were): sizes around block boundaries, all-zero blocks inside a file (holes),
     * a file of zeros, one larger than the writer's chunk; with inline data and without holes too.
     */
    @ParameterizedTest
    @ValueSource(strings = {"1024", "4096", "4096 inline", "4096 no-holes"})
    void contentFromABufferMakesTheImageAStreamMakes(String variant) throws Exception {
        String[] v = variant.split(" ");
        int bs = Integer.parseInt(v[0]);
        java.util.Random random = new java.util.Random(Long.getLong("kiln.test.seed", 31));
        List<byte[]> contents = new java.util.ArrayList<>();
        for (int size : new int[] {0, 1, 59, 60, 61, bs - 1, bs, bs + 1, 3 * bs, 7 * bs + 5, (3 << 20) + 17}) {
            byte[] b = new byte[size];
            random.nextBytes(b);
            if (size >= 3 * bs) {
                java.util.Arrays.fill(b, bs, 2 * bs, (byte) 0); // a hole inside
            }
            contents.add(b);
        }
        contents.add(new byte[5 * bs]); // all zeros
        for (int i = 0; i < 200; i++) {
            byte[] b = new byte[random.nextInt(3 * bs)];
            random.nextBytes(b);
            contents.add(b);
        }
        Ext4Options opts = Ext4Options.builder(64L << 20).blockSize(bs).inlineData(v.length > 1 && v[1].equals("inline"))
                .sparseFiles(!(v.length > 1 && v[1].equals("no-holes"))).build();
        Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        Path streamed = streamed(opts, md, contents);
        for (boolean direct : new boolean[] {true, false}) {
            Path buffered = tmp.resolve("buffered-" + direct + ".ext4");
            try (Ext4Writer w = Ext4Writer.create(buffered, opts)) {
                for (int i = 0; i < contents.size(); i++) {
                    byte[] b = contents.get(i);
                    // The content in the middle of a larger buffer, between its position and limit.
                    java.nio.ByteBuffer big = direct ? java.nio.ByteBuffer.allocateDirect(b.length + 10)
                            : java.nio.ByteBuffer.allocate(b.length + 10);
                    big.put(3, b).position(3).limit(3 + b.length);
                    w.file("/f" + i, md, big);
                    assertEquals(3, big.position(), "the position is left as it was");
                    assertEquals(3 + b.length, big.limit(), "the limit is left as it was");
                }
            }
            assertArrayEquals(Files.readAllBytes(streamed), Files.readAllBytes(buffered),
                    "content from a " + (direct ? "direct" : "heap") + " buffer makes the same image (" + variant + ")");
        }
    }

    /**
     * Content the kernel copies from a host file ({@code file(path, md, FileChannel, size)})
     * makes the image a stream of the same bytes makes: sizes around the size from which it
     * copies, around the 1 MiB read chunk and the blocks, holes inside, across a chunk's edge
     * and in the last whole block, an all-zero file. A file replaced by one copied into the
     * blocks it freed checks the order: the copy must land after the replaced content's writes,
     * which may still be buffered. The writer closes every source; debugfs reads contents back.
     */
    @ParameterizedTest
    @ValueSource(strings = {"4096", "1024", "4096 no-holes"})
    void contentFromAHostFileMakesTheImageAStreamMakes(String variant) throws Exception {
        String[] v = variant.split(" ");
        int bs = Integer.parseInt(v[0]);
        int mib = 1 << 20;
        java.util.Random random = new java.util.Random(Long.getLong("kiln.test.seed", 41));
        List<byte[]> contents = new java.util.ArrayList<>();
        for (int size : new int[] {0, 1, (64 << 10) - 1, 64 << 10, (64 << 10) + 1, mib - 1, mib, mib + bs, mib + bs + 17,
                (3 * mib) + 17, 5 * bs + 3}) {
            byte[] b = new byte[size];
            random.nextBytes(b);
            if (size >= 3 * mib) {
                java.util.Arrays.fill(b, bs, 2 * bs, (byte) 0); // a hole inside
                java.util.Arrays.fill(b, mib - bs, mib + 2 * bs, (byte) 0); // and across a chunk's edge
            } else if (size == 5 * bs + 3) {
                java.util.Arrays.fill(b, 4 * bs, 5 * bs, (byte) 0); // the last whole block, before the tail
            }
            contents.add(b);
        }
        contents.add(new byte[2 * mib]); // all zeros
        for (int i = 0; i < 8; i++) {
            byte[] b = new byte[(64 << 10) + random.nextInt(3 * mib)];
            random.nextBytes(b);
            contents.add(b);
        }
        byte[] replaced = new byte[2 * mib];
        random.nextBytes(replaced);
        byte[] replacement = new byte[2 * mib + 100];
        random.nextBytes(replacement);
        Ext4Options opts = Ext4Options.builder(64L << 20).blockSize(bs)
                .sparseFiles(!(v.length > 1 && v[1].equals("no-holes"))).build();
        Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        Path streamed = streamed(opts, md, contents, replaced, replacement);
        Path host = Files.createDirectories(tmp.resolve("host"));
        List<java.nio.channels.FileChannel> sources = new java.util.ArrayList<>();
        Path copied = tmp.resolve("copied.ext4");
        try (Ext4Writer w = Ext4Writer.create(copied, opts)) {
            for (int i = 0; i < contents.size(); i++) {
                byte[] b = contents.get(i);
                java.nio.channels.FileChannel ch = hostFile(host.resolve("f" + i), b);
                sources.add(ch);
                w.file("/f" + i, md, ch, b.length);
            }
            w.file("/r", md, replaced.length, new ByteArrayInputStream(replaced));
            java.nio.channels.FileChannel ch = hostFile(host.resolve("r"), replacement);
            sources.add(ch);
            w.file("/r", md, ch, replacement.length);
        }
        for (java.nio.channels.FileChannel ch : sources) {
            org.junit.jupiter.api.Assertions.assertFalse(ch.isOpen(), "the writer closes the sources it is given");
        }
        ExternalTools.assertFsckClean(copied);
        assertEquals(-1, Files.mismatch(streamed, copied), "copied from host files or streamed: the same image (" + variant + ")");
        for (String name : new String[] {"r", "f" + (contents.size() - 1), "f9"}) {
            Path out = tmp.resolve("dump-" + name);
            ExternalTools.debugfs(copied, "dump /" + name + " " + out);
            assertArrayEquals(Files.readAllBytes(host.resolve(name)), Files.readAllBytes(out), "/" + name + " read back by debugfs");
        }
    }

    /**
     * The image of {@code contents} as /f0, /f1, … written from streams, then /r from each of
     * {@code r} in turn (each replacing the one before); checked by e2fsck.
     */
    private Path streamed(Ext4Options opts, Metadata md, List<byte[]> contents, byte[]... r) throws Exception {
        Path img = tmp.resolve("streamed.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, opts)) {
            for (int i = 0; i < contents.size(); i++) {
                byte[] b = contents.get(i);
                w.file("/f" + i, md, b.length, new ByteArrayInputStream(b));
            }
            for (byte[] b : r) {
                w.file("/r", md, b.length, new ByteArrayInputStream(b));
            }
        }
        ExternalTools.assertFsckClean(img);
        return img;
    }

    /** A host file holding {@code b}, open for reading at position 0. */
    private static java.nio.channels.FileChannel hostFile(Path p, byte[] b) throws java.io.IOException {
        Files.write(p, b);
        return java.nio.channels.FileChannel.open(p);
    }

    /**
     * The entries' digest (the derived UUID and hash seed) is gathered and hashed 16 KiB at a
     * time. A writer whose digest is read after every entry hashes each entry's record on its
     * own; both must give the same image, whatever the records' lengths against the 16 KiB, and
     * an entry still gathered when the writer closes must count.
     */
    @Test
    void theDerivedUuidDoesNotDependOnWhenTheDigestIsRead() throws Exception {
        java.util.Random random = new java.util.Random(Long.getLong("kiln.test.seed", 16));
        int n = 1500;
        String[] names = new String[n];
        for (int i = 0; i < n; i++) {
            names[i] = "/d" + (i % 7) + "/" + "n".repeat(1 + random.nextInt(120)) + i; // records of 30-200 bytes
        }
        Path eachRead = tmp.resolve("each.ext4");
        Path never = tmp.resolve("never.ext4");
        Path lastDiffers = tmp.resolve("last.ext4");
        for (Path p : List.of(eachRead, never, lastDiffers)) {
            try (Ext4Writer w = Ext4Writer.create(p, Ext4Options.builder(64L << 20).build())) {
                for (int i = 0; i < n; i++) {
                    Instant t = Instant.ofEpochSecond(1_700_000_000L + i);
                    int mode = p == lastDiffers && i == n - 1 ? 0600 : 0644;
                    w.file(names[i], Metadata.of(mode, t), i % 3, new java.io.ByteArrayInputStream(new byte[i % 3]));
                    if (p == eachRead) {
                        w.contentDigest();
                    }
                }
            }
            ExternalTools.assertFsckClean(p);
        }
        assertEquals(-1, Files.mismatch(eachRead, never), "read after every entry or never: the same image");
        String ua = uuid(ExternalTools.run(List.of("dumpe2fs", "-h", never.toString())).out());
        String ul = uuid(ExternalTools.run(List.of("dumpe2fs", "-h", lastDiffers.toString())).out());
        assertTrue(!ua.equals(ul), "the last entry, still gathered at close, changes the UUID: " + ua);
    }

    /**
     * Every field of an entry's record in the entries' digest counts, and fields that run
     * together (owner 1:23 and 12:3, device 1:23 and 12:3, a time's seconds and nanoseconds)
     * stay apart: each variant of one small tree gives a UUID of its own.
     */
    @Test
    void everyFieldOfAnEntryCountsInTheDerivedUuid() throws Exception {
        Instant t = Instant.ofEpochSecond(1_700_000_000L, 5);
        java.util.Map<String, Metadata> fs = new java.util.LinkedHashMap<>();
        fs.put("base", Metadata.of(0644, t));
        fs.put("mode", Metadata.of(0600, t));
        fs.put("owner 1:23", Metadata.of(0644, 1, 23, t));
        fs.put("owner 12:3", Metadata.of(0644, 12, 3, t));
        fs.put("owner over 2^31", Metadata.of(0644, 4_000_000_000L, 3, t));
        fs.put("time 1.50", Metadata.of(0644, Instant.ofEpochSecond(1, 50)));
        fs.put("time 15.0", Metadata.of(0644, Instant.ofEpochSecond(15, 0)));
        fs.put("time before 1970", Metadata.of(0644, Instant.ofEpochSecond(-15, 0)));
        java.util.Map<String, java.util.function.Consumer<Ext4Writer>> variants = new java.util.LinkedHashMap<>();
        for (var f : fs.entrySet()) {
            variants.put(f.getKey(), w -> file(w, "/f", f.getValue()));
        }
        Metadata base = fs.get("base");
        variants.put("device 1:23", w -> dev(w, base, 1, 23));
        variants.put("device 12:3", w -> dev(w, base, 12, 3));
        variants.put("name \u00e9", w -> file(w, "/\u00e9", base));
        variants.put("name e", w -> file(w, "/e", base));
        variants.put("long name", w -> file(w, "/" + "n".repeat(255), base));
        java.util.Map<String, String> seen = new java.util.HashMap<>();
        for (var v : variants.entrySet()) {
            Path p = tmp.resolve("v.ext4");
            Files.deleteIfExists(p);
            try (Ext4Writer w = Ext4Writer.create(p, Ext4Options.builder(16L << 20).build())) {
                v.getValue().accept(w);
            }
            ExternalTools.assertFsckClean(p);
            String u = uuid(ExternalTools.run(List.of("dumpe2fs", "-h", p.toString())).out());
            String before = seen.put(u, v.getKey());
            assertEquals(null, before, v.getKey() + " gives the UUID of " + before);
        }
    }

    private static void dev(Ext4Writer w, Metadata md, int major, int minor) {
        w.charDevice("/c", md, major, minor);
    }

    private static void file(Ext4Writer w, String name, Metadata md) {
        try {
            w.file(name, md, 3, new java.io.ByteArrayInputStream(new byte[] {1, 2, 3}));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String uuid(String dumpe2fs) {
        return dumpe2fs.lines().filter(l -> l.startsWith("Filesystem UUID")).findFirst().orElseThrow();
    }

    @Test
    void fileLargerThan4GiBWithHoles() throws Exception {
        Path img = tmp.resolve("big.ext4");
        long size = (5L << 30) + 12345;
        Instant t = Instant.ofEpochSecond(1_700_000_000L);
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(256L << 20).build())) {
            // 5 GiB of zeros with a little data at the start, in the middle and at the end.
            w.file("/big", Metadata.of(0644, t), size, new SparseStream(size));
        }
        ExternalTools.assertFsckClean(img);
        String stat = ExternalTools.debugfs(img, "stat /big");
        assertTrue(stat.contains("Size: " + size), stat);
        Path out = tmp.resolve("big.out");
        ExternalTools.debugfs(img, "dump /big " + out);
        assertEquals(size, Files.size(out));
        try (var ch = java.nio.channels.FileChannel.open(out)) {
            for (long pos : SparseStream.MARKS) {
                java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(1);
                ch.read(bb, Math.min(pos, size - 1));
                assertEquals((byte) 0x5A, bb.get(0), "byte at " + pos);
            }
        }
    }

    /** Zeros, except one 0x5A byte at each mark. */
    static final class SparseStream extends InputStream {
        static final long[] MARKS = {0, 3L << 30, (5L << 30) + 12344};
        private final long size;
        private long pos;

        SparseStream(long size) {
            this.size = size;
        }

        @Override
        public int read() {
            throw new UnsupportedOperationException();
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (pos >= size) {
                return -1;
            }
            int n = (int) Math.min(len, size - pos);
            java.util.Arrays.fill(b, off, off + n, (byte) 0);
            for (long m : MARKS) {
                if (m >= pos && m < pos + n) {
                    b[off + (int) (m - pos)] = 0x5A;
                }
            }
            pos += n;
            return n;
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1024, 4096})
    void manyExtentsNeedADeeperTree(int blockSize) throws Exception {
        // Alternate data and hole blocks: one extent per data block.
        int blocks = blockSize == 1024 ? 2 * 1500 : 2 * 1500;
        byte[] data = new byte[blocks * blockSize];
        for (int i = 0; i < blocks; i += 2) {
            data[i * blockSize] = (byte) (i | 1);
        }
        Path img = tmp.resolve("frag.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(64L << 20).blockSize(blockSize).build())) {
            w.file("/frag", Metadata.of(0644, Instant.EPOCH), data.length, new ByteArrayInputStream(data));
        }
        ExternalTools.assertFsckClean(img);
        String stat = ExternalTools.debugfs(img, "ex /frag");
        assertTrue(stat.contains(" 2/ 2 ") || stat.contains("2/ 2"), "depth-2 tree expected:\n" + stat.substring(0, Math.min(600, stat.length())));
        Path out = tmp.resolve("frag.out");
        ExternalTools.debugfs(img, "dump /frag " + out);
        assertArrayEquals(data, Files.readAllBytes(out));
    }

    @ParameterizedTest
    @ValueSource(ints = {1024, 4096})
    void directoryWith50000Entries(int blockSize) throws Exception {
        TestTree tree = new TestTree();
        Metadata md = TestTree.md(0644, 0, 0, 1_700_000_000L, 0);
        Path img = tmp.resolve("wide.ext4");
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(256L << 20).blockSize(blockSize).inodeCount(60_000).build())) {
            for (int i = 0; i < 50_000; i++) {
                w.file("/wide/entry-number-" + i, md, 0, InputStream.nullInputStream());
            }
        }
        ExternalTools.assertFsckClean(img);
        String stat = ExternalTools.debugfs(img, "stat /wide");
        assertTrue(stat.contains("Flags: 0x81000"), "indexed directory expected:\n" + stat);
        String htree = ExternalTools.debugfs(img, "htree /wide");
        assertTrue(htree.contains("Indirect levels: " + (blockSize == 1024 ? 1 : 0)), htree.substring(0, 400));
        if (ExternalTools.isRoot()) {
            Path mnt = Files.createDirectories(tmp.resolve("mnt"));
            var r = ExternalTools.run(List.of("mount", "-o", "ro,loop", img.toString(), mnt.toString()));
            assertEquals(0, r.exit(), r.out());
            try {
                for (int i = 0; i < 50_000; i += 997) {
                    assertTrue(Files.exists(mnt.resolve("wide/entry-number-" + i)), "lookup " + i);
                }
                assertTrue(!Files.exists(mnt.resolve("wide/entry-number-50000")));
                try (var s = Files.list(mnt.resolve("wide"))) {
                    assertEquals(50_000, s.count());
                }
            } finally {
                ImageCheck.unmount(mnt);
            }
        }
        tree.nodes();
    }

    /**
     * The inode tables are written while the inodes are made, one block held at a time, with
     * the blocks of the reserved inodes (the journal's and the resize inode, made last) kept
     * until the end: with 1 KiB blocks these are three blocks of four inodes, the third shared
     * with lost+found. With a regular file named lost+found, inode 11 goes to the first name.
     */
    @ParameterizedTest
    @ValueSource(ints = {1024, 4096})
    void inodeTablesWrittenAsInodesAreMadeAreWhatE2fsckExpects(int blockSize) throws Exception {
        TestTree tree = new TestTree();
        Metadata md = TestTree.md(0644, 1000, 1000, 1_700_000_000L, 7);
        tree.file("/lost+found", md, 5, 1, 0);
        for (int d = 0; d < 12; d++) {
            for (int f = 0; f < 400; f++) {
                tree.file("/d" + d + "/f" + f, md, f % 3 == 0 ? 0 : 100 + f, d * 1000L + f, 0);
            }
        }
        Path img = write(tree, Ext4Options.builder((blockSize == 1024 ? 96L : 384L) << 20).blockSize(blockSize)
                .inodeCount(6000).build());
        ExternalTools.assertFsckClean(img);
        assertTrue(ExternalTools.debugfs(img, "ls -l /").matches("(?s).*\\b11\\s+40755 .* d0\n.*\\s100644 .* lost\\+found\n.*"),
                ExternalTools.debugfs(img, "ls -l /"));
        String groups = ExternalTools.run(List.of("dumpe2fs", img.toString())).out();
        assertTrue(groups.contains("Group 2:"), "inodes spread over several groups");
        try (Ext4Reader r = Ext4Reader.open(img)) {
            ReaderCheck.compare(r, tree);
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
    }

    /**
     * The writer's compact nodes keep the usual entry in fields and fall back to a full record
     * where those cannot hold it: more than 65,536 distinct owners, times outside 32 bits or
     * differing from each other, a first extent not at block 0, many extents, large device
     * numbers, hard links. Every value must come back as given, and e2fsck must agree.
     */
    @Test
    void entriesTheCompactNodesCannotHoldComeBackAsGiven() throws Exception {
        Path img = tmp.resolve("fallbacks.ext4");
        int owners = 70_000;
        Instant late = Instant.ofEpochSecond(4_102_444_800L, 123_456_789); // 2100-01-01, past 32 bits
        Instant early = Instant.ofEpochSecond(-1_000_000_000L, 5); // 1938
        Instant t = Instant.ofEpochSecond(1_700_000_000L, 42);
        byte[] block = new byte[4096];
        java.util.Arrays.fill(block, (byte) 7);
        byte[] many = new byte[64 * 4096];
        for (int b = 0; b < 64; b += 2) {
            System.arraycopy(block, 0, many, b * 4096, 4096); // every other block: 32 extents
        }
        try (Ext4Writer w = Ext4Writer.create(img, Ext4Options.builder(320L << 20).inodeCount(80_000).build())) {
            for (int i = 0; i < owners; i++) {
                w.file("/o/" + (i % 100) + "/" + i, new Metadata(0640, 100_000 + i, 200_000 + i, t, t, t, t, null),
                        0, InputStream.nullInputStream());
            }
            w.file("/late", Metadata.of(0644, 1, 2, late), new byte[] {1});
            w.file("/early", Metadata.of(0644, 1, 2, early), new byte[] {2});
            w.file("/mixed", new Metadata(0600, 3, 4, early, late, t, late, null), new byte[] {3});
            // Data only at blocks 3 and 10-11 and 20: the first extent is not at block 0.
            w.file("/holes", Metadata.of(0644, t), 21 * 4096L,
                    new long[] {3 * 4096L, 4096, 10 * 4096L, 2 * 4096L, 20 * 4096L, 4096},
                    new ByteArrayInputStream(new byte[4 * 4096]) {{ java.util.Arrays.fill(buf, (byte) 9); }});
            w.file("/many", Metadata.of(0644, t), many);
            w.charDevice("/dev/big", Metadata.of(0600, t), 300, 70_000);
            w.blockDevice("/dev/small", Metadata.of(0600, t), 8, 1);
            w.file("/linked", Metadata.of(0644, 5, 6, t), new byte[] {4});
            w.hardLink("/o/linked-too", "/linked");
            w.hardLink("/o/0/linked-three", "/linked");
        }
        ExternalTools.assertFsckClean(img);
        try (Ext4Reader r = Ext4Reader.open(img)) {
            for (int i = 0; i < owners; i += 997) {
                FileStat st = r.stat("/o/" + (i % 100) + "/" + i);
                assertEquals(100_000 + i, st.uid(), "owner " + i);
                assertEquals(200_000 + i, st.gid(), "group " + i);
                assertEquals(t, st.mtime());
            }
            FileStat last = r.stat("/o/99/69999");
            assertEquals(169_999, last.uid());
            assertEquals(late, r.stat("/late").mtime());
            assertEquals(late, r.stat("/late").crtime());
            assertEquals(early, r.stat("/early").atime());
            FileStat mixed = r.stat("/mixed");
            assertEquals(List.of(early, late, t, late), List.of(mixed.atime(), mixed.mtime(), mixed.ctime(),
                    mixed.crtime()));
            byte[] holes = r.readAllBytes("/holes");
            assertEquals(21 * 4096, holes.length);
            for (int b = 0; b < 21; b++) {
                byte want = b == 3 || b == 10 || b == 11 || b == 20 ? (byte) 9 : 0;
                assertEquals(want, holes[b * 4096 + 100], "block " + b);
            }
            assertEquals(4, r.stat("/holes").blocks512() / 8, "only the data blocks are allocated");
            assertArrayEquals(many, r.readAllBytes("/many"));
            assertEquals(300, r.stat("/dev/big").major());
            assertEquals(70_000, r.stat("/dev/big").minor());
            assertEquals(8, r.stat("/dev/small").major());
            assertEquals(3, r.stat("/linked").links());
            assertEquals(List.of(), Ext4Verifier.verify(r));
        }
        String stat = ExternalTools.debugfs(img, "stat /o/99/69999");
        assertTrue(stat.contains("User: 169999") && stat.contains("Group: 269999"), stat);
    }

    @Test
    void moreThan65000Subdirectories() throws Exception {
        Path img = tmp.resolve("nlink.ext4");
        Metadata md = Metadata.of(0755, Instant.EPOCH);
        try (Ext4Writer w = Ext4Writer.create(img,
                Ext4Options.builder(400L << 20).blockSize(1024).inodeCount(70_000).build())) {
            for (int i = 0; i < 65_010; i++) {
                w.directory("/d/" + i, md);
            }
        }
        ExternalTools.assertFsckClean(img);
        String stat = ExternalTools.debugfs(img, "stat /d");
        assertTrue(stat.contains("Links: 1 "), stat);
    }

    @Test
    void growsWithResize2fsAndStaysClean() throws Exception {
        Path img = write(TestTree.everything(), Ext4Options.builder(150L << 20).build());
        var t = ExternalTools.run(List.of("truncate", "-s", "+512M", img.toString()));
        assertEquals(0, t.exit(), t.out());
        var r = ExternalTools.run(List.of("resize2fs", img.toString()));
        assertEquals(0, r.exit(), r.out());
        ExternalTools.assertFsckClean(img);
        String out = ExternalTools.run(List.of("dumpe2fs", "-h", img.toString())).out();
        assertTrue(out.contains("Block count:              169472"), out);
    }

    @Test
    void mountedReadWriteWrittenAndUnmountedStaysClean() throws Exception {
        if (!ExternalTools.isRoot()) {
            ExternalTools.skip("needs root for a read-write loop mount");
        }
        Path img = write(TestTree.everything(), Ext4Options.builder(150L << 20).build());
        Path mnt = Files.createDirectories(tmp.resolve("rw"));
        var r = ExternalTools.run(List.of("mount", "-o", "loop", img.toString(), mnt.toString()));
        assertEquals(0, r.exit(), r.out());
        try {
            Files.writeString(mnt.resolve("etc/new-file"), "written by the kernel\n");
            Files.createDirectories(mnt.resolve("home/nex/more/dirs"));
            for (int i = 0; i < 300; i++) {
                Files.writeString(mnt.resolve("home/nex/more/f" + i), "x".repeat(i));
            }
            Files.delete(mnt.resolve("usr/lib/libc.so.6"));
            Files.write(mnt.resolve("home/nex/sparse"), new byte[100_000], java.nio.file.StandardOpenOption.APPEND);
            Files.createDirectories(mnt.resolve("wide"));
            for (int i = 0; i < 2000; i++) {
                Files.createFile(mnt.resolve("wide/n" + i));
            }
        } finally {
            var u = ExternalTools.run(List.of("umount", mnt.toString()));
            assertEquals(0, u.exit(), u.out());
        }
        ExternalTools.assertFsckClean(img);
    }
}
